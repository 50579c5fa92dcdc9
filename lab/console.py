"""What a run prints: Lightning's own lines without the ones a user cannot act on, a parameter table that counts the
weight-average (EMA) copies apart, and a summary at the end of ``fit`` (where the run is, its best and last
metrics with their step, what to run next)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelSummary
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities.model_summary import get_human_readable_count

NOISE = (
    "litlogger",  # an advertisement for another logging service, on every run
    "Skipping setting a default `ModelSummary`",  # the suite's ParameterSummary replaces Lightning's default on purpose
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in NOISE)


def quiet_lightning() -> None:
    """Drops Lightning's console lines that name nothing a user can act on (``NOISE``); its summary lines stay."""
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())


class ParameterSummary(ModelSummary):
    """Lightning's parameter table per top-level module, without its FLOPs column (0 for every net here: the counter
    does not see these ops), and with parameters no gradient trains (the generator's EMA copy) counted apart."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        rows, trained, averaged = [], 0, 0
        for name, child in pl_module.named_children():
            count = sum(p.numel() for p in child.parameters())
            if not count:
                continue
            grad = sum(p.numel() for p in child.parameters() if p.requires_grad)
            trained, averaged = trained + grad, averaged + count - grad
            how = "gradients" if grad == count else "weight average, no gradient" if not grad else "partly frozen"
            rows.append((name, type(child).__name__, get_human_readable_count(count), how))
        if not rows:
            return
        widths = [max(len(str(row[i])) for row in [("Name", "Type", "Params", "Trained by"), *rows]) for i in range(4)]
        for row in [("Name", "Type", "Params", "Trained by"), *rows]:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        size = (trained + averaged) * 4 / 1e6
        line = f"Trained params: {get_human_readable_count(trained)}"
        if averaged:
            line += f" · not trained by gradients (EMA copies): {get_human_readable_count(averaged)}"
        print(f"{line} · size {size:.1f} MB (float32)")


def _best(trainer: pl.Trainer) -> tuple[str, float, Path, int] | None:
    """(monitor, score, path, global step) of the run's best checkpoint, if one was written."""
    callback = trainer.checkpoint_callback
    path = getattr(callback, "best_model_path", "")
    if not path or not Path(path).is_file() or getattr(callback, "best_model_score", None) is None:
        return None
    import torch

    step = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step", -1)
    return str(callback.monitor), float(callback.best_model_score), Path(path), int(step)


def run_summary(trainer: pl.Trainer, folder: Path, next_steps: Sequence[str]) -> str:
    """The lines printed after ``fit``: the run folder, the best checkpoint's metric and step, the last metrics and
    step, and the commands to run next (``next_steps`` with ``{ckpt}`` and ``{run}`` filled in), W&B sync included
    when the run logged offline."""
    lines = [f"Run: {folder} (metrics.csv, config.yaml, checkpoints/)"]
    best = _best(trainer)
    if best:
        key, score, path, step = best
        lines.append(f"  best {key} = {score:.4g} at step {step}: {path}")
    metrics = {
        k: float(v)
        for k, v in trainer.callback_metrics.items()
        if k.startswith("val/") and not k.endswith("_std") and v.numel() == 1
    }
    shown = ", ".join(f"{k} = {v:.4g}" for k, v in list(metrics.items())[:5])
    lines.append(f"  last: step {trainer.global_step}, epoch {trainer.current_epoch}" + (f": {shown}" if shown else ""))
    ckpt = best[2] if best else folder / "checkpoints" / "last.ckpt"
    commands = [step.format(ckpt=ckpt, run=folder) for step in next_steps]
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and os.environ.get("WANDB_MODE") in ("offline", "dryrun"):
            run: Any = logger.experiment
            commands.append(f"wandb sync {Path(run.dir).parent}   (upload this offline W&B run)")
    if commands:
        lines += ["Next:", *(f"  {command}" for command in commands)]
    return "\n".join(lines)
