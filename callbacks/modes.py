"""Mode-collapse metrics (PacGAN/VEEGAN protocol) as pure functions, and the callbacks that log them.

Definitions (mixtures, after PacGAN, Lin et al. 2018, and VEEGAN, Srivastava et al. 2017):

- a generated point is *high quality* (HQ) when its distance to the nearest mode centre is <= ``n_sigma * std``
  (``n_sigma`` = 3);
- a mode is *captured* when at least one HQ point has it as nearest centre (out of 2,500 generated points);
- *reverse KL* is ``KL(p || u) = sum_k p_k log(K p_k)``, where ``p`` is the histogram of the HQ points over the
  K modes (normalised by the number of HQ points; terms with ``p_k = 0`` count 0) and ``u`` is uniform over the K
  modes. It is 0 when the HQ points are spread evenly over all modes and ``log K`` when they all sit in one mode;
  it is NaN when there is no HQ point at all.

Stacked MNIST (after VEEGAN / Unrolled GAN): each channel of a generated image is classified by the project's MNIST
classifier; the mode is ``100 * d_red + 10 * d_green + d_blue`` (1,000 modes); ``modes`` counts the modes hit at
least once and ``kl`` is ``KL(p || u)`` over the 1,000 modes with ``p`` the histogram of all samples.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from callbacks import run_dir

STACKED_MODES = 1000


def kl_to_uniform(counts: torch.Tensor) -> float:
    """``sum_k p_k log(K p_k)`` with ``p = counts / counts.sum()`` over ``K = len(counts)``; NaN if all counts are 0."""
    total = counts.sum()
    if total <= 0:
        return math.nan
    p = counts.double() / total
    nonzero = p > 0
    return float((p[nonzero] * torch.log(p[nonzero] * len(counts))).sum())


def mixture_mode_stats(samples: torch.Tensor, centres: torch.Tensor, std: float, n_sigma: float = 3.0) -> dict:
    """Modes captured, HQ percentage and reverse KL of ``samples`` ``(N, 2)`` against ``centres`` ``(K, 2)``.

    Returns:
        ``{"modes": int, "hq_percent": float, "reverse_kl": float, "counts": list[int]}`` (``counts``: HQ points
        per mode).
    """
    samples = samples.detach().float().cpu()
    centres = centres.float().cpu()
    distance, nearest = torch.cdist(samples, centres).min(dim=1)  # (N,), (N,)
    high_quality = distance <= n_sigma * std
    counts = torch.bincount(nearest[high_quality], minlength=len(centres))  # (K,)
    return {
        "modes": int((counts > 0).sum()),
        "hq_percent": 100.0 * float(high_quality.float().mean()),
        "reverse_kl": kl_to_uniform(counts),
        "counts": counts.tolist(),
    }


def stacked_mode_stats(digits: torch.Tensor) -> dict:
    """Modes hit (of 1,000) and KL to uniform from per-channel digits ``(N, 3)`` (red, green, blue)."""
    if digits.ndim != 2 or digits.shape[1] != 3:
        raise ValueError(f"digits must be (N, 3), got {tuple(digits.shape)}")
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]  # (N,)
    counts = torch.bincount(modes.long().cpu(), minlength=STACKED_MODES)
    return {"modes": int((counts > 0).sum()), "kl": kl_to_uniform(counts)}


def classify_stacked(images: torch.Tensor, classifier: torch.nn.Module) -> torch.Tensor:
    """Per-channel digits ``(N, 3)`` of stacked images ``(N, 3, 28, 28)`` in [0, 1] (one MNIST prediction each)."""
    n = images.shape[0]
    channels = images.reshape(n * 3, 1, *images.shape[-2:])  # (3N, 1, 28, 28)
    logits = classifier(channels)  # (3N, 10)
    return logits.argmax(dim=1).reshape(n, 3)


def _to_unit_range(images: torch.Tensor, data_range: tuple[float, float] | None) -> torch.Tensor:
    """Maps images from the module's data range to [0, 1]."""
    low, high = data_range if data_range is not None else (0.0, 1.0)
    return ((images - low) / (high - low)).clamp(0, 1)


def _should_run(trainer: pl.Trainer, every_n_epochs: int) -> bool:
    epoch = trainer.current_epoch + 1
    last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
    return epoch % every_n_epochs == 0 or last or trainer.should_stop


