"""LightningDataModules of the suite: palindromes, MNIST, Gaussian mixtures, Stacked MNIST."""

import os
from pathlib import Path


def default_data_dir() -> str:
    """The data folder: ``$LAB_DATA_DIR`` when set, else ``./data``."""
    return os.environ.get("LAB_DATA_DIR") or str(Path("data"))
