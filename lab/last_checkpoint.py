"""``LastCheckpoint``: Lightning's ModelCheckpoint with a ``last.ckpt`` that really is the latest state.

Lightning 2.6 writes ``last.ckpt`` (``save_last=True``) only on epochs that also save a monitored top-k checkpoint, so
with a monitor ``last.ckpt`` stays at the best epoch: measured on a 100-epoch ring run whose best HQ % came at epoch
93, ``last.ckpt`` held epoch 93, and a killed run would have resumed 6 epochs back (a finished one evaluated as
"last" was the best). This subclass also writes ``last.ckpt`` at the end of every training epoch that saved nothing
(at most once every ``min_interval_s`` seconds of wall time), and when training ends at a step not yet saved (a
``max_steps`` budget that ends inside an epoch, or an epoch skipped by the interval), so the newest checkpoint of a
finished run is always its final state.
"""

from __future__ import annotations

import time

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint


class LastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint(save_last=True, ...) whose ``last.ckpt`` follows every epoch and the end of training.

    Args:
        min_interval_s: skip an epoch-end write of ``last.ckpt`` when the previous write is younger than this (0: every
            epoch). Tiny models whose epochs last a fraction of a second set a few seconds: a killed run then loses at
            most that much training, and the run does not spend its time writing checkpoints.
        **kwargs: ModelCheckpoint's arguments (``save_last`` is always True).
    """

    def __init__(self, min_interval_s: float = 0.0, **kwargs) -> None:
        super().__init__(save_last=True, **kwargs)
        self.min_interval_s = min_interval_s
        self._last_write = time.monotonic()

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._last_write = time.monotonic()

    def _write_last(self, trainer: pl.Trainer) -> None:
        if self._should_skip_saving_checkpoint(trainer):
            return  # not fitting, or nothing new since the last write (Lightning's own at this epoch's end included)
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _epoch_write(self, trainer: pl.Trainer) -> None:
        if time.monotonic() - self._last_write >= self.min_interval_s:
            self._write_last(trainer)

    # After Lightning's own save, at the same point: at the end of the training epoch, or of validation when Lightning
    # saves there (writing earlier would make Lightning skip its top-k save as "already saved at this step").
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._epoch_write(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._epoch_write(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._write_last(trainer)
