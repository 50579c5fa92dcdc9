"""Small MLPs for 2-D mixtures: a generator with a linear output (points are unbounded) and a discriminator.

Sizes follow the Unrolled GAN / VEEGAN mixture experiments (hidden 128, ReLU), kept small so that a run fits in a
minute on a CPU core. The generator is ``head(trunk(z))`` so that MAD-GAN can share the trunk between generators.
"""

from __future__ import annotations

import torch
from torch import nn


def _mlp(in_dim: int, hidden_dim: int, n_layers: int) -> nn.Sequential:
    """``n_layers`` Linear+ReLU layers of width ``hidden_dim``."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim), nn.ReLU()]
    return nn.Sequential(*layers)


class MixtureGenerator(nn.Module):
    """z ``(B, latent_dim)`` -> point ``(B, out_dim)``: ``n_layers`` hidden ReLU layers then a linear layer."""

    def __init__(self, latent_dim: int = 16, hidden_dim: int = 128, n_layers: int = 2, out_dim: int = 2) -> None:
        super().__init__()
        if min(latent_dim, hidden_dim, n_layers, out_dim) < 1:
            raise ValueError("latent_dim, hidden_dim, n_layers and out_dim must all be >= 1")
        self.latent_dim = latent_dim
        self.image_shape = (out_dim,)  # a "sample" is one point
        self.output_activation = "none"  # linear output: the mixtures are unbounded
        self.trunk = _mlp(latent_dim, hidden_dim, n_layers)
        self.head = nn.Linear(hidden_dim, out_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(z))  # (B, out_dim)


class MixtureDiscriminator(nn.Module):
    """point ``(B, in_dim)`` -> logits ``(B,)`` (``n_outputs`` = 1) or ``(B, n_outputs)`` (MAD-GAN: k + 1)."""

    def __init__(self, in_dim: int = 2, hidden_dim: int = 128, n_layers: int = 2, n_outputs: int = 1) -> None:
        super().__init__()
        if min(in_dim, hidden_dim, n_layers, n_outputs) < 1:
            raise ValueError("in_dim, hidden_dim, n_layers and n_outputs must all be >= 1")
        self.n_outputs = n_outputs
        self.net = nn.Sequential(_mlp(in_dim, hidden_dim, n_layers), nn.Linear(hidden_dim, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)  # (B, n_outputs)
        return out.squeeze(1) if self.n_outputs == 1 else out
