"""``WallClockLRDecay``: a learning rate that decays with the wall time a run has spent, for recipes whose budget is
time (``trainer.max_time``: ``make train-wgan`` trains for 9 min 15 s), where a schedule in steps would end early on
a fast machine and late on a slow one.

Each optimizer's learning rate is its configured value until the ``start`` fraction of the budget has passed, then
falls linearly to ``final`` times that value at the end of the budget. The clock is Lightning's ``Timer`` (the one
``max_time`` installs, resumed with the run), or the given ``seconds`` since training started.
"""

from __future__ import annotations

import time
from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import Timer


class WallClockLRDecay(Callback):
    """Linear learning-rate decay over a wall-time budget.

    Args:
        start: fraction of the budget after which the decay starts (0: from the first step).
        final: the learning rate at the end of the budget, as a fraction of the configured one.
        seconds: the budget in seconds of training wall time (None: the ``trainer.max_time`` budget).
    """

    def __init__(self, start: float = 0.0, final: float = 0.0, seconds: float | None = None) -> None:
        if not 0.0 <= start < 1.0 or not 0.0 <= final <= 1.0 or (seconds is not None and seconds <= 0):
            raise ValueError(f"need 0 <= start < 1, 0 <= final <= 1 and seconds > 0; got {start}, {final}, {seconds}")
        self.start_fraction, self.final, self.seconds = start, final, seconds
        self.base: list[list[float]] = []
        self.timer: Timer | None = None
        self.budget, self.began = 0.0, 0.0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
        if self.seconds is None and (self.timer is None or self.timer.time_remaining() is None):
            raise ValueError("WallClockLRDecay needs a budget: trainer.max_time, or its seconds argument")
        self.budget = self.seconds or self.timer.time_elapsed() + self.timer.time_remaining()
        self.began = time.monotonic()
        self.base = [[group["lr"] for group in optimizer.param_groups] for optimizer in trainer.optimizers]

    def elapsed(self) -> float:
        return self.timer.time_elapsed() if self.seconds is None else time.monotonic() - self.began

    def factor(self, elapsed: float) -> float:
        """The learning rate's multiplier after ``elapsed`` seconds of the budget."""
        u = (elapsed / self.budget - self.start_fraction) / (1.0 - self.start_fraction)
        return 1.0 - (1.0 - self.final) * min(max(u, 0.0), 1.0)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        factor = self.factor(self.elapsed())
        for optimizer, lrs in zip(trainer.optimizers, self.base, strict=True):
            for group, lr in zip(optimizer.param_groups, lrs, strict=True):
                group["lr"] = lr * factor
        pl_module.log("train/lr_factor", factor, on_step=True, on_epoch=False)
