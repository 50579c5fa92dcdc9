"""Pure loss functions: tensors in, scalar tensors out, no module state.

Logits/scores are ``(B,)`` or ``(B, 1)``; every loss is a mean over the batch unless stated.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def bce_discriminator_loss(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """-[t log D(x) + (1 - t) log(1 - D(x))] - log(1 - D(G(z))), t = real_label (0.9: one-sided smoothing)."""
    real_target = torch.full_like(real_logits, real_label)
    real = F.binary_cross_entropy_with_logits(real_logits, real_target)
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def nonsaturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """-log D(G(z)) (the non-saturating heuristic)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def minimax_generator_loss(fake_logits: Tensor) -> Tensor:
    """log(1 - D(G(z))) (the original minimax objective; saturates when D wins)."""
    return -F.softplus(fake_logits).mean()  # log(1 - sigmoid(l)) = -softplus(l)


def wasserstein_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """E[f(G(z))] - E[f(x)] (the critic minimises the negative Wasserstein estimate)."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: Tensor) -> Tensor:
    """-E[f(G(z))]."""
    return -fake_scores.mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, alpha: Tensor | None = None
) -> Tensor:
    """E[(||grad f(x_hat)||_2 - 1)^2], x_hat = a x + (1 - a) G(z), one a ~ U[0, 1] per sample, norm over non-batch dims.

    Unscaled: the caller multiplies by its weight (lambda = 10 in the WGAN-GP paper). The graph is kept
    (``create_graph=True``) so the penalty can be back-propagated into the critic. Always computed in float32, with
    autocast off (under ``bf16-mixed`` / ``16-mixed``): the double backward of a half-precision critic loses the
    penalty's small gradient differences.
    """
    with torch.autocast(real.device.type, enabled=False):
        dtype = torch.promote_types(real.dtype, torch.float32)  # float32 at least (float64 stays float64)
        real, fake = real.detach().to(dtype), fake.detach().to(dtype)
        if alpha is None:
            alpha = torch.rand(real.shape[0], device=real.device, dtype=dtype)
        alpha = alpha.to(dtype).view(-1, *([1] * (real.dim() - 1)))  # (B, 1, 1, 1)
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        scores = critic(x_hat).to(dtype)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
        norms = grad.flatten(1).norm(2, dim=1)  # (B,)
        return ((norms - 1) ** 2).mean()


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar)), summed over dims, batch mean."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def bernoulli_reconstruction_loss(logits: Tensor, target: Tensor) -> Tensor:
    """-sum log p(x | z) for Bernoulli pixels (BCE with logits, target in [0, 1]), summed over pixels, batch mean."""
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return per_pixel.flatten(1).sum(dim=1).mean()
