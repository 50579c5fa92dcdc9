"""Callbacks of the suite. They read a module only through its protocol (``latent_dim``, ``sample(n)``, ...)."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning import Trainer


def run_dir(trainer: Trainer) -> Path:
    """The run directory: the first logger's version folder, else the trainer's root dir.

    The same folder as ``trainer.log_dir``, computed locally: ``trainer.log_dir`` broadcasts from rank 0 under DDP,
    a collective that deadlocks when called on rank zero alone (as every file-writing callback does).
    """
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    if trainer.loggers:
        logger = trainer.loggers[0]
        folder = logger.log_dir if isinstance(logger, CSVLogger | TensorBoardLogger) else logger.save_dir
        if folder:
            return Path(folder)
    return Path(trainer.default_root_dir)
