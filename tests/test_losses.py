"""The pure losses of gan_lab.losses against hand-computed values."""

import math

import torch

from gan_lab import losses


def test_bce_discriminator_loss_on_known_logits():
    """BCE discriminator loss equals -log s(l_real) - log(1 - s(l_fake)), with smoothing as the target t."""
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 0.0])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = -(math.log(sig(0.0)) + math.log(sig(2.0))) / 2 - (math.log(1 - sig(-1.0)) + math.log(1 - sig(0.0))) / 2
    assert torch.allclose(losses.bce_discriminator_loss(real, fake), torch.tensor(expected))
    t = 0.9
    smooth = -sum(t * math.log(sig(v)) + (1 - t) * math.log(1 - sig(v)) for v in (0.0, 2.0)) / 2
    smooth += -(math.log(1 - sig(-1.0)) + math.log(1 - sig(0.0))) / 2
    assert torch.allclose(losses.bce_discriminator_loss(real, fake, real_label=0.9), torch.tensor(smooth))


def test_generator_losses_on_known_logits():
    """Non-saturating loss is -log s(l); minimax loss is log(1 - s(l)), both batch means."""
    logits = torch.tensor([0.0, 3.0])
    sig = torch.sigmoid(logits)
    assert torch.allclose(losses.nonsaturating_generator_loss(logits), -torch.log(sig).mean())
    assert torch.allclose(losses.minimax_generator_loss(logits), torch.log(1 - sig).mean())


def test_wasserstein_losses():
    """Critic loss is mean(f(fake)) - mean(f(real)); generator loss is -mean(f(fake))."""
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    assert losses.wasserstein_critic_loss(real, fake).item() == -3.0
    assert losses.wasserstein_generator_loss(fake).item() == 1.0


def test_gradient_penalty_of_linear_critic_is_exact():
    """For f(x) = w.x the gradient is w everywhere, so the penalty is (||w|| - 1)^2 for any interpolates."""
    torch.manual_seed(0)
    w = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(8, 3, 4, 4, dtype=torch.float64), torch.randn(8, 3, 4, 4, dtype=torch.float64)
    expected = (w.norm() - 1) ** 2
    assert torch.allclose(losses.gradient_penalty(critic, real, fake), expected)


def test_gradient_penalty_is_per_sample_and_differentiable():
    """The norm is over all non-batch dims of each sample (not over the batch), and the penalty has a gradient."""
    scale = torch.tensor([1.0, 3.0])  # f(x) = scale_i * sum(x) per sample -> ||grad|| = scale_i * sqrt(numel)
    critic = lambda x: x.flatten(1).sum(1) * scale  # noqa: E731
    real, fake = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    expected = ((1.0 * 2 - 1) ** 2 + (3.0 * 2 - 1) ** 2) / 2  # sqrt(4) = 2
    assert math.isclose(losses.gradient_penalty(critic, real, fake).item(), expected, rel_tol=1e-6)
    lin = torch.nn.Linear(4, 1)
    penalty = losses.gradient_penalty(lambda x: lin(x.flatten(1)).squeeze(1), real, fake)
    penalty.backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_kl_and_reconstruction():
    """KL of N(0, I) is 0 and of N(mu, 1) is |mu|^2 / 2; reconstruction sums BCE over pixels."""
    zeros = torch.zeros(3, 5)
    assert losses.kl_divergence(zeros, zeros).item() == 0.0
    assert math.isclose(losses.kl_divergence(torch.full((3, 5), 2.0), zeros).item(), 5 * 4 / 2)
    logits, target = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    assert math.isclose(losses.bernoulli_reconstruction_loss(logits, target).item(), 4 * math.log(2), rel_tol=1e-6)
