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
    0 turns them off) and, for MNIST-shaped images, FID / IS / class coverage (``callbacks.metrics.GenerativeMetrics``;
    init args ``metrics_every_n_epochs`` and ``metrics_samples``) rather than a ``callbacks:`` list repeated in every
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
    def checkpoint_monitor(self) -> tuple[Any, ...] | None:
        """The metric that picks the best checkpoint: FID on MNIST, HQ points on 2-D mixtures, modes on Stacked
        MNIST (None when the run computes none of them: only ``last.ckpt`` is kept)."""
        if len(self.image_shape) == 1:
            return ("val/hq_percent", "max")
        if tuple(self.image_shape) == (1, 28, 28) and self.metrics_every_n_epochs > 0:
            return ("val/fid", "min", self.metrics_every_n_epochs)  # compared on the epochs that compute FID
        return ("val/modes", "max") if tuple(self.image_shape) == (3, 28, 28) else None

    @property
    def checkpoint_min_interval_s(self) -> float:
        """``last.ckpt`` at most every this many seconds: 2-D mixture epochs last a fraction of a second (100 writes
        would cost a ring run more than its evaluations), image epochs write every epoch."""
        return 10.0 if len(self.image_shape) == 1 else 0.0

    def configure_callbacks(self) -> list[Callback]:
        if len(self.image_shape) != 3:
            return []  # not images (e.g. 2-D points)
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
        if self.metrics_every_n_epochs > 0 and tuple(self.image_shape) == (1, 28, 28):
            wanted.append(GenerativeMetrics(every_n_epochs=self.metrics_every_n_epochs, **self._metrics_sizes()))
        return [cb for cb in wanted if not issubclass(type(cb), present)]

    def _metrics_sizes(self) -> dict[str, int]:
        """Sample and reference sizes of FID/IS: ``metrics_samples``, or 256 in smoke runs (fast_dev_run or an
        integer ``limit_train_batches``, as configs/tiny.yaml sets), whose metric values only prove the path runs."""
        trainer = self.trainer  # type: ignore[attr-defined]
        smoke = bool(trainer.fast_dev_run) or isinstance(trainer.limit_train_batches, int)
        n = min(self.metrics_samples, 256) if smoke else self.metrics_samples
        return {"n_samples": n, "n_real": min(n, 10000), "kid_subset_size": min(n, 1000)}
