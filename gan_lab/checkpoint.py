"""``load_module(path)``: any gan_lab image-generator checkpoint (every GAN family, the VAE) back as a module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gan_lab.generator import ImageGeneratorMixin
from lab.checkpoint import load_module as load_checked


def load_module(path: str | Path, map_location: Any = "cpu") -> Any:
    """Loads a checkpoint of any gan_lab image family (GAN, DCGAN, WGAN, WGAN-GP, VAE, ...) in eval mode.

    Raises:
        LabError: the file is missing, is not a Lightning checkpoint (corrupt/truncated), or holds another kind of
            model (e.g. an RNN classifier).
    """
    return load_checked(path, ImageGeneratorMixin, "a gan_lab image generator (GAN/VAE)", map_location)
