"""Unrolled GAN: the generator's gradient equals an independent torch.func reference of the paper's objective, k = 0
reduces to the minimax (paper) or vanilla (nonsaturating) GAN, the unrolled graph is really used, the real D gets one
ordinary update."""

import copy
import functools

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.func import functional_call

from gan_lab.gan import GAN
from gan_lab.nets.mixture import MixtureDiscriminator, MixtureGenerator
from gan_lab.unrolled import OBJECTIVES, UnrolledGAN

ADAM = functools.partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.999))


def build(cls, **kwargs):
    """A module on 2-D points with fixed initial weights (seed 0) and its optimizers, attached to a Trainer (whose
    optimizers manual_backward and toggling read)."""
    torch.manual_seed(0)
    module = cls(
        MixtureGenerator(4, 16, 2), MixtureDiscriminator(2, 16, 2), ADAM, ADAM, sample_every_n_epochs=0, **kwargs
    )
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    module.trainer = trainer
    module.opts = module.configure_optimizers()  # (generator, discriminator), passed to the step methods
    trainer.strategy.optimizers = list(module.opts)
    return module


def one_step(module, real, steps=1):
    """Runs ``steps`` iterations of the loop (critic step, then generator step) with a fixed noise seed."""
    torch.manual_seed(123)
    for _ in range(steps):
        module.discriminator_step(real, module.opts[1])
        module.generator_step(real, *module.opts)
    return module


def params(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


# Not from the global RNG, whose state at import depends on the test modules a pytest worker imported before this one.
REAL = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))


def test_k0_nonsaturating_equals_vanilla_gan():
    """unroll_steps = 0 with the nonsaturating objective gives exactly the vanilla GAN's nets after two steps."""
    vanilla = one_step(build(GAN), REAL, steps=2)
    unrolled = one_step(build(UnrolledGAN, unroll_steps=0, objective="nonsaturating"), REAL, steps=2)
    assert torch.equal(params(vanilla.generator), params(unrolled.generator))
    assert torch.equal(params(vanilla.discriminator), params(unrolled.discriminator))


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("unroll_optimizer", ["adam", "sgd"])
def test_discriminator_gets_one_ordinary_update(unroll_optimizer, objective):
    """With k = 5, after one iteration the real D and its Adam state equal the vanilla GAN's; G differs."""
    vanilla = one_step(build(GAN), REAL)
    module = build(UnrolledGAN, unroll_steps=5, unroll_optimizer=unroll_optimizer, objective=objective)
    unrolled = one_step(module, REAL)
    assert torch.equal(params(vanilla.discriminator), params(unrolled.discriminator))
    states = [m.opts[1].state for m in (vanilla, unrolled)]
    for p_v, p_u in zip(vanilla.discriminator.parameters(), unrolled.discriminator.parameters(), strict=True):
        assert torch.equal(states[0][p_v]["exp_avg_sq"], states[1][p_u]["exp_avg_sq"])
    assert not torch.equal(params(vanilla.generator), params(unrolled.generator))


@pytest.mark.parametrize("unroll_optimizer", ["adam", "sgd"])
def test_second_order_gradient_differs_from_first_order(unroll_optimizer):
    """With k > 0 the generator gradient through the unrolled updates differs from the first-order one."""
    grads = {}
    for second_order in (True, False):
        module = build(UnrolledGAN, unroll_steps=3, second_order=second_order, unroll_optimizer=unroll_optimizer)
        one_step(module, REAL)  # fills the discriminator's Adam state
        torch.manual_seed(7)
        fake = module.generator(torch.randn(32, 4))
        loss = module.unrolled_generator_loss(fake, REAL, module.opts[1])
        grads[second_order] = torch.autograd.grad(loss, list(module.generator.parameters()))
    first, second = torch.cat([g.flatten() for g in grads[False]]), torch.cat([g.flatten() for g in grads[True]])
    assert torch.isfinite(second).all()
    assert (first - second).norm() > 1e-4 * first.norm()


