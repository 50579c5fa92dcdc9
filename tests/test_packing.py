"""PacGAN packing: pack shapes, packs never mix samples of two batches, m = 1 is the unpacked family bit for bit, every
family scores packs (GAN, DCGAN, WGAN-GP, Unrolled), and bad packing settings are refused in one clear error."""

import pytest
import torch

from gan_lab import losses
from gan_lab.gan import GAN
from gan_lab.nets.conv import DCDiscriminator, DCGenerator
from gan_lab.nets.mixture import MixtureDiscriminator, MixtureGenerator
from gan_lab.packing import pack
from gan_lab.unrolled import UnrolledGAN
from gan_lab.wgan import WGANGP

REAL = torch.randn(8, 2)


def mixture(cls, packing=1, **kwargs):
    torch.manual_seed(0)
    nets = MixtureGenerator(4, 16, 2), MixtureDiscriminator(2 * packing, 16, 2)
    return cls(*nets, packing=packing, sample_every_n_epochs=0, metrics_every_n_epochs=0, **kwargs)


def test_pack_shapes():
    """Points (B, 2) -> (B / m, 2 m) and images (B, C, H, W) -> (B / m, m C, H, W), m consecutive samples per row."""
    points = torch.arange(16.0).view(8, 2)
    packed = pack(points, 2)
    assert packed.shape == (4, 4) and torch.equal(packed[1], torch.cat([points[2], points[3]]))
    images = torch.randn(8, 3, 28, 28)
    packed = pack(images, 4)
    assert packed.shape == (2, 12, 28, 28)
    assert torch.equal(packed[1, :3], images[4]) and torch.equal(packed[1, 9:], images[7])
    assert pack(images, 1) is images
    with pytest.raises(ValueError, match="batch size 6 is not divisible by the packing degree 4"):
        pack(torch.randn(6, 2), 4)


@pytest.mark.parametrize("cls", [GAN, WGANGP])
def test_packing_one_is_the_unpacked_family_bit_for_bit(cls):
    """packing = 1: the discriminator loss equals, bit for bit, the family's loss computed on unpacked samples."""
    module = mixture(cls, packing=1)
    fake = torch.randn(8, 2)
    torch.manual_seed(3)
    ours, _ = module.discriminator_loss(REAL, fake)
    d = module.discriminator
    torch.manual_seed(3)  # the same interpolation weights for the gradient penalty
    if cls is GAN:
        direct = losses.bce_discriminator_loss(d(REAL), d(fake))
    else:
        direct = losses.wasserstein_critic_loss(d(REAL), d(fake)) + 10.0 * losses.gradient_penalty(d, REAL, fake)
    assert torch.equal(ours, direct)


@pytest.mark.parametrize("cls", [GAN, WGANGP])
def test_discriminator_scores_packs(cls):
    """packing = 2: D scores (B / 2,) packs of real and of fake samples; WGAN-GP's penalty is per pack."""
    module = mixture(cls, packing=2)
    d, fake = module.discriminator, torch.randn(8, 2)
    assert module.discriminate(REAL).shape == (4,)
    assert torch.equal(module.discriminate(REAL), d(REAL.reshape(4, 4)))
    torch.manual_seed(3)
    ours, _ = module.discriminator_loss(REAL, fake)
    real_packs, fake_packs = REAL.reshape(4, 4), fake.reshape(4, 4)
    torch.manual_seed(3)
    if cls is GAN:
        direct = losses.bce_discriminator_loss(d(real_packs), d(fake_packs))
    else:
        penalty = losses.gradient_penalty(d, real_packs, fake_packs)  # one interpolation weight per pack
        direct = losses.wasserstein_critic_loss(d(real_packs), d(fake_packs)) + 10.0 * penalty
    assert torch.equal(ours, direct)
    loss, _ = module.generator_loss(module.generator(torch.randn(8, 4)), REAL)
    assert loss.isfinite()


def test_dcgan_packs_channels():
    """DCGAN with packing 2: the conv discriminator takes 2 C channels and scores B / 2 packs."""
    torch.manual_seed(0)
    generator = DCGenerator(latent_dim=8, channels=8, output_activation="tanh")
    module = GAN(generator, DCDiscriminator(channels=8, image_shape=(2, 28, 28)), packing=2, family="dcgan")
    images = generator(torch.randn(4, 8))  # (4, 1, 28, 28)
    assert module.discriminate(images).shape == (2,)
    loss, _ = module.discriminator_loss(images.detach(), images.detach())
    assert loss.isfinite()


def test_unrolled_scores_real_and_fake_packs_apart():
    """Unrolled GAN with packing 2: the unrolled scores are (B / 2,) for real and for fake packs, and G's gradient is
    finite."""
    module = mixture(UnrolledGAN, packing=2, unroll_steps=2, unroll_optimizer="sgd", unroll_lr=0.1)
    fake = module.generator(torch.randn(8, 4))
    params = dict(module.discriminator.named_parameters())
    real_logits, fake_logits = module._score(params, REAL, fake)
    assert torch.allclose(real_logits, module.discriminator(REAL.reshape(4, 4)))
    assert torch.allclose(fake_logits, module.discriminator(fake.reshape(4, 4)))
    loss = module.unrolled_generator_loss(fake, REAL, torch.optim.SGD(module.discriminator.parameters(), lr=0.1))
    grads = torch.autograd.grad(loss, list(module.generator.parameters()))
    assert all(g.isfinite().all() for g in grads)


def test_bad_packing_is_refused():
    """packing < 1, a discriminator not sized for the packs, MAD-GAN with packing and a batch size not divisible by m
    are refused with one clear ValueError."""
    with pytest.raises(ValueError, match="packing must be >= 1, got 0"):
        GAN(MixtureGenerator(4, 8, 1), MixtureDiscriminator(2, 8, 1), packing=0)
    with pytest.raises(ValueError, match=r"inputs of shape \[4\] \(e.g. MixtureDiscriminator in_dim: 4"):
        GAN(MixtureGenerator(4, 8, 1), MixtureDiscriminator(2, 8, 1), packing=2)
    with pytest.raises(ValueError, match=r"image_shape: \[2, 28, 28\]"):
        GAN(DCGenerator(latent_dim=8, channels=8, output_activation="tanh"), DCDiscriminator(channels=8), packing=2)
    module = mixture(GAN, packing=4)
    with pytest.raises(ValueError, match="batch_size 126 is not divisible by the packing degree 4"):
        module.check_datamodule(type("Data", (), {"batch_size": 126})())
    from gan_lab.madgan import MADGAN, MultiGenerator

    with pytest.raises(ValueError, match="packing must be 1"):
        MADGAN(MultiGenerator(MixtureGenerator(4, 8, 1), 2), MixtureDiscriminator(2, 8, 1, n_outputs=3), packing=2)


def test_pacgan_configs_resolve_their_packing(tmp_path):
    """configs/mixtures/pacgan.yaml packs 2 (in_dim 4); pacgan.m4.yaml composed after it packs 4 (in_dim 8)."""
    from conftest import CONFIGS

    from gan_lab.__main__ import build

    for files, m in [(["pacgan.yaml"], 2), (["pacgan.yaml", "pacgan.m4.yaml"], 4)]:
        paths = [CONFIGS / "base.yaml", CONFIGS / "mixtures/ring.yaml", *(CONFIGS / "mixtures" / f for f in files)]
        cli = build([f"--config={p}" for p in [*paths, CONFIGS / "tiny.yaml"]] + [f"--run.root={tmp_path}"])
        assert cli.model.packing == m and cli.model.family == "pacgan"
        assert cli.model.discriminator.net[0][0].in_features == 2 * m
