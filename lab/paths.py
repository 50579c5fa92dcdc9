"""Where things live: the data folder, the configs folder and a run's directory."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from lab.errors import LabError


def default_data_dir() -> str:
    """The data folder: ``$LAB_DATA_DIR`` when set, else ``./data``."""
    return os.environ.get("LAB_DATA_DIR") or str(Path("data"))


def config_dir() -> Path:
    """The ``configs/`` folder: ``$LAB_CONFIGS``, else ``./configs``, else the one installed with the package.

    The same folder whether the suite is installed editable (the checkout's) or not (package data).
    """
    candidates = [os.environ.get("LAB_CONFIGS"), "configs"]
    spec = importlib.util.find_spec("configs")
    if spec is not None and spec.submodule_search_locations:
        candidates += list(spec.submodule_search_locations)
    for candidate in candidates:
        if candidate and (Path(candidate) / "base.yaml").is_file():
            return Path(candidate)
    raise LabError("configs/ not found: run from the repository root or set LAB_CONFIGS to the folder of base.yaml")


def run_dir(trainer: Any) -> Path:
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
