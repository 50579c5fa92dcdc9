"""Small MLPs for 2-D mixtures: a generator with a linear output (points are unbounded) and a discriminator.

Sizes follow the Unrolled GAN / VEEGAN mixture experiments (hidden 128, ReLU), kept small so that a run fits in a
minute on a CPU core. The generator is ``head(trunk(z))`` so that MAD-GAN can share the trunk between generators.

``scale`` (both nets) is the extent of the data: the generator's linear output is multiplied by it and the
discriminator divides its input by it, so both nets work in units where the data spans about [-1, 1] whatever the
benchmark's coordinates (the Unrolled GAN paper's discriminator "scales its input down by a factor of 4"). The
shipped configs keep 1: on the 25-grid at {-4, ..., 4}^2, 4 lifted the GAN and WGAN-GP but hurt MAD-GAN
(docs/modes.md).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _mlp(in_dim: int, hidden_dim: int, n_layers: int) -> nn.Sequential:
    """``n_layers`` Linear+ReLU layers of width ``hidden_dim``."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim), nn.ReLU()]
    return nn.Sequential(*layers)


def _check_scale(scale: float) -> float:
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive number, got {scale}")
    return float(scale)


class ScaledLinear(nn.Linear):
    """``scale * (x W^T + b)``: a linear layer whose output is multiplied by a fixed factor (not learned)."""

    def __init__(self, in_features: int, out_features: int, scale: float = 1.0) -> None:
        super().__init__(in_features, out_features)
        self.scale = _check_scale(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out if self.scale == 1.0 else out * self.scale


class MixtureGenerator(nn.Module):
    """z ``(B, latent_dim)`` -> point ``(B, out_dim)``: ``n_layers`` hidden ReLU layers then a linear layer
    (times ``scale``)."""

    def __init__(
        self, latent_dim: int = 16, hidden_dim: int = 128, n_layers: int = 2, out_dim: int = 2, scale: float = 1.0
    ) -> None:
        super().__init__()
        if min(latent_dim, hidden_dim, n_layers, out_dim) < 1:
            raise ValueError("latent_dim, hidden_dim, n_layers and out_dim must all be >= 1")
        self.latent_dim = latent_dim
        self.image_shape = (out_dim,)  # a "sample" is one point
        self.output_activation = "none"  # linear output: the mixtures are unbounded
        self.trunk = _mlp(latent_dim, hidden_dim, n_layers)
        self.head = ScaledLinear(hidden_dim, out_dim, scale)  # a head of its own: MAD-GAN copies it per generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(z))  # (B, out_dim)


class MixtureDiscriminator(nn.Module):
    """point ``(B, in_dim)`` -> logits ``(B,)`` (``n_outputs`` = 1) or ``(B, n_outputs)`` (MAD-GAN: k + 1); the
    point is divided by ``scale`` first."""

    def __init__(
        self, in_dim: int = 2, hidden_dim: int = 128, n_layers: int = 2, n_outputs: int = 1, scale: float = 1.0
    ) -> None:
        super().__init__()
        if min(in_dim, hidden_dim, n_layers, n_outputs) < 1:
            raise ValueError("in_dim, hidden_dim, n_layers and n_outputs must all be >= 1")
        self.n_outputs, self.scale = n_outputs, _check_scale(scale)
        self.net = nn.Sequential(_mlp(in_dim, hidden_dim, n_layers), nn.Linear(hidden_dim, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x if self.scale == 1.0 else x / self.scale)  # (B, n_outputs)
        return out.squeeze(1) if self.n_outputs == 1 else out
