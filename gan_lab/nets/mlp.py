"""Fully connected generators, discriminators and VAE encoders (plain nn.Modules with explicit arguments)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

OUTPUT_ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "none": nn.Identity}


def output_activation_layer(name: str) -> nn.Module:
    """The final layer for ``name`` in tanh | sigmoid | none (raises ValueError listing the options)."""
    if name not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"output_activation must be one of {', '.join(OUTPUT_ACTIVATIONS)}, got {name!r}")

    return OUTPUT_ACTIVATIONS[name]()


def check_hidden_dims(hidden_dims: Sequence[int]) -> None:
    """Every hidden width must be >= 1 (a clear error instead of torch's negative-dimension one)."""
    if any(width < 1 for width in hidden_dims):
        raise ValueError(f"hidden_dims must all be >= 1, got {list(hidden_dims)}")


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> image (B, C, H, W): Linear + [BatchNorm] + LeakyReLU(0.2) per hidden layer, then Linear.

    Args:
        latent_dim: size of the noise vector (the module reads it from here: state it once, in the config).
        hidden_dims: widths of the hidden layers.
        image_shape: (C, H, W) of the output.
        batch_norm: BatchNorm1d after each hidden Linear (the seed architecture; an ablation switch).
        output_activation: tanh (data in [-1, 1]), sigmoid (data in [0, 1]) or none (logits, for a VAE decoder).
    """

    backbone = "mlp"  # a W&B tag of runs with this generator

    def __init__(
        self,
        latent_dim: int = 100,
        hidden_dims: Sequence[int] = (256, 512, 1024),
        image_shape: Sequence[int] = (1, 28, 28),
        batch_norm: bool = True,
        output_activation: str = "tanh",
    ) -> None:
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        check_hidden_dims(hidden_dims)
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        self.output_activation = output_activation
        layers: list[nn.Module] = []
        width = latent_dim
        for hidden in hidden_dims:
            # bias is redundant before batch norm
            layers += [nn.Linear(width, hidden, bias=not batch_norm)]
            layers += [nn.BatchNorm1d(hidden)] if batch_norm else []
            layers += [nn.LeakyReLU(0.2)]
            width = hidden
        layers += [nn.Linear(width, math.prod(self.image_shape)), output_activation_layer(output_activation)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)  # (B, C, H, W)


class MLPDiscriminator(nn.Module):
    """image (B, C, H, W) -> logit or critic score (B,): Linear + LeakyReLU(0.2) per hidden layer, no sigmoid.

    Args:
        hidden_dims: widths of the hidden layers.
        image_shape: (C, H, W) of the input.
        dropout: dropout after each hidden layer (0: none).
        n_outputs: 1 gives (B,) scores; more gives (B, n_outputs) logits (MAD-GAN's k + 1 classes).
    """

    def __init__(
        self,
        hidden_dims: Sequence[int] = (512, 256),
        image_shape: Sequence[int] = (1, 28, 28),
        dropout: float = 0.0,
        n_outputs: int = 1,
    ) -> None:
        super().__init__()
        check_hidden_dims(hidden_dims)
        self.n_outputs = n_outputs
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            layers += [nn.Dropout(dropout)] if dropout > 0 else []
            width = hidden
        layers += [nn.Linear(width, n_outputs)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)  # (B, n_outputs)
        return out.squeeze(1) if self.n_outputs == 1 else out


class MLPEncoder(nn.Module):
    """image (B, C, H, W) -> (mu, logvar), each (B, latent_dim): the VAE's amortised posterior."""

    def __init__(
        self, latent_dim: int = 20, hidden_dims: Sequence[int] = (512, 256), image_shape: Sequence[int] = (1, 28, 28)
    ) -> None:
        super().__init__()
        check_hidden_dims(hidden_dims)
        self.latent_dim = latent_dim
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(image_shape)
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 2 * latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = torch.chunk(self.head(self.body(x)), 2, dim=1)  # (B, latent_dim) each
        return mu, logvar
