"""Image metrics as thin torchmetrics classes over ``lab.metrics.functional`` and ``lab.metrics.backbones``.

``ImageMetrics`` holds FID, KID, IS, precision / recall / density / coverage (``lab.metrics.prdc``, on the features
KID keeps) and class coverage of one backbone; every state is a torchmetrics state, so DDP ranks each update and
torchmetrics syncs them at ``compute``. The real statistics are kept across ``reset``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities import dim_zero_cat

from lab.metrics.backbones import (
    BACKBONES,
    ClassifierFeatures,
    ClassifierLogits,
    InceptionFeatures,
    MNISTClassifier,
    SharedInception,
    inception_network,
    load_classifier,
)
from lab.metrics.functional import coverage_stats
from lab.metrics.prdc import prdc


class ClassCoverage(Metric):
    """Histogram of predicted classes; ``compute`` gives the histogram, classes covered and KL(hist || uniform)."""

    full_state_update = False

    def __init__(self, num_classes: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("counts", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, predictions: Tensor) -> None:
        self.counts += torch.bincount(predictions.flatten().long(), minlength=self.num_classes)

    def compute(self) -> dict[str, Tensor]:
        return coverage_stats(self.counts)


class ImageMetrics(nn.Module):
    """FID, KID, IS, precision / recall / density / coverage (k = 5) and class coverage of [0, 1] images, real
    statistics kept across ``reset``.

    Args:
        backbone: 'classifier' (MNIST classifier features / logits) or 'inception' (InceptionV3).
        classifier: the MNIST classifier (default: the committed weights); always used for class coverage.
        inception_weights: InceptionV3 weights file for the inception backbone (default: torch's cache).
        is_splits: number of splits of the Inception Score (its std is over splits).
        batch_size: images per forward pass; bounds memory whatever the size of the inputs.
        kid_subset_size: images per KID subset (at most the smaller of the real and generated counts); KID is the
            unbiased MMD^2 with the cubic polynomial kernel, averaged over ``kid_subsets`` random subsets.
        kid_subsets: number of KID subsets (its std is over them).
        prdc_k: the nearest neighbour that sets the radii of precision, recall, density and coverage.
    """

    def __init__(
        self,
        backbone: str = "classifier",
        classifier: MNISTClassifier | None = None,
        inception_weights: str | Path | None = None,
        is_splits: int = 10,
        batch_size: int = 500,
        kid_subset_size: int = 1000,
        kid_subsets: int = 100,
        prdc_k: int = 5,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
        if batch_size <= 0 or is_splits <= 0 or kid_subset_size < 2 or kid_subsets < 1 or prdc_k < 1:
            raise ValueError("batch_size, is_splits, kid_subsets and prdc_k must be positive, kid_subset_size >= 2")
        self.backbone, self.batch_size, self.prdc_k = backbone, batch_size, prdc_k
        self.classifier = classifier if classifier is not None else load_classifier()
        self.classifier.eval().requires_grad_(False)
        if backbone == "classifier":
            fid_net: nn.Module = ClassifierFeatures(self.classifier)
            is_net: nn.Module = ClassifierLogits(self.classifier)
        else:
            self.shared = SharedInception(inception_network(inception_weights))
            fid_net, is_net = InceptionFeatures(self.shared, "2048"), InceptionFeatures(self.shared, "logits_unbiased")
        self.fid = FrechetInceptionDistance(feature=fid_net.eval(), reset_real_features=False)
        self.kid_subset_size = kid_subset_size
        with warnings.catch_warnings():  # "will save all extracted features": bounded here, reset after each compute
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            self.kid = KernelInceptionDistance(
                feature=fid_net, subsets=kid_subsets, subset_size=kid_subset_size, reset_real_features=False
            )
            self.inception_score = InceptionScore(feature=is_net.eval(), splits=is_splits)
        self.coverage = ClassCoverage()
        self.suffix = "" if backbone == "classifier" else "_inception"

    @torch.no_grad()
    def update(self, images: Tensor, real: bool) -> None:
        """Adds images (B, C, H, W) in [0, 1]: real ones to FID's real statistics, generated ones to every metric."""
        for batch in images.split(self.batch_size):
            batch = batch.float()
            self.fid.update(batch, real=real)
            self.kid.update(batch, real=real)
            if not real:
                self.inception_score.update(batch)
                if batch.shape[1:] == (1, 28, 28):
                    self.coverage.update(self.classifier.predict(batch))
            if self.backbone == "inception":
                self.shared.clear()

    @torch.no_grad()
    def compute(self, seed: int = 0, with_prdc: bool = True) -> dict[str, Any]:
        """Metrics of the generated images seen since the last ``reset``: fid, kid, is, precision, ...,
        classes_covered, ... (``with_prdc=False``: without precision, recall, density and coverage)."""
        n_real, n_fake = int(self.fid.real_features_num_samples), int(self.fid.fake_features_num_samples)
        self.kid.subset_size = min(self.kid_subset_size, n_real, n_fake)
        with torch.random.fork_rng(devices=[]):
            # InceptionScore and KID shuffle (CPU randperm): seed only the CPU generator, inside the fork, so the
            # training run's CPU and CUDA streams are untouched.
            torch.random.default_generator.manual_seed(seed)
            is_mean, is_std = self.inception_score.compute()
            kid_mean, kid_std = self.kid.compute()
        out: dict[str, Any] = {
            f"fid{self.suffix}": float(self.fid.compute()),
            f"kid{self.suffix}": float(kid_mean),
            f"kid{self.suffix}_std": float(kid_std),
            f"is{self.suffix}": float(is_mean),
            f"is{self.suffix}_std": float(is_std),
        }
        if with_prdc:
            out |= {f"{key}{self.suffix}": value for key, value in self.prdc().items()}
        # Always computed: a branch on this rank's own counts could leave other DDP ranks waiting in the sync.
        stats = self.coverage.compute()
        out["classes_covered"] = int(stats["classes_covered"])
        out["class_kl"] = float(stats["class_kl"])
        out["class_histogram"] = [round(float(v), 5) for v in stats["histogram"]]
        return out

    def prdc(self) -> dict[str, float]:
        """Precision, recall, density and coverage on the features KID keeps (every image seen, synced over ranks);
        NaN when either set holds ``prdc_k`` images or fewer."""
        kid = self.kid
        with kid.sync_context(dist_sync_fn=kid.dist_sync_fn, process_group=kid.process_group):
            real, fake = dim_zero_cat(kid.real_features), dim_zero_cat(kid.fake_features)  # (N, D), (M, D)
        if min(len(real), len(fake)) <= self.prdc_k:
            return dict.fromkeys(("precision", "recall", "density", "coverage"), math.nan)
        return prdc(real, fake, k=self.prdc_k)

    def reset(self) -> None:
        """Forgets generated images (and IS features); keeps the real statistics."""
        self.fid.reset()
        self.kid.reset()
        self.inception_score.reset()
        self.coverage.reset()

    @property
    def has_real(self) -> bool:
        return int(self.fid.real_features_num_samples) > 0
