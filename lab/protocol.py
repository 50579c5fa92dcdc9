"""The image-generator protocol: what callbacks, ``sample``, ``evaluate`` and ``load_module`` rely on.

Every GAN family and the VAE satisfy it (``gan_lab.module.ImageGeneratorMixin`` implements most of it); a test
checks each config's module with ``isinstance(module, ImageGenerator)``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class ImageGenerator(Protocol):
    """A model that maps noise to images.

    Attributes:
        family: short name for run names and W&B groups (``gan``, ``wgan_gp``, ``vae`` ...), from the config.
        latent_dim: size of the noise vector ``z``.
        image_shape: (C, H, W) of one sample ((2,) for 2-D points).
        data_range: (-1, 1) for a tanh generator, (0, 1) for a sigmoid one.
        device: where the weights live.
    """

    family: str
    latent_dim: int
    image_shape: tuple[int, ...]

    @property
    def data_range(self) -> tuple[float, float]: ...

    @property
    def device(self) -> torch.device: ...

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), shape (n, latent_dim), on ``device``."""
        ...

    def sample(self, n: int, z: Tensor | None = None) -> Tensor:
        """(n, *image_shape) samples in ``data_range`` from ``z`` (fresh noise if None); eval mode, no grad, the
        previous train/eval mode restored."""
        ...

    def to_unit(self, images: Tensor) -> Tensor:
        """Maps images from ``data_range`` to [0, 1] (for saving and metrics)."""
        ...
