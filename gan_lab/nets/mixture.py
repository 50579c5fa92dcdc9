"""Small MLPs for 2-D mixtures: a generator with a linear output (points are unbounded) and a discriminator.

Sizes follow the Unrolled GAN / VEEGAN mixture experiments (hidden 128, ReLU), kept small so that a run fits in a
minute on a CPU core. The generator is ``head(trunk(z))`` so that MAD-GAN can share the trunk between generators.

The PacGAN / VEEGAN protocol's own networks are these classes at other sizes (``configs/nets/protocol_*.yaml``): a
generator of 4 x 400 ReLU units with batch norm (``batch_norm: true``) and a ``MaxoutDiscriminator`` of 3 x 200
maxout units of 5 pieces, both initialised from N(0, 0.02) with zero biases (``init_std``).

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


def _mlp(in_dim: int, hidden_dim: int, n_layers: int, batch_norm: bool = False) -> nn.Sequential:
    """``n_layers`` Linear(+BatchNorm1d)+ReLU layers of width ``hidden_dim`` (no Linear bias before batch norm)."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers.append(nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim, bias=not batch_norm))
        layers += [nn.BatchNorm1d(hidden_dim), nn.ReLU()] if batch_norm else [nn.ReLU()]
    return nn.Sequential(*layers)


def _check_init_std(init_std: float | None) -> float | None:
    if init_std is not None and not (init_std > 0 and math.isfinite(init_std)):
        raise ValueError(f"init_std must be a positive number (or null), got {init_std}")
    return init_std


def _normal_init(module: nn.Module, std: float | None) -> None:
    """Linear weights from N(0, std), biases 0 (the protocol's initialisation); None keeps PyTorch's default."""
    if std is None:
        return
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


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
    (times ``scale``).

    Args:
        batch_norm: BatchNorm1d before each hidden ReLU (the PacGAN / VEEGAN protocol's generator).
        init_std: Linear weights from N(0, init_std) and zero biases (the protocol: 0.02); None: PyTorch's default.
    """

    backbone = "mixture"  # a W&B tag of runs with this generator

    def __init__(
        self,
        latent_dim: int = 16,
        hidden_dim: int = 128,
        n_layers: int = 2,
        out_dim: int = 2,
        scale: float = 1.0,
        batch_norm: bool = False,
        init_std: float | None = None,
    ) -> None:
        super().__init__()
        if min(latent_dim, hidden_dim, n_layers, out_dim) < 1:
            raise ValueError("latent_dim, hidden_dim, n_layers and out_dim must all be >= 1")
        self.latent_dim = latent_dim
        self.image_shape = (out_dim,)  # a "sample" is one point
        self.output_activation = "none"  # linear output: the mixtures are unbounded
        self.trunk = _mlp(latent_dim, hidden_dim, n_layers, batch_norm)
        self.head = ScaledLinear(hidden_dim, out_dim, scale)  # a head of its own: MAD-GAN copies it per generator
        _normal_init(self, _check_init_std(init_std))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(z))  # (B, out_dim)


def _check_sizes(in_dim: int, hidden_dim: int, n_layers: int, n_outputs: int) -> None:
    if min(in_dim, hidden_dim, n_layers, n_outputs) < 1:
        raise ValueError("in_dim, hidden_dim, n_layers and n_outputs must all be >= 1")


class _PointCritic(nn.Module):
    """The shared half of the mixture discriminators: ``net`` = the ``hidden`` layers then a linear layer to
    ``n_outputs`` logits, on points divided by ``scale``; logits ``(B,)`` when ``n_outputs`` is 1."""

    def __init__(self, hidden: list[nn.Module], hidden_dim: int, n_outputs: int, scale: float) -> None:
        super().__init__()
        self.n_outputs, self.scale = n_outputs, _check_scale(scale)
        self.net = nn.Sequential(*hidden, nn.Linear(hidden_dim, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x if self.scale == 1.0 else x / self.scale)  # (B, n_outputs)
        return out.squeeze(1) if self.n_outputs == 1 else out


class MixtureDiscriminator(_PointCritic):
    """point ``(B, in_dim)`` -> logits ``(B,)`` (``n_outputs`` = 1) or ``(B, n_outputs)`` (MAD-GAN: k + 1); the
    point is divided by ``scale`` first."""

    def __init__(
        self, in_dim: int = 2, hidden_dim: int = 128, n_layers: int = 2, n_outputs: int = 1, scale: float = 1.0
    ) -> None:
        _check_sizes(in_dim, hidden_dim, n_layers, n_outputs)
        super().__init__([_mlp(in_dim, hidden_dim, n_layers)], hidden_dim, n_outputs, scale)


class Maxout(nn.Module):
    """``(B, in_features)`` -> ``(B, out_features)``: the maximum over ``pieces`` linear maps (Goodfellow et al. 2013),
    ``out_j = max_p (x W_{j,p}^T + b_{j,p})``; one piece is a plain Linear."""

    def __init__(self, in_features: int, out_features: int, pieces: int = 5) -> None:
        super().__init__()
        if pieces < 1:
            raise ValueError(f"pieces must be >= 1, got {pieces}")
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x).view(*x.shape[:-1], self.out_features, self.pieces)  # (B, out_features, pieces)
        return h.amax(dim=-1)  # (B, out_features)


class MaxoutDiscriminator(_PointCritic):
    """point ``(B, in_dim)`` -> logits ``(B,)`` or ``(B, n_outputs)``: ``n_layers`` maxout layers of ``hidden_dim``
    units with ``pieces`` pieces each, then a linear layer (the sigmoid lives in the loss); the point is divided by
    ``scale`` first. PacGAN packs of m points: ``in_dim: 2 m``.

    Args:
        init_std: Linear weights from N(0, init_std) and zero biases (the protocol: 0.02); None: PyTorch's default.
    """

    def __init__(
        self,
        in_dim: int = 2,
        hidden_dim: int = 200,
        n_layers: int = 3,
        pieces: int = 5,
        n_outputs: int = 1,
        scale: float = 1.0,
        init_std: float | None = None,
    ) -> None:
        _check_sizes(in_dim, hidden_dim, n_layers, n_outputs)
        layers = [Maxout(in_dim if i == 0 else hidden_dim, hidden_dim, pieces) for i in range(n_layers)]
        super().__init__(layers, hidden_dim, n_outputs, scale)
        _normal_init(self, _check_init_std(init_std))
