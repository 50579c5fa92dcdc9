"""MAD-GAN: k + 1 discriminator outputs, every generator trained, uniform sampling, clear errors."""

import functools

import pytest
import pytorch_lightning as pl
import torch

from gan_lab.madgan import MADGAN, MultiGenerator, generator_assignment, madgan_discriminator_loss
from gan_lab.nets.mixture import MixtureDiscriminator, MixtureGenerator

ADAM = functools.partial(torch.optim.Adam, lr=1e-3)


def build(k: int = 3, shared_trunk: bool = False) -> MADGAN:
    """A MAD-GAN on 2-D points and its optimizers, attached to a Trainer (read by manual_backward and toggling)."""
    torch.manual_seed(0)
    generator = MultiGenerator(MixtureGenerator(4, 16, 1), k, shared_trunk=shared_trunk)
    module = MADGAN(generator, MixtureDiscriminator(2, 16, 1, n_outputs=k + 1), ADAM, ADAM, sample_every_n_epochs=0)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    module.trainer = trainer
    module.opts = module.configure_optimizers()  # (generator, discriminator), passed to the step methods
    trainer.strategy.optimizers = list(module.opts)
    return module


@pytest.mark.parametrize("shared_trunk", [False, True])
def test_discriminator_has_k_plus_one_outputs_and_every_generator_learns(shared_trunk):
    """D returns (B, k + 1); one generator step changes every generator's own parameters."""
    module = build(4, shared_trunk)
    assert module.discriminator(torch.randn(10, 2)).shape == (10, 5)
    heads = module.generator.heads if shared_trunk else module.generator.generators
    before = [torch.cat([p.detach().flatten().clone() for p in h.parameters()]) for h in heads]
    real = torch.randn(32, 2)
    module.discriminator_step(real, module.opts[1])
    module.generator_step(real, *module.opts)
    after = [torch.cat([p.detach().flatten() for p in h.parameters()]) for h in heads]
    assert all(not torch.equal(b, a) for b, a in zip(before, after, strict=True))


def test_each_generator_receives_gradient():
    """The generator loss back-propagates a non-zero gradient into each of the k generators."""
    module = build(3)
    loss, _ = module.generator_loss(module.generator(torch.randn(30, 4)), torch.randn(30, 2))
    loss.backward()
    for net in module.generator.generators:
        assert sum(p.grad.abs().sum() for p in net.parameters()) > 0


def test_sampling_is_uniform_over_generators_and_generators_differ():
    """Row j comes from generator j mod k (equal shares), and the re-initialised copies make different points."""
    assert torch.bincount(generator_assignment(12, 3)).tolist() == [4, 4, 4]
    module = build(3)
    z = torch.randn(1, 4).repeat(3, 1)  # the same noise for generators 0, 1, 2
    points = module.sample(3, z)
    assert points.shape == (3, 2)
    assert not torch.allclose(points[0], points[1]) and not torch.allclose(points[1], points[2])


def test_discriminator_loss_is_cross_entropy_with_real_last():
    """The D loss is zero-ish when D puts all mass on the right class, real being the last output."""
    k = 2
    real_logits = torch.tensor([[-50.0, -50.0, 50.0]])
    fake_logits = torch.tensor([[50.0, -50.0, -50.0], [-50.0, 50.0, -50.0]])
    assert madgan_discriminator_loss(real_logits, fake_logits, generator_assignment(2, k)) < 1e-6
    assert madgan_discriminator_loss(fake_logits[:1], real_logits.repeat(2, 1), generator_assignment(2, k)) > 50


def test_wrong_discriminator_size_is_refused():
    """A discriminator without k + 1 outputs fails at construction with the expected size in the message."""
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        MADGAN(MultiGenerator(MixtureGenerator(4, 8, 1), 3), MixtureDiscriminator(2, 8, 1, n_outputs=1))
