"""``ValidationSplitMetrics``: the in-training FID / KID / IS / PRDC of ``GenerativeMetrics`` against the validation
split, for hyperparameter searches (``experiments/families_tuning.yaml``): the choice never reads the test split,
which the reported runs alone are scored against.

``GenerativeMetrics`` takes its reference statistics from the official MNIST test split while fitting (the same
reference for every reported run); this subclass takes them from the datamodule's validation split instead (the
``val_size`` images held out of the training split, 5,000 by default), so a search logs ``val/fid`` etc. that mean
what their name says. A module adds its own ``GenerativeMetrics`` unless told not to: compose with
``model.init_args.metrics_every_n_epochs: 0`` and this callback in ``trainer.callbacks``.
"""

from __future__ import annotations

from pytorch_lightning import LightningModule, Trainer

from callbacks.metrics import GenerativeMetrics
from lab.metrics.functional import shard


class ValidationSplitMetrics(GenerativeMetrics):
    """``GenerativeMetrics`` (same arguments) whose reference statistics while fitting are the first ``n_real``
    images of the datamodule's validation split."""

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if tuple(pl_module.image_shape) != (1, 28, 28):
            raise ValueError(f"GenerativeMetrics needs 1x28x28 MNIST images, the module makes {pl_module.image_shape}")
        dataset = getattr(trainer.datamodule, "dataset", None)
        real = dataset("val").tensors[0][: self.n_real] if dataset else None  # (n, 1, 28, 28) uint8
        if real is None or len(real) < 2:
            raise ValueError("ValidationSplitMetrics needs a datamodule with a validation split (val_size >= 2)")
        self.metrics, self.real_split = self.make_metrics(), "val"
        self.metrics.to(pl_module.device)
        part = shard(len(real), trainer.global_rank, trainer.world_size)
        self.metrics.update(real[part].to(pl_module.device).float() / 255, real=True)
