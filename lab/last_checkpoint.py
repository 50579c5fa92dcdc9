"""``LastCheckpoint``: Lightning's ModelCheckpoint with a ``last.ckpt`` that really is the latest state.

Lightning 2.6 writes ``last.ckpt`` (``save_last=True``) only on epochs that also save a monitored top-k checkpoint, so
with a monitor ``last.ckpt`` stays at the best epoch: measured on a 100-epoch ring run whose best HQ % came at epoch
93, ``last.ckpt`` held epoch 93, and a killed run would have resumed 6 epochs back (a finished one evaluated as
"last" was the best). This subclass writes ``last.ckpt`` at the end of every training epoch (at most once every
``min_interval_s`` seconds of wall time) and when training ends at a step it does not hold yet (a ``max_steps`` budget
that ends inside an epoch, or an epoch skipped by the interval), so the newest checkpoint of a finished run is always
its final state.
"""

from __future__ import annotations

import time

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer.states import TrainerFn


class LastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint(save_last=True, ...) whose ``last.ckpt`` follows every epoch and the end of training.

    Args:
        min_interval_s: write ``last.ckpt`` (Lightning's own write beside a new best included) at most once every this
            many seconds of wall time, except at the end of training (0: every epoch). Tiny models whose epochs last a
            fraction of a second set a few seconds: a killed run then loses at most that much training, and the run
            does not spend its time writing checkpoints.
        monitor_every_n_epochs: the cadence at which the module computes the monitored key (FID every 5 epochs):
            the best is compared after those epochs and after the last one, when the key is fresh, from its first
            evaluation on (Lightning's ``every_n_epochs`` would skip a last epoch off the cadence).
        **kwargs: ModelCheckpoint's arguments (``save_last`` is always True).
    """

    def __init__(self, min_interval_s: float = 0.0, monitor_every_n_epochs: int = 1, **kwargs) -> None:
        if monitor_every_n_epochs > 1:
            kwargs["every_n_epochs"] = 0  # Lightning's own top-k saves off: on_train_epoch_end below decides
        super().__init__(save_last=True, **kwargs)
        self.min_interval_s, self.monitor_every_n_epochs = min_interval_s, monitor_every_n_epochs
        self._last_step = -1  # the global step that last.ckpt holds
        self._last_time = time.monotonic()

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict, force: bool = False) -> None:
        due = force or time.monotonic() - self._last_time >= self.min_interval_s
        if due and self._last_step != trainer.global_step:
            super()._save_last_checkpoint(trainer, monitor_candidates)
            self._last_step, self._last_time = trainer.global_step, time.monotonic()

    def _write_last(self, trainer: pl.Trainer, force: bool = False) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer), force)

    # After Lightning's own saves, at the same point: the end of the training epoch, or of validation when Lightning
    # saves there (writing earlier would make Lightning skip its top-k save as "already saved at this step").
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self.monitor and self.monitor_every_n_epochs > 1 and not self._should_skip_saving_checkpoint(trainer):
            epoch = trainer.current_epoch + 1  # the metric callbacks have run (checkpoint callbacks run last)
            last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
            if epoch % self.monitor_every_n_epochs == 0 or last or trainer.should_stop:
                self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))
        if self._should_save_on_train_epoch_end(trainer):
            self._write_last(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._write_last(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._write_last(trainer, force=True)
