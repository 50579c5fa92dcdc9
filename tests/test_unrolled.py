"""Unrolled GAN: k = 0 is the vanilla GAN, the unrolled graph is really used, the real D gets one ordinary update."""

import functools

import pytest
import pytorch_lightning as pl
import torch

from gan_lab.gan import GAN
from gan_lab.nets.mixture import MixtureDiscriminator, MixtureGenerator
from gan_lab.unrolled import UnrolledGAN

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


REAL = torch.randn(32, 2)


def test_k0_equals_vanilla_gan():
    """unroll_steps = 0 gives exactly the vanilla GAN's generator and discriminator after two steps."""
    vanilla = one_step(build(GAN), REAL, steps=2)
    unrolled = one_step(build(UnrolledGAN, unroll_steps=0), REAL, steps=2)
    assert torch.equal(params(vanilla.generator), params(unrolled.generator))
    assert torch.equal(params(vanilla.discriminator), params(unrolled.discriminator))


@pytest.mark.parametrize("unroll_optimizer", ["adam", "sgd"])
def test_discriminator_gets_one_ordinary_update(unroll_optimizer):
    """With k = 5, after one iteration the real D and its Adam state equal the vanilla GAN's; G differs."""
    vanilla = one_step(build(GAN), REAL)
    unrolled = one_step(build(UnrolledGAN, unroll_steps=5, unroll_optimizer=unroll_optimizer), REAL)
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
    module = build(UnrolledGAN, unroll_steps=5, unroll_optimizer="sgd", unroll_lr=0.5)
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
    ],
)
def test_bad_settings(kwargs, message):
    """Bad unrolling settings fail at construction with a message naming the setting."""
    with pytest.raises(ValueError, match=message):
        UnrolledGAN(MixtureGenerator(4, 8, 1), MixtureDiscriminator(2, 8, 1), **kwargs)


@pytest.mark.parametrize("unroll_optimizer", ["adam", "sgd"])
def test_one_unrolled_step_equals_an_optimizer_step(unroll_optimizer):
    """theta_1 of the unrolling equals a copy of D after one torch.optim step (Adam: from D's optimizer state)."""
    import copy

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
