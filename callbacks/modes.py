"""Mode-collapse callbacks: mixture modes (PacGAN/VEEGAN protocol) and Stacked MNIST modes, with their plots.

The maths (high-quality points, modes captured, reverse KL, Stacked-MNIST modes) is ``lab.metrics.functional``.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from callbacks.base import EpochCallback
from lab.metrics.functional import classify_stacked, mixture_mode_stats, stacked_mode_stats, to_unit_range
from lab.paths import run_dir


class _ModesCallback(EpochCallback):
    """Shared bookkeeping: evaluate every N epochs, keep the history, write ``modes.json`` in the run directory."""

    def __init__(self, every_n_epochs: int = 1) -> None:
        super().__init__(every_n_epochs)
        self.history: list[dict[str, Any]] = []

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        raise NotImplementedError

    def on_due(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                stats = self.evaluate(trainer, pl_module)
        finally:
            pl_module.train(was_training)
        stats = {"epoch": trainer.current_epoch, "step": trainer.global_step, **stats}  # step: optimizer steps
        self.history.append(stats)
        scalars = {f"val/{k}": float(v) for k, v in stats.items() if isinstance(v, int | float) and k != "epoch"}
        scalars.pop("val/step", None)
        pl_module.log_dict(scalars, on_step=False, on_epoch=True)
        self._write_json(trainer)

    @rank_zero_only
    def _write_json(self, trainer: pl.Trainer) -> None:
        final = {k: v for k, v in self.history[-1].items()}
        folder = run_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "modes.json").write_text(json.dumps({"final": final, "history": self.history}))


class MixtureModes(_ModesCallback):
    """Modes captured (``val/modes``, and ``val/modes_gated``: modes holding >= 20% of the HQ points the true mixture
    would put there), HQ % and reverse KL on a 2-D mixture, plus scatter PNGs and a strip over training.

    Reads ``centres`` and ``std`` from the trainer's datamodule (``GaussianMixtureDataModule``) and samples with
    ``pl_module.sample(n, z)`` from a fixed noise batch. Writes ``modes/epoch_NNNN.png`` and, at the end of fit,
    ``modes_strip.png`` (up to ``strip_panels`` snapshots evenly spread over training) in the run directory.

    Args:
        every_n_epochs: evaluate and plot every N epochs (and after the last one).
        n_samples: generated points per evaluation (2,500 in the published protocol).
        n_sigma: HQ radius in standard deviations (3 in the published protocol).
        strip_panels: snapshots in the strip.
        png_every_n_epochs: the scatter PNG (and its logged image) only on evaluations at a multiple of this many
            epochs, and after the last (None: every evaluation). A PNG costs about as much as 40 training steps of the
            2-D nets, so a 100-epoch ring run evaluated every 2 epochs draws 10 of them with 10 instead of 50.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        n_samples: int = 2500,
        n_sigma: float = 3.0,
        strip_panels: int = 6,
        png_every_n_epochs: int | None = None,
    ):
        super().__init__(every_n_epochs)
        if n_samples < 1 or strip_panels < 1 or (png_every_n_epochs is not None and png_every_n_epochs < 1):
            raise ValueError(
                f"n_samples, strip_panels and png_every_n_epochs must be >= 1, got {n_samples}, {strip_panels} and "
                f"{png_every_n_epochs}"
            )
        self.n_samples, self.n_sigma, self.strip_panels = n_samples, n_sigma, strip_panels
        self.png_every_n_epochs = png_every_n_epochs
        self.snapshots: list[tuple[int, torch.Tensor, dict]] = []
        self._noise: torch.Tensor | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        if not hasattr(datamodule, "centres") or not hasattr(datamodule, "std"):
            raise ValueError("MixtureModes needs a datamodule with `centres` and `std` (GaussianMixtureDataModule)")
        generator = torch.Generator().manual_seed(1234)
        self._noise = torch.randn(self.n_samples, pl_module.latent_dim, generator=generator)

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        datamodule = trainer.datamodule
        samples = pl_module.sample(self.n_samples, z=self._noise.to(pl_module.device)).cpu()  # (N, 2)
        stats = mixture_mode_stats(samples, datamodule.centres, datamodule.std, self.n_sigma)
        self.snapshots.append((trainer.current_epoch + 1, samples, stats))
        epoch, last = trainer.current_epoch + 1, trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if self.png_every_n_epochs is not None and epoch % self.png_every_n_epochs and not last:
            return stats
        draw = partial(plot_mixture_strip, [self.snapshots[-1]], datamodule.centres, datamodule.std)
        name = f"modes/epoch_{trainer.current_epoch + 1:04d}.png"
        self.save_png(trainer, "modes/scatter", name, draw, "generated points over the mode centres")
        return stats

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.snapshots or not trainer.is_global_zero:
            return
        picks = torch.linspace(0, len(self.snapshots) - 1, min(self.strip_panels, len(self.snapshots))).round().long()
        chosen = [self.snapshots[i] for i in sorted(set(picks.tolist()))]
        datamodule = trainer.datamodule
        title = getattr(pl_module, "family", "")
        draw = partial(plot_mixture_strip, chosen, datamodule.centres, datamodule.std, title=title)
        self.save_png(trainer, "modes/strip", "modes_strip.png", draw, "points over training")


def plot_mixture_strip(
    snapshots: list[tuple[int, torch.Tensor, dict]], centres: torch.Tensor, std: float, path: Path, title: str = ""
) -> Path:
    """One scatter panel per (epoch, samples, stats) snapshot over the mode centres, saved as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extent = float(centres.abs().max()) * 1.5 + 10 * std
    fig, axes = plt.subplots(1, len(snapshots), figsize=(2.6 * len(snapshots), 2.8), squeeze=False)
    for ax, (epoch, samples, stats) in zip(axes[0], snapshots, strict=True):
        points = samples.clamp(-2 * extent, 2 * extent)
        ax.scatter(points[:, 0], points[:, 1], s=1.5, alpha=0.35, color="tab:blue", linewidths=0)
        ax.scatter(centres[:, 0], centres[:, 1], s=14, marker="x", color="tab:red", linewidths=1)
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"ep {epoch}: {stats['modes']}/{len(centres)} modes, {stats['hq_percent']:.0f}% HQ", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class StackedMNISTModes(_ModesCallback):
    """Modes (of 1,000) and KL to uniform on Stacked MNIST, each channel classified by the project's MNIST classifier.

    Args:
        every_n_epochs: evaluate every N epochs (and after the last one).
        n_samples: generated images per evaluation (26,000 in the published protocol).
        batch_size: images generated and classified at once.
    """

    def __init__(self, every_n_epochs: int = 1, n_samples: int = 26_000, batch_size: int = 1000) -> None:
        super().__init__(every_n_epochs)
        if n_samples < 1 or batch_size < 1:
            raise ValueError(f"n_samples and batch_size must be >= 1, got {n_samples} and {batch_size}")
        self.n_samples, self.batch_size = n_samples, batch_size
        self._classifier: torch.nn.Module | None = None

    def classifier(self, device: torch.device) -> torch.nn.Module:
        if self._classifier is None:
            from lab.metrics.backbones import load_classifier

            self._classifier = load_classifier().eval()
        return self._classifier.to(device)

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        classifier = self.classifier(pl_module.device)
        digits = []
        for start in range(0, self.n_samples, self.batch_size):
            n = min(self.batch_size, self.n_samples - start)
            images = to_unit_range(pl_module.sample(n), pl_module.data_range)  # (n, 3, 28, 28)
            digits.append(classify_stacked(images, classifier).cpu())
        return stacked_mode_stats(torch.cat(digits))
