"""``TimedMetrics``: a run's image metrics at fixed budgets of training wall time, for quality-per-minute curves.

The clock starts when training starts and stops while this callback evaluates, so each budget is the wall time the
run spent training (data, steps, checkpoints, other callbacks) and the evaluations themselves are free. At each
budget the generator (its weight average, where the module keeps one) is scored as ``GenerativeMetrics`` scores it
(FID / KID / IS / precision / recall / density / coverage / classes on the suite's classifier, against the MNIST
test split) and the values are written at once as ``eval/<metric>_<budget>s`` (``eval/is_60s``); the run stops after
the last budget. Set ``model.init_args.metrics_every_n_epochs: 0`` beside it so that no other evaluation runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pytorch_lightning import LightningModule, Trainer

from callbacks.metrics import GenerativeMetrics

LOGGED = ("fid", "kid", "is", "precision", "recall", "density", "coverage", "classes_covered", "class_kl")


class TimedMetrics(GenerativeMetrics):
    """Scores the generator after ``at_seconds`` of training wall time (each once), then stops the run.

    Args:
        at_seconds: the budgets, in seconds of training wall time (increasing).
        **kwargs: as ``GenerativeMetrics`` (``n_samples``, ``n_real``, ``backbone``, ...); its cadence is unused.
    """

    def __init__(self, at_seconds: Sequence[float] = (60, 150, 300, 600), **kwargs: Any) -> None:
        super().__init__(every_n_epochs=1, plot=False, **kwargs)
        budgets = [float(s) for s in at_seconds]
        if not budgets or budgets != sorted(set(budgets)) or budgets[0] <= 0:
            raise ValueError(f"at_seconds must be positive and increasing, got {list(at_seconds)}")
        self.at_seconds = budgets
        self.done = 0  # budgets scored so far
        self.start, self.paused = 0.0, 0.0

    def elapsed(self) -> float:
        """Training wall time so far: since training started, less the time spent evaluating."""
        return time.perf_counter() - self.start - self.paused

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.use_real(trainer, pl_module, "test")  # before the clock starts

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.start, self.paused, self.done = time.perf_counter(), 0.0, 0

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        pass  # no per-epoch evaluation: only the budgets

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if self.done == len(self.at_seconds) or self.elapsed() < self.at_seconds[self.done]:
            return
        began = time.perf_counter()
        budget = self.at_seconds[self.done]
        values = self.evaluate(trainer, pl_module)
        label = f"{budget:g}s"
        logged = {f"eval/{key}_{label}": float(values[key]) for key in LOGGED if key in values}
        logged[f"eval/steps_{label}"] = float(trainer.global_step)  # optimizer steps within the budget
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(logged, step=trainer.global_step)
        self.done += 1
        if self.done == len(self.at_seconds):
            trainer.should_stop = True
        self.paused += time.perf_counter() - began
