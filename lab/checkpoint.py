"""Checkpoint reading: safe loading (``weights_only=True``: a checkpoint is data, never code) and clear errors."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from lab.errors import LabError


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Loads a Lightning checkpoint safely; raises LabError with one line when it cannot."""
    import torch

    ckpt = Path(path)
    if not ckpt.is_file():
        raise LabError(f"checkpoint {ckpt} does not exist")
    try:
        checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and tensor errors all mean the same thing to the user
        reason = " ".join(str(err).split()).split(". ")[0][:160]
        raise LabError(f"checkpoint {ckpt} is corrupt, truncated or not a PyTorch file ({reason})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise LabError(f"checkpoint {ckpt} is not a Lightning checkpoint (no state_dict)")
    return checkpoint


def state_dict_mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str:
    """A one-line description of the first difference in keys or shapes between two state dicts ('' if none)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        return f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
    for key, value in expected.items():
        if tuple(value.shape) != tuple(found[key].shape):
            return f"{key} has shape {tuple(found[key].shape)} in the checkpoint, {tuple(value.shape)} in the model"
    return ""


def checkpoint_class(path: Path, checkpoint: dict[str, Any]) -> type:
    """The LightningModule class a checkpoint written by the suite's CLI was trained with."""
    class_path = (checkpoint.get("hyper_parameters") or {}).get("_class_path")
    if class_path is None:
        raise LabError(
            f"{path} was not written by the suite's `fit` (its hyperparameters name no model class); "
            "load it with <Family>.load_from_checkpoint instead"
        )
    module_name, _, class_name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise LabError(f"{path} holds a {class_path}, which cannot be imported: {err}") from err


def load_module(path: str | os.PathLike, kind: type, what: str, map_location: Any = "cpu") -> Any:
    """The module of a checkpoint, in eval mode, when its class is a subclass of ``kind`` (else LabError naming
    ``what`` was expected)."""
    path = Path(path)
    cls = checkpoint_class(path, read_checkpoint(path))
    if not (isinstance(cls, type) and issubclass(cls, kind)):
        raise LabError(f"{path} holds a {cls.__module__}.{cls.__name__}, not {what}")
    return cls.load_from_checkpoint(path, map_location=map_location, weights_only=True).eval()