def test_unrolled_loss_differs_from_loss_at_current_weights():
    """The unrolled parameters at k steps move D: the unrolled loss differs from the loss at D's current weights."""
    module = build(UnrolledGAN, unroll_steps=5, unroll_optimizer="sgd", unroll_lr=0.5, objective="nonsaturating")
    fake = module.generator(torch.randn(32, 4))
    unrolled_loss = module.unrolled_generator_loss(fake, REAL, module.opts[1])
    vanilla_loss, _ = module.generator_loss(fake, REAL)
    assert not torch.isclose(unrolled_loss, vanilla_loss)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"unroll_steps": -1}, "unroll_steps"),
        ({"unroll_optimizer": "rmsprop"}, "adam, sgd"),
        ({"unroll_lr": 0}, "unroll_lr"),
        ({"objective": "minimax"}, "objective must be one of paper, nonsaturating"),
    ],
)
def test_bad_settings(kwargs, message):
    """Bad unrolling settings fail at construction with a message naming the setting."""
    with pytest.raises(ValueError, match=message):
        UnrolledGAN(MixtureGenerator(4, 8, 1), MixtureDiscriminator(2, 8, 1), **kwargs)


@pytest.mark.parametrize("unroll_optimizer", ["adam", "sgd"])
def test_one_unrolled_step_equals_an_optimizer_step(unroll_optimizer):
    """theta_1 of the unrolling equals a copy of D after one torch.optim step (Adam: from D's optimizer state)."""
    from gan_lab import losses

    module = build(UnrolledGAN, unroll_steps=1, unroll_optimizer=unroll_optimizer, unroll_lr=0.05)
    one_step(module, REAL, steps=3)  # D's Adam state is no longer zero
    fake = module.generator(torch.randn(32, 4)).detach()
    unrolled = module.unrolled_parameters(REAL, fake, module.opts[1])

    twin = copy.deepcopy(module.discriminator)
    d_opt = module.opts[1]
    if unroll_optimizer == "adam":
        optimizer = torch.optim.Adam(twin.parameters(), lr=d_opt.param_groups[0]["lr"], betas=(0.5, 0.999))
        optimizer.load_state_dict(d_opt.state_dict())
        optimizer.param_groups[0]["lr"] = 0.05
    else:
        optimizer = torch.optim.SGD(twin.parameters(), lr=0.05)
    loss = losses.bce_discriminator_loss(twin(REAL), twin(fake))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    before = dict(module.discriminator.named_parameters())
    for name, p in twin.named_parameters():
        ours, torchs = (unrolled[name] - before[name]).detach(), (p - before[name]).detach()
        assert torchs.abs().max() > 1e-5, name  # the step is real
        # Adam: sqrt(v_hat + eps^2) in place of sqrt(v_hat) + eps changes a step only where sqrt(v_hat) is within a
        # few orders of eps (rarely-active units); compare where they agree to 0.1%, which must be most weights.
        exact = torch.ones_like(p, dtype=torch.bool)
        if unroll_optimizer == "adam":
            state = optimizer.state[p]
            v_hat = state["exp_avg_sq"] / (1 - 0.999 ** float(state["step"]))
            exact = v_hat.sqrt() > 1e-4
            assert exact.float().mean() > 0.5, name
        assert torch.allclose(ours[exact], torchs[exact], rtol=1e-3, atol=1e-7), name


def reference_generator_grads(g, d, state, z, real, k, objective, adam, lr, betas=(0.5, 0.999), eps=1e-8):
    """d/d theta_G of the generator's objective at theta_K, written directly with torch.func: K SGD or Adam steps on
    -[E log D(x) + E log(1 - D(G(z)))] from D's weights ``d`` and Adam state ``state`` (name -> exp_avg, exp_avg_sq,
    step), in the graph of G's weights. paper: f = E log D_K(x) + E log(1 - D_K(G(z))); nonsaturating:
    -E log D_K(G(z)). Adam's denominator is sqrt(v_hat + eps^2), the documented rule of the module."""
    g_params = {n: p.detach().clone().requires_grad_(True) for n, p in g.named_parameters()}
    theta = {n: p.detach().clone().requires_grad_(True) for n, p in d.named_parameters()}
    m = {n: state[n]["exp_avg"].clone() for n in theta} if adam else None
    v = {n: state[n]["exp_avg_sq"].clone() for n in theta} if adam else None
    t = {n: float(state[n]["step"]) for n in theta} if adam else None
    fake = functional_call(g, g_params, (z,))

    def value(th):  # E log D(x) + E log(1 - D(G(z)))
        real_logits, fake_logits = functional_call(d, th, (real,)), functional_call(d, th, (fake,))
        return F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean()

    for _ in range(k):
        grads = torch.autograd.grad(-value(theta), list(theta.values()), create_graph=True)
        grads = dict(zip(theta, grads, strict=True))
        if adam:
            for n, grad in grads.items():
                t[n] += 1
                m[n] = betas[0] * m[n] + (1 - betas[0]) * grad
                v[n] = betas[1] * v[n] + (1 - betas[1]) * grad**2
                m_hat, v_hat = m[n] / (1 - betas[0] ** t[n]), v[n] / (1 - betas[1] ** t[n])
                theta[n] = theta[n] - lr * m_hat / torch.sqrt(v_hat + eps**2)
        else:
            theta = {n: theta[n] - lr * grads[n] for n in theta}
    if objective == "paper":
        loss = value(theta)
    else:
        loss = -F.logsigmoid(functional_call(d, theta, (fake,))).mean()
    return torch.cat([grad.flatten() for grad in torch.autograd.grad(loss, list(g_params.values()))])


