"""``TrainTime``: the seconds a run has spent training, without evaluation, for quality-against-time curves.

Logs ``time/train_s`` at the end of every training epoch: the wall time from the start of each training epoch to its
last batch, summed over epochs (so per-epoch metrics, sample grids and checkpoints are not counted), and carried
across a resume in the checkpoint.
"""

from __future__ import annotations

import time
from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer


class TrainTime(Callback):
    """Sums the wall time of the training batches (each epoch's start to its last batch end) into ``time/train_s``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._epoch_start: float | None = None
        self._last_batch_end: float | None = None

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_start, self._last_batch_end = time.perf_counter(), None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._epoch_start is not None and self._last_batch_end is not None:
            self.seconds += self._last_batch_end - self._epoch_start
        self._epoch_start = None
        # logged first among the epoch-end callbacks' values, at the same step as the val/ metrics
        pl_module.log("time/train_s", round(self.seconds, 2), on_epoch=True, on_step=False, rank_zero_only=True)

    def state_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seconds = float(state_dict.get("seconds", 0.0))