class _ModesCallback(pl.Callback):
    """Shared bookkeeping: evaluate every N epochs, keep the history, write ``modes.json`` in the run directory."""

    def __init__(self, every_n_epochs: int = 1) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self.history: list[dict[str, Any]] = []

    def run_dir(self, trainer: pl.Trainer) -> Path:
        path = run_dir(trainer)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        raise NotImplementedError

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not _should_run(trainer, self.every_n_epochs):
            return
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                stats = self.evaluate(trainer, pl_module)
        finally:
            pl_module.train(was_training)
        stats = {"epoch": trainer.current_epoch, "step": trainer.global_step, **stats}
        self.history.append(stats)
        scalars = {f"val/{k}": float(v) for k, v in stats.items() if isinstance(v, int | float) and k != "epoch"}
        scalars.pop("val/step", None)
        pl_module.log_dict(scalars, on_step=False, on_epoch=True)
        self._write_json(trainer)

    @rank_zero_only
    def _write_json(self, trainer: pl.Trainer) -> None:
        final = {k: v for k, v in self.history[-1].items()}
        (self.run_dir(trainer) / "modes.json").write_text(json.dumps({"final": final, "history": self.history}))


class MixtureModes(_ModesCallback):
    """Modes captured, HQ % and reverse KL on a 2-D mixture, plus scatter PNGs and a strip over training.

    Reads ``centres`` and ``std`` from the trainer's datamodule (``GaussianMixtureDataModule``) and samples with
    ``pl_module.sample(n, z)`` from a fixed noise batch. Writes ``modes/epoch_NNNN.png`` and, at the end of fit,
    ``modes_strip.png`` (up to ``strip_panels`` snapshots evenly spread over training) in the run directory.

    Args:
        every_n_epochs: evaluate and plot every N epochs (and after the last one).
        n_samples: generated points per evaluation (2,500 in the published protocol).
        n_sigma: HQ radius in standard deviations (3 in the published protocol).
        strip_panels: snapshots in the strip.
    """

    def __init__(self, every_n_epochs: int = 1, n_samples: int = 2500, n_sigma: float = 3.0, strip_panels: int = 6):
        super().__init__(every_n_epochs)
        if n_samples < 1 or strip_panels < 1:
            raise ValueError(f"n_samples and strip_panels must be >= 1, got {n_samples} and {strip_panels}")
        self.n_samples, self.n_sigma, self.strip_panels = n_samples, n_sigma, strip_panels
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
        if trainer.is_global_zero:
            folder = self.run_dir(trainer) / "modes"
            folder.mkdir(exist_ok=True)
            path = folder / f"epoch_{trainer.current_epoch + 1:04d}.png"
            plot_mixture_strip([self.snapshots[-1]], datamodule.centres, datamodule.std, path)
        return stats

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.snapshots or not trainer.is_global_zero:
            return
        picks = torch.linspace(0, len(self.snapshots) - 1, min(self.strip_panels, len(self.snapshots))).round().long()
        chosen = [self.snapshots[i] for i in sorted(set(picks.tolist()))]
        datamodule = trainer.datamodule
        path = self.run_dir(trainer) / "modes_strip.png"
        plot_mixture_strip(chosen, datamodule.centres, datamodule.std, path, title=getattr(pl_module, "family", ""))
        _log_image(trainer, "modes/strip", path)


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


def _log_image(trainer: pl.Trainer, key: str, path: Path) -> None:
    """Adds the PNG at ``path`` to every active logger that takes images (W&B, TensorBoard)."""
    for logger in trainer.loggers:
        if type(logger).__name__ == "WandbLogger":
            logger.log_image(key=key, images=[str(path)], step=trainer.global_step)
        elif type(logger).__name__ == "TensorBoardLogger":
            import matplotlib.image as mpimg

            image = torch.from_numpy(mpimg.imread(path)[..., :3].copy()).permute(2, 0, 1)  # (3, H, W)
            logger.experiment.add_image(key, image, trainer.global_step)


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
            from gan_lab.classifier import load_classifier

            self._classifier = load_classifier().eval()
        return self._classifier.to(device)

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        classifier = self.classifier(pl_module.device)
        digits = []
        for start in range(0, self.n_samples, self.batch_size):
            n = min(self.batch_size, self.n_samples - start)
            images = _to_unit_range(pl_module.sample(n), pl_module.data_range)  # (n, 3, 28, 28)
            digits.append(classify_stacked(images, classifier).cpu())
        return stacked_mode_stats(torch.cat(digits))