def adam_state(module):
    """D's optimizer state by parameter name, copied."""
    d_opt = module.opts[1]
    return {n: {key: value.clone() for key, value in d_opt.state[p].items()}
            for n, p in module.discriminator.named_parameters()}  # fmt: skip


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("unroll_optimizer", ["adam", "sgd"])
def test_generator_gradient_equals_torch_func_reference(objective, unroll_optimizer):
    """After a full iteration (critic step, then generator step) with k = 3, G's gradient equals the torch.func
    reference unrolled from D before its step (paper) or after it (nonsaturating), and not from the other one."""
    lr = 0.05 if unroll_optimizer == "sgd" else 1e-2
    kwargs = {"unroll_steps": 3, "unroll_optimizer": unroll_optimizer, "unroll_lr": lr, "objective": objective}
    module = one_step(build(UnrolledGAN, **kwargs), REAL, steps=2)  # D's Adam state is no longer zero
    g_before, d_before = copy.deepcopy(module.generator), copy.deepcopy(module.discriminator)
    state_before = adam_state(module)
    torch.manual_seed(5)
    _, z = torch.randn(32, 4), torch.randn(32, 4)  # the critic step's noise, then the generator step's
    torch.manual_seed(5)
    module.discriminator_step(REAL, module.opts[1])
    module.generator_step(REAL, *module.opts)
    ours = torch.cat([p.grad.flatten() for p in module.generator.parameters()])
    adam = unroll_optimizer == "adam"
    starts = {"paper": (d_before, state_before), "nonsaturating": (module.discriminator, adam_state(module))}
    reference = reference_generator_grads(g_before, *starts[objective], z, REAL, 3, objective, adam, lr)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-6)
    other = "nonsaturating" if objective == "paper" else "paper"
    wrong_start = reference_generator_grads(g_before, *starts[other], z, REAL, 3, objective, adam, lr)
    assert (wrong_start - ours).norm() > 1e-3 * ours.norm()  # the start matters: the test tells the orders apart


def test_paper_real_term_reaches_the_generator():
    """With the paper objective the real term E log D_K(x) has a gradient in theta_G (through theta_K)."""
    module = build(UnrolledGAN, unroll_steps=3, unroll_optimizer="sgd", unroll_lr=0.5)
    fake = module.generator(torch.randn(32, 4))
    params = module.unrolled_parameters(REAL, fake, module.opts[1])
    real_term = F.logsigmoid(module._functional_discriminate(params, REAL)).mean()
    grads = torch.autograd.grad(real_term, list(module.generator.parameters()))
    assert torch.cat([g.flatten() for g in grads]).norm() > 1e-6


def test_paper_k0_is_the_minimax_gan_against_the_pre_step_discriminator():
    """k = 0, paper objective: G's gradient and step equal a minimax GAN's generator step (minimise
    E log(1 - D(G(z)))) taken against D before this iteration's critic step."""
    paper = one_step(build(UnrolledGAN, unroll_steps=0), REAL)  # seed 123: the critic's noise, then G's
    minimax = build(GAN, generator_loss_type="minimax")
    torch.manual_seed(123)
    torch.randn(32, 4)  # the critic step's noise
    minimax.generator_step(REAL, *minimax.opts)  # D untouched: the pre-step discriminator
    for p_paper, p_minimax in zip(paper.generator.parameters(), minimax.generator.parameters(), strict=True):
        torch.testing.assert_close(p_paper.grad, p_minimax.grad, rtol=1e-5, atol=1e-8)
        torch.testing.assert_close(p_paper, p_minimax, rtol=1e-5, atol=1e-7)
