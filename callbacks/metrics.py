"""GenerativeMetrics: FID, KID, IS, precision / recall / density / coverage and class coverage of generated images
during training (maths: ``lab.metrics``).

Every metric state is a torchmetrics state, so DDP ranks each generate and update their share of a fixed noise set
and torchmetrics syncs them at ``compute``; only rank zero writes the coverage plot.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning import LightningModule, Trainer
from torch import Tensor

from callbacks.base import EpochCallback
from datamodules.mnist import mnist_images
from lab.metrics.functional import shard, to_unit_range
from lab.metrics.image import ImageMetrics


class GenerativeMetrics(EpochCallback):
    """Every ``every_n_epochs`` epochs: FID, KID, IS, precision / recall / density / coverage (k = 5, on the FID
    features) and class coverage of ``n_samples`` generated images.

    Reads the module only through its protocol (``latent_dim``, ``data_range``, ``sample(n, z)``). Real statistics
    come once per run from the first ``n_real`` images of the MNIST test split; the generated images come from a fixed
    noise set, so successive values differ only through the generator. Under DDP every rank generates and updates its
    share and torchmetrics sums the states; only rank zero writes the coverage plot.

    Logs ``val/fid``, ``val/kid``, ``val/is``, ``val/precision``, ``val/recall``, ``val/density``, ``val/coverage``
    (``_inception`` suffixed with that backbone), ``val/classes_covered`` and ``val/class_kl``; saves
    ``<run dir>/class_coverage/epoch=NNN.png``.

    Args:
        every_n_epochs: cadence (the last epoch is always evaluated).
        n_samples: generated images per evaluation (10,000 is the usual FID sample size).
        n_real: real test images for the reference statistics (at most 10,000).
        backbone: 'classifier' (default, MNIST features) or 'inception' (InceptionV3, comparable with papers).
        inception_weights: InceptionV3 weights file when offline (default: torch's cache, else a download).
        batch_size: images per generator / backbone forward pass.
        kid_subset_size: images per KID subset, at most ``n_samples`` and ``n_real`` (None: 1,000 or fewer).
        data_dir: folder that holds MNIST/raw (default ``$LAB_DATA_DIR`` or ./data).
        plot: save the class-coverage bar chart.
        seed: seed of the fixed noise.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        n_samples: int = 10000,
        n_real: int = 10000,
        backbone: str = "classifier",
        inception_weights: str | None = None,
        batch_size: int = 500,
        kid_subset_size: int | None = None,
        data_dir: str | None = None,
        plot: bool = True,
        seed: int = 1234,
    ) -> None:
        super().__init__(every_n_epochs)
        if n_samples < 2 or not 2 <= n_real <= 10000:
            raise ValueError(f"n_samples must be >= 2 and n_real in [2, 10000], got {n_samples} and {n_real}")
        kid_subset_size = min(1000, n_samples, n_real) if kid_subset_size is None else kid_subset_size
        if not 2 <= kid_subset_size <= min(n_samples, n_real):
            raise ValueError(
                f"kid_subset_size must be in [2, min(n_samples, n_real)] = [2, {min(n_samples, n_real)}], "
                f"got {kid_subset_size}"
            )
        self.n_samples, self.n_real = n_samples, n_real
        self.data_dir, self.plot, self.seed, self.batch_size = data_dir, plot, seed, batch_size
        # Built now so a bad backbone or missing Inception weights fail before training starts.
        self.make_metrics = partial(
            ImageMetrics, backbone, inception_weights=inception_weights, batch_size=batch_size,
            kid_subset_size=kid_subset_size,
        )  # fmt: skip
        self.metrics, self.real_split = self.make_metrics(), ""
        self._noise: Tensor | None = None

    def use_real(self, trainer: Trainer, pl_module: LightningModule, split: str) -> None:
        """Real statistics from the first ``n_real`` images of ``split``: the official test split while fitting (the
        same reference for every run), the datamodule's held-out ``val`` or ``test`` split for ``validate`` /
        ``test``."""
        if tuple(pl_module.image_shape) != (1, 28, 28):
            raise ValueError(f"GenerativeMetrics needs 1x28x28 MNIST images, the module makes {pl_module.image_shape}")
        if self.real_split != split:
            self.metrics, self.real_split = self.make_metrics(), split
        self.metrics.to(pl_module.device)
        if not self.metrics.has_real:
            held_out = getattr(trainer.datamodule, "dataset", None) if trainer.state.fn != "fit" else None
            images = held_out(split).tensors[0] if held_out else mnist_images(split, self.n_real, self.data_dir)
            real = images[: self.n_real]  # (n, 1, 28, 28) uint8
            part = shard(len(real), trainer.global_rank, trainer.world_size)
            self.metrics.update(real[part].to(pl_module.device).float() / 255, real=True)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.use_real(trainer, pl_module, "test")

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "validate" and not trainer.sanity_checking:  # `fit` evaluates after training epochs
            self.held_out(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.held_out(trainer, pl_module, "test")

    def held_out(self, trainer: Trainer, pl_module: LightningModule, split: str) -> None:
        """``validate`` / ``test`` of a checkpoint: the metrics against that split, logged as ``<split>/<key>``."""
        self.use_real(trainer, pl_module, split)
        for key, value in self.evaluate(trainer, pl_module).items():
            if not key.endswith("histogram"):
                pl_module.log(f"{split}/{key}", float(value), sync_dist=True)

    def noise(self, pl_module: LightningModule, rank: int, world_size: int) -> Tensor:
        """This rank's share of the fixed noise (n, latent_dim), made once on the CPU."""
        if self._noise is None:
            gen = torch.Generator().manual_seed(self.seed)
            self._noise = torch.randn(self.n_samples, pl_module.latent_dim, generator=gen)
        return self._noise[shard(self.n_samples, rank, world_size)]

    @torch.no_grad()
    def evaluate(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        """Generates this rank's samples, updates the metrics, returns the synced values and resets."""
        for z in self.noise(pl_module, trainer.global_rank, trainer.world_size).split(self.batch_size):
            images = pl_module.sample(len(z), z=z.to(pl_module.device))  # (B, C, H, W) in data_range
            self.metrics.update(to_unit_range(images, pl_module.data_range), real=False)
        try:
            return self.metrics.compute(seed=self.seed)
        finally:
            self.metrics.reset()

    def on_due(self, trainer: Trainer, pl_module: LightningModule) -> None:
        values = self.evaluate(trainer, pl_module)
        for key, value in values.items():
            if not key.endswith("histogram"):
                # Identical on every rank already (torchmetrics synced); sync_dist keeps Lightning's DDP check quiet.
                pl_module.log(f"val/{key}", float(value), on_epoch=True, sync_dist=True)
        if trainer.is_global_zero and self.is_last(trainer):
            self.log_sample_table(trainer, pl_module)
        if self.plot:
            title = f"epoch {trainer.current_epoch}: {values['classes_covered']}/10 classes"
            draw = partial(save_coverage_plot, values["class_histogram"], title=title)
            name = f"class_coverage/epoch={trainer.current_epoch:03d}.png"
            self.save_png(trainer, "val/class_coverage", name, draw, "predicted-digit histogram")

    @torch.no_grad()
    def log_sample_table(self, trainer: Trainer, pl_module: LightningModule, n: int = 25) -> None:
        """W&B table ``val/final_samples``: ``n`` samples of the fixed noise with the classifier's label and
        confidence, so a dashboard can filter the final samples by digit (only when W&B is active)."""
        from pytorch_lightning.loggers import WandbLogger

        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if not loggers:
            return
        import wandb

        z = self.noise(pl_module, 0, 1)[:n].to(pl_module.device)
        images = to_unit_range(pl_module.sample(len(z), z=z), pl_module.data_range)  # (n, 1, 28, 28) in [0, 1]
        confidence, label = self.metrics.classifier.logits(images).softmax(dim=1).max(dim=1)
        pixels = (images[:, 0] * 255).round().to(torch.uint8).cpu().numpy()  # uint8 (n, 28, 28): renders as drawn
        rows = [[wandb.Image(p), int(d), round(float(c), 4)] for p, d, c in zip(pixels, label, confidence, strict=True)]
        # one row per sample: the image as uint8 pixels, the digit the classifier reads, its softmax confidence
        for logger in loggers:
            logger.log_table("val/final_samples", columns=["sample", "label", "confidence"], data=rows)


def save_coverage_plot(histogram: list[float], path: Path, title: str = "") -> Path:
    """Bar chart of predicted-class frequencies against the uniform 1/K line, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4, 2.6), dpi=100)
    ax.bar(range(len(histogram)), histogram, color="tab:blue")
    ax.axhline(1 / len(histogram), color="tab:red", linestyle="--", linewidth=1, label="uniform")
    ax.set_xticks(range(len(histogram)))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("fraction of samples")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
