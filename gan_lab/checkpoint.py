"""``load_module(path)``: any gan_lab image-generator checkpoint (every GAN family, the VAE) back as a module."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from pytorch_lightning import LightningModule

from gan_lab.cli import LabError, read_checkpoint


def _checkpoint_class(path: Path, checkpoint: dict) -> type[LightningModule]:
    hparams = checkpoint.get("hyper_parameters") or {}
    class_path = hparams.get("_class_path")
    if class_path is None:
        raise LabError(
            f"{path} was not written by `python -m gan_lab fit` (its hyperparameters name no model class); "
            "load it with <Family>.load_from_checkpoint instead"
        )
    module_name, _, class_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise LabError(f"{path} holds a {class_path}, which cannot be imported: {err}") from err
    return cls


def load_module(path: str | Path, map_location: str | torch.device = "cpu") -> LightningModule:
    """Loads a checkpoint of any gan_lab image family (GAN, DCGAN, WGAN, WGAN-GP, VAE, ...) in eval mode.

    Args:
        path: a ``.ckpt`` file written by ``python -m gan_lab fit``.
        map_location: device for the weights.

    Returns:
        The module, with the image-generator protocol (``sample``, ``latent_dim``, ``data_range``, ...).

    Raises:
        LabError: the file is missing, is not a Lightning checkpoint (corrupt/truncated), or holds another kind of
            model (e.g. an RNN classifier).
    """
    from gan_lab.module import ImageGeneratorMixin

    path = Path(path)
    # weights_only=True: a checkpoint is data, never code. The CLI saves hyperparameters as plain config values.
    checkpoint = read_checkpoint(path)
    cls = _checkpoint_class(path, checkpoint)
    if not (isinstance(cls, type) and issubclass(cls, ImageGeneratorMixin)):
        raise LabError(f"{path} holds a {cls.__module__}.{cls.__name__}, not a gan_lab image generator (GAN/VAE)")
    module = cls.load_from_checkpoint(path, map_location=map_location, weights_only=True)
    return module.eval()
