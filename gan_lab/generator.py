"""The shared half of every image family (GANs and the VAE): data ranges, sampling and the image callbacks.

``ImageGeneratorMixin`` implements ``lab.protocol.ImageGenerator`` for a LightningModule that sets ``latent_dim``,
``image_shape`` and ``value_range`` and defines ``generate(z)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pytorch_lightning import Callback
from torch import Tensor

# data scaling <-> generator output activation; "none" is for unbounded data such as 2-D mixture points.
VALUE_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "none": (-math.inf, math.inf)}


def check_value_range(value_range: str | None, output_activation: str, what: str = "generator") -> str:
    """The data scaling that matches ``output_activation``; raises ValueError when ``value_range`` disagrees."""
    if output_activation not in VALUE_RANGES:
        raise ValueError(
            f"{what} output_activation must be one of {', '.join(VALUE_RANGES)}, got {output_activation!r}"
        )
    if value_range is not None and value_range != output_activation:
        low, high = VALUE_RANGES[output_activation]
        raise ValueError(
            f"data value_range {value_range!r} does not match the {what}'s output_activation {output_activation!r} "
            f"(which makes images in [{low:g}, {high:g}]): set data.init_args.value_range={output_activation}"
        )
    return output_activation


def check_metrics_args(every_n_epochs: int, samples: int) -> tuple[int, int]:
    """Validates the metric cadence (>= 0) and sample count (>= 2) of an image family."""
    if every_n_epochs < 0 or samples < 2:
        raise ValueError(
            f"metrics_every_n_epochs must be >= 0 and metrics_samples >= 2, got {every_n_epochs}, {samples}"
        )
    return every_n_epochs, samples


class ImageGeneratorMixin:
    """The shared half of the protocol: ``data_range``, ``to_unit``, ``sample`` and the image callbacks.

    Subclasses set ``latent_dim``, ``image_shape``, ``value_range`` and implement ``generate(z)``.

    ``configure_callbacks`` attaches the sample-grid and interpolation callbacks (init arg ``sample_every_n_epochs``,
    0 turns them off) to image data and, where the datamodule declares ``scored_by = "mnist"``, FID / IS / class
    coverage (``callbacks.metrics.GenerativeMetrics``; init args ``metrics_every_n_epochs`` and ``metrics_samples``)
    rather than a ``callbacks:`` list repeated in every
    family YAML: every image family gets them for free, a one-line override changes the cadence, and one of these
    callbacks given explicitly in ``trainer.callbacks`` wins (it is then not added twice).
    """

    latent_dim: int
    image_shape: tuple[int, ...]
    value_range: str
    sample_every_n_epochs: int
    metrics_every_n_epochs: int
    metrics_samples: int

    @property
    def data_range(self) -> tuple[float, float]:
        return VALUE_RANGES[self.value_range]

    def to_unit(self, images: Tensor) -> Tensor:
        """Maps images from ``data_range`` to [0, 1] (clamped); unbounded data (``none``) is returned as it is."""
        if self.value_range == "none":
            return images
        low, high = self.data_range
        return ((images - low) / (high - low)).clamp(0.0, 1.0)

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), shape (n, latent_dim), on the module's device."""
        return torch.randn(n, self.latent_dim, device=self.device, generator=generator)  # type: ignore[attr-defined]

    def generate(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, n: int, z: Tensor | None = None) -> Tensor:
        """(n, C, H, W) images in ``data_range`` from noise ``z`` (fresh N(0, I) if None); eval mode, no grad."""
        was_training = self.training  # type: ignore[attr-defined]
        self.eval()  # type: ignore[attr-defined]
        try:
            with torch.no_grad():
                z = self.sample_noise(n) if z is None else z.to(self.device)  # type: ignore[attr-defined]
                return self.generate(z)
        finally:
            self.train(was_training)  # type: ignore[attr-defined]

    @property
    def wandb_tags(self) -> tuple[str, ...]:
        """W&B tags beside the family and the dataset: the generator's ``backbone`` (``mlp``, ``conv``, ``mixture``)."""
        backbone = getattr(getattr(self, "generator", None), "backbone", None)
        return (backbone,) if backbone else ()

    def scored_by(self) -> str | None:
        """What the data's samples are scored by, as its datamodule declares (``scored_by``: ``mnist``,
        ``stacked_mnist`` or ``mixture``): the datamodule given to ``check_datamodule`` (the CLI's), else the
        trainer's; None without one (then no metric callbacks and only ``last.ckpt``)."""
        datamodule = getattr(self, "_checked_datamodule", None)
        if datamodule is None:
            try:
                datamodule = self.trainer.datamodule  # type: ignore[attr-defined]
            except RuntimeError:  # not attached to a trainer
                datamodule = None
        return getattr(datamodule, "scored_by", None)

    def check_datamodule(self, datamodule: Any) -> None:
        """Remembers the datamodule, whose ``scored_by`` picks the metric callbacks and the best checkpoint's metric
        (the CLI calls this before the trainer is built)."""
        self._checked_datamodule = datamodule

    @property
    def checkpoint_monitor(self) -> tuple[Any, ...] | None:
        """The metric that picks the best checkpoint, by what the data is scored by: FID on MNIST (on the epochs that
        compute it), HQ points on 2-D mixtures, modes on Stacked MNIST (None when the run computes none of them: only
        ``last.ckpt`` is kept)."""
        scored_by = self.scored_by()
        if scored_by == "mnist":
            return ("val/fid", "min", self.metrics_every_n_epochs) if self.metrics_every_n_epochs > 0 else None
        return {"mixture": ("val/hq_percent", "max"), "stacked_mnist": ("val/modes", "max")}.get(scored_by or "")

    def configure_callbacks(self) -> list[Callback]:
        scored_by = self.scored_by()
        if scored_by not in ("mnist", "stacked_mnist"):
            return []  # not images (2-D points: the config's MixtureModes draws them), or no data declared
        from callbacks.interpolation import LatentInterpolation
        from callbacks.metrics import GenerativeMetrics
        from callbacks.samples import SampleGrid

        present = tuple(type(cb) for cb in self.trainer.callbacks)  # type: ignore[attr-defined]
        wanted: list[Callback] = []
        if self.sample_every_n_epochs > 0:
            wanted += [
                SampleGrid(every_n_epochs=self.sample_every_n_epochs),
                LatentInterpolation(every_n_epochs=self.sample_every_n_epochs),
            ]
        if self.metrics_every_n_epochs > 0 and scored_by == "mnist":
            wanted.append(GenerativeMetrics(every_n_epochs=self.metrics_every_n_epochs, **self._metrics_sizes()))
        return [cb for cb in wanted if not issubclass(type(cb), present)]

    def _metrics_sizes(self) -> dict[str, int]:
        """Sample and reference sizes of FID/IS: ``metrics_samples``, or 256 in smoke runs (fast_dev_run or an
        integer ``limit_train_batches``, as configs/tiny.yaml sets), whose metric values only prove the path runs."""
        trainer = self.trainer  # type: ignore[attr-defined]
        smoke = bool(trainer.fast_dev_run) or isinstance(trainer.limit_train_batches, int)
        n = min(self.metrics_samples, 256) if smoke else self.metrics_samples
        return {"n_samples": n, "n_real": min(n, 10000), "kid_subset_size": min(n, 1000)}
