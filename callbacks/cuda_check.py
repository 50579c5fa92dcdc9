"""``FastCudaCheck``: keeps ``torch.cuda.is_available()`` cheap while a run trains on a machine without a GPU.

Importing Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1``, so that asking whether CUDA is available never
initialises CUDA (a process that forks after that could not use it). Until CUDA is initialised, which never happens
without a GPU, each ``torch.cuda.is_available()`` then loads NVML and falls back to the CUDA runtime, and
``torch.optim.Adam``/``AdamW`` ask it in every ``step`` (their graph-capture health check): about 75 microseconds per
optimizer step, a tenth of a whole step of the 2-D mixture nets on one CPU core. A plain PyTorch loop never pays it.

When no CUDA device is visible there is nothing to protect, so this callback unsets the variable from the start of
training until the Trainer tears down (or the fit raises), then puts Lightning's value back. With a GPU visible it
does nothing.
"""

from __future__ import annotations

import os

import torch
from pytorch_lightning import Callback, LightningModule, Trainer

VARIABLE = "PYTORCH_NVML_BASED_CUDA_CHECK"


class FastCudaCheck(Callback):
    """Unsets ``PYTORCH_NVML_BASED_CUDA_CHECK`` during training when no CUDA device is visible (restored after)."""

    def __init__(self) -> None:
        self._saved: str | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if VARIABLE in os.environ and torch.cuda.device_count() == 0:  # NVML-based count: initialises nothing
            self._saved = os.environ.pop(VARIABLE)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._saved is not None:
            os.environ[VARIABLE], self._saved = self._saved, None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """A fit that raises (a divergence, Ctrl-C) never reaches the callbacks' ``teardown``: restore here."""
        self.teardown(trainer, pl_module, "fit")
