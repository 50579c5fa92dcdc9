"""``EpochCallback``: the one cadence and publishing path of every callback that computes or draws after an epoch.

A subclass implements ``on_due(trainer, pl_module)``, which runs on every rank after epoch ``every_n_epochs``,
2 * ``every_n_epochs``, ... and after the last epoch (or when training stops early); it draws through ``save_png``,
which writes the PNG in the run directory on rank zero and sends the same file to every active image logger at the
step of the epoch's ``val/`` scalars (``lab.loggers.publish_png``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytorch_lightning import Callback, LightningModule, Trainer

from lab.loggers import publish_png, scalar_step
from lab.paths import run_dir


class EpochCallback(Callback):
    """Runs ``on_due`` every ``every_n_epochs`` epochs and after the last one.

    Args:
        every_n_epochs: cadence (>= 1); the last epoch is always included.
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs

    @staticmethod
    def is_last(trainer: Trainer) -> bool:
        """True after the run's last epoch, or when training stops early."""
        last = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs
        return last or trainer.should_stop

    def due(self, trainer: Trainer) -> bool:
        """True after the epochs this callback runs on (never during the sanity check)."""
        epoch = trainer.current_epoch + 1
        return not trainer.sanity_checking and (epoch % self.every_n_epochs == 0 or self.is_last(trainer))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.due(trainer):
            self.on_due(trainer, pl_module)

    def on_due(self, trainer: Trainer, pl_module: LightningModule) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def save_png(trainer: Trainer, key: str, relative: str, draw: Callable[[Path], object], what: str) -> Path | None:
        """On rank zero: ``draw(path)`` writes ``<run dir>/<relative>``, then the file goes to the image loggers under
        ``key``, captioned with ``what``, the epoch and the step. Returns the path (None on other ranks)."""
        if not trainer.is_global_zero:
            return None
        path = run_dir(trainer) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(path)
        publish_png(trainer, key, path, f"{what}, epoch {trainer.current_epoch}, step {scalar_step(trainer)}")
        return path
