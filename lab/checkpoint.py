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
    if ckpt.is_dir():
        found = sorted(str(p) for p in ckpt.rglob("*.ckpt"))
        hint = f": e.g. {', '.join(found[-2:])}" if found else " (there is none under it)"
        raise LabError(f"checkpoint {ckpt} is a folder: give a checkpoint file{hint}")
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
    hyper = checkpoint.get("hyper_parameters") or {}
    class_path = hyper.get("_class_path")
    if class_path is None:
        names = ", ".join(sorted(hyper)[:6]) or "none"
        raise LabError(
            f"{path} names no model class, so this CLI cannot rebuild it (its hyperparameters: {names}): written "
            "by another entry point (gan_lab and rnn_lab each read their own fit's checkpoints) or not by the "
            "suite; load it there or with <Class>.load_from_checkpoint"
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


def checkpoint_callback(monitor: tuple[str, ...] | None, min_interval_s: float = 0.0) -> Any:
    """The suite's checkpointing (``lab.last_checkpoint.LastCheckpoint``): ``last.ckpt`` at the end of every epoch (at
    most once every ``min_interval_s`` seconds) and of training, and the best by ``monitor`` (key, "min"|"max"[,
    every_n_epochs: the cadence at which the module computes that key]), top-1, as ``best-epoch=NNN.ckpt``, compared
    on the epochs that compute the key (from its first evaluation on); without a monitor, only ``last.ckpt``."""
    from lab.last_checkpoint import LastCheckpoint

    if monitor is None:
        return LastCheckpoint(min_interval_s, save_top_k=0)
    key, mode, *every = monitor
    return LastCheckpoint(
        min_interval_s, every[0] if every else 1, monitor=key, mode=mode, save_top_k=1,
        filename="best-epoch={epoch:03d}", auto_insert_metric_name=False,
    )  # fmt: skip


def find_checkpoint(run_folder: Path, which: str) -> Path:
    """``last.ckpt`` or the ``best-*.ckpt`` of the newest version of a run folder (``<root>/<run name>``) that has
    one; LabError naming the folder when there is none."""
    pattern = "last.ckpt" if which == "last" else "best-*.ckpt"
    versions = sorted(run_folder.glob("version_*"), key=lambda p: int(p.name.split("_")[1]), reverse=True)
    for version in versions:
        found = sorted((version / "checkpoints").glob(pattern))
        if found:
            return found[-1]
    there = sorted(str(p.relative_to(run_folder)) for v in versions for p in (v / "checkpoints").glob("*.ckpt"))
    if there:
        raise LabError(f"--ckpt_path {which}: no {pattern} under {run_folder}/version_*/checkpoints/; it holds "
                       f"{', '.join(there[-3:])} (give one of them as --ckpt_path, or `last`)")  # fmt: skip
    raise LabError(
        f"--ckpt_path {which}: no {pattern} under {run_folder}/version_*/checkpoints/, nor any other "
        "checkpoint (no run of this name has finished an epoch under this --run.root: train it first)"
    )
