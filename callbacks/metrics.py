"""FID, Inception Score and class coverage of generated images, as torchmetrics objects and a training callback.

Two backbones:

- ``classifier`` (default on MNIST): the suite's MNIST classifier (``gan_lab.classifier``); FID on its 128-d
  penultimate features, IS on its 10 logits. Comparable between runs of this suite, not with papers.
- ``inception``: torchmetrics' InceptionV3 (2048-d pool features for FID, 1008 logits for IS), grayscale repeated
  to 3 channels and resized by torchmetrics. Comparable with papers that use torchmetrics / torch-fidelity.

Class coverage (predicted-digit histogram, classes covered, KL(histogram || uniform)) always uses the classifier.
Every metric state is a torchmetrics state, so DDP ranks each update and torchmetrics sums them at ``compute``.
"""

from __future__ import annotations

import math
import socket
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from gan_lab.classifier import FEATURE_DIM, MNISTClassifier, load_classifier

BACKBONES = ("classifier", "inception")
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)


def to_unit_range(images: Tensor, data_range: tuple[float, float]) -> Tensor:
    """Maps images from ``data_range`` (e.g. (-1, 1)) to [0, 1], clamped."""
    low, high = float(data_range[0]), float(data_range[1])
    if not high > low:
        raise ValueError(f"data_range must be (low, high) with low < high, got {data_range}")
    return ((images.float() - low) / (high - low)).clamp_(0, 1)


# --- backbones: modules that torchmetrics calls on a batch of [0, 1] images ----------------------------------------


class _Frozen(nn.Module):
    """A feature module that stays in eval mode and never needs gradients."""

    def train(self, mode: bool = True) -> _Frozen:
        return super().train(False)


class ClassifierFeatures(_Frozen):
    """FID feature module: (B, 1, 28, 28) in [0, 1] -> (B, 128) classifier features."""

    num_features = FEATURE_DIM

    def __init__(self, classifier: MNISTClassifier) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier.features(images)


class ClassifierLogits(ClassifierFeatures):
    """IS feature module: (B, 1, 28, 28) in [0, 1] -> (B, 10) classifier logits."""

    num_features = 10

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier.logits(images)


class SharedInception(_Frozen):
    """torchmetrics' InceptionV3 run once per batch for both FID features and IS logits.

    Takes (B, 1 or 3, H, W) images in [0, 1]: grayscale is repeated to 3 channels and images are quantised to uint8
    (rounded, so real uint8 images survive the round trip exactly), the input torchmetrics' InceptionV3 expects; it
    resizes to 299x299 itself. The outputs of the last batch are kept (one batch) until ``clear``.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.features_list = list(network.features_list)
        self._last: tuple[Tensor, tuple[Tensor, ...]] | None = None

    def outputs(self, images: Tensor) -> tuple[Tensor, ...]:
        if self._last is None or self._last[0] is not images:
            rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images  # (B, 3, H, W)
            # forward() returns only the first requested output; this is the pass that produces all of them.
            out = self.network._torch_fidelity_forward((rgb * 255).round().to(torch.uint8))
            self._last = (images, tuple(o.reshape(len(images), -1) for o in out))
        return self._last[1]

    def clear(self) -> None:
        self._last = None


class InceptionFeatures(_Frozen):
    """One InceptionV3 output ('2048' pool features or 'logits_unbiased') as a torchmetrics feature module."""

    def __init__(self, shared: SharedInception, feature: str) -> None:
        super().__init__()
        self.shared = shared
        self.index = shared.features_list.index(feature)
        self.num_features = 2048 if feature == "2048" else 1008

    def forward(self, images: Tensor) -> Tensor:
        return self.shared.outputs(images)[self.index]


def resolve_inception_weights(
    path: str | Path | None, host: tuple[str, int] = ("github.com", 443), timeout: float = 3.0
) -> str | None:
    """The InceptionV3 weights file to load: ``path``, else torch's cache, else None when a download can work.

    Raises a one-line ``LabError`` (never hangs) when ``path`` is missing, or when nothing is cached and ``host``
    cannot be reached within ``timeout`` seconds.
    """
    from gan_lab.cli import LabError

    if path is not None:
        if not Path(path).is_file():
            raise LabError(f"InceptionV3 weights file {path} not found")
        return str(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[-1]
    if cached.is_file():
        return str(cached)
    if not _reachable(host, timeout):
        raise LabError(
            f"InceptionV3 weights are not in {cached.parent} and {host[0]} cannot be reached: download {INCEPTION_URL} "
            f"and pass its path as --inception-weights (torchmetrics' feature_extractor_weights_path), "
            f"or put it in that folder"
        )
    return None


def _reachable(host: tuple[str, int], timeout: float) -> bool:
    """True when a TCP connection to ``host`` opens within ``timeout`` seconds (DNS included)."""
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection(host, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def inception_network(
    weights: str | Path | None = None,
    features: tuple[str, ...] = ("2048", "logits_unbiased"),
    antialias: bool = False,
) -> nn.Module:
    """torchmetrics' InceptionV3, loaded from ``weights`` (see ``resolve_inception_weights``).

    ``antialias=False`` resizes like TensorFlow 1 / torch-fidelity / the original FID code (torchmetrics switched its
    own default to antialiased resizing in 1.8.0, which changes the values); keep it off to compare with papers.
    """
    from torchmetrics.image.fid import NoTrainInceptionV3

    path = resolve_inception_weights(weights)
    return NoTrainInceptionV3(
        name="inception-v3-compat",
        features_list=list(features),
        feature_extractor_weights_path=path,
        antialias=antialias,
    )


# --- class coverage ----------------------------------------------------------------------------------------------


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


def coverage_stats(counts: Tensor) -> dict[str, Tensor]:
    """Histogram (as frequencies), number of classes with at least one sample, and KL(histogram || uniform) in nats."""
    p = counts.double() / counts.sum().clamp(min=1)
    plogp = torch.where(p > 0, p * p.clamp(min=1e-300).log(), torch.zeros_like(p))
    kl = plogp.sum() + math.log(len(counts))  # sum p log(p / (1/K))
    return {"histogram": p, "classes_covered": (counts > 0).sum(), "class_kl": kl}


# --- all metrics of one backbone ---------------------------------------------------------------------------------


class ImageMetrics(nn.Module):
    """FID, IS and class coverage of [0, 1] images, real statistics kept across ``reset``.

    Args:
        backbone: 'classifier' (MNIST classifier features / logits) or 'inception' (InceptionV3).
        classifier: the MNIST classifier (default: the committed weights); always used for class coverage.
        inception_weights: InceptionV3 weights file for the inception backbone (default: torch's cache).
        is_splits: number of splits of the Inception Score (its std is over splits).
        batch_size: images per forward pass; bounds memory whatever the size of the inputs.
    """

    def __init__(
        self,
        backbone: str = "classifier",
        classifier: MNISTClassifier | None = None,
        inception_weights: str | Path | None = None,
        is_splits: int = 10,
        batch_size: int = 500,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
        if batch_size <= 0 or is_splits <= 0:
            raise ValueError("batch_size and is_splits must be positive")
        self.backbone, self.batch_size = backbone, batch_size
        self.classifier = classifier if classifier is not None else load_classifier()
        self.classifier.eval().requires_grad_(False)
        if backbone == "classifier":
            fid_net: nn.Module = ClassifierFeatures(self.classifier)
            is_net: nn.Module = ClassifierLogits(self.classifier)
        else:
            self.shared = SharedInception(inception_network(inception_weights))
            fid_net, is_net = InceptionFeatures(self.shared, "2048"), InceptionFeatures(self.shared, "logits_unbiased")
        self.fid = FrechetInceptionDistance(feature=fid_net.eval(), reset_real_features=False)
        with warnings.catch_warnings():  # "will save all extracted features": bounded here, reset after each compute
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            self.inception_score = InceptionScore(feature=is_net.eval(), splits=is_splits)
        self.coverage = ClassCoverage()
        self.suffix = "" if backbone == "classifier" else "_inception"

    @torch.no_grad()
    def update(self, images: Tensor, real: bool) -> None:
        """Adds images (B, C, H, W) in [0, 1]: real ones to FID's real statistics, generated ones to every metric."""
        for batch in images.split(self.batch_size):
            batch = batch.float()
            self.fid.update(batch, real=real)
            if not real:
                self.inception_score.update(batch)
                if batch.shape[1:] == (1, 28, 28):
                    self.coverage.update(self.classifier.predict(batch))
            if self.backbone == "inception":
                self.shared.clear()

    @torch.no_grad()
    def compute(self, seed: int = 0) -> dict[str, Any]:
        """Metrics of the generated images seen since the last ``reset``: fid, is, is_std, classes_covered, ..."""
        with torch.random.fork_rng(devices=[]):
            # InceptionScore shuffles (CPU randperm) before splitting: seed only the CPU generator, inside the fork,
            # so the training run's CPU and CUDA streams are untouched.
            torch.random.default_generator.manual_seed(seed)
            is_mean, is_std = self.inception_score.compute()
        out: dict[str, Any] = {
            f"fid{self.suffix}": float(self.fid.compute()),
            f"is{self.suffix}": float(is_mean),
            f"is{self.suffix}_std": float(is_std),
        }
        # Always computed: a branch on this rank's own counts could leave other DDP ranks waiting in the sync.
        stats = self.coverage.compute()
        out["classes_covered"] = int(stats["classes_covered"])
        out["class_kl"] = float(stats["class_kl"])
        out["class_histogram"] = [round(float(v), 5) for v in stats["histogram"]]
        return out

    def reset(self) -> None:
        """Forgets generated images (and IS features); keeps the real statistics."""
        self.fid.reset()
        self.inception_score.reset()
        self.coverage.reset()

    @property
    def has_real(self) -> bool:
        return int(self.fid.real_features_num_samples) > 0


# --- real reference images -----------------------------------------------------------------------------------------


def mnist_images(split: str, n: int, data_dir: str | None = None, offset: int = 0) -> Tensor:
    """``n`` MNIST images (n, 1, 28, 28) as uint8, from ``offset`` on in the official ``train`` or ``test`` split."""
    from datamodules.mnist import MNISTDataModule

    data = MNISTDataModule(data_dir=data_dir, val_size=0, download=False).dataset(split)
    if offset + n > len(data):
        raise ValueError(f"asked for {n} MNIST {split} images from index {offset}, the split holds {len(data)}")
    return data.tensors[0][offset : offset + n]  # images (N, 1, 28, 28) uint8


def shard(n: int, rank: int, world_size: int) -> slice:
    """The contiguous part of ``range(n)`` that DDP rank ``rank`` of ``world_size`` handles."""
    per, extra = divmod(n, world_size)
    start = rank * per + min(rank, extra)
    return slice(start, start + per + (rank < extra))


# --- the callback ---------------------------------------------------------------------------------------------------


class GenerativeMetrics(Callback):
    """Every ``every_n_epochs`` epochs: FID, IS and class coverage of ``n_samples`` generated images.

    Reads the module only through its protocol (``latent_dim``, ``data_range``, ``sample(n, z)``). Real statistics
    come once per run from the first ``n_real`` images of the MNIST test split; the generated images come from a fixed
    noise set, so successive values differ only through the generator. Under DDP every rank generates and updates its
    share and torchmetrics sums the states; only rank zero writes the coverage plot.

    Logs ``val/fid`` (``val/fid_inception``), ``val/is`` (``val/is_inception``), ``val/classes_covered`` and
    ``val/class_kl``; saves ``<run dir>/class_coverage/epoch=NNN.png``.

    Args:
        every_n_epochs: cadence (the last epoch is always evaluated).
        n_samples: generated images per evaluation (10,000 is the usual FID sample size).
        n_real: real test images for the reference statistics (at most 10,000).
        backbone: 'classifier' (default, MNIST features) or 'inception' (InceptionV3, comparable with papers).
        inception_weights: InceptionV3 weights file when offline (default: torch's cache, else a download).
        batch_size: images per generator / backbone forward pass.
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
        data_dir: str | None = None,
        plot: bool = True,
        seed: int = 1234,
    ) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        if n_samples < 2 or not 2 <= n_real <= 10000:
            raise ValueError(f"n_samples must be >= 2 and n_real in [2, 10000], got {n_samples} and {n_real}")
        self.every_n_epochs, self.n_samples, self.n_real = every_n_epochs, n_samples, n_real
        self.data_dir, self.plot, self.seed, self.batch_size = data_dir, plot, seed, batch_size
        # Built now so a bad backbone or missing Inception weights fail before training starts.
        self.metrics = ImageMetrics(backbone, inception_weights=inception_weights, batch_size=batch_size)
        self._noise: Tensor | None = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if tuple(pl_module.image_shape) != (1, 28, 28):
            raise ValueError(f"GenerativeMetrics needs 1x28x28 MNIST images, the module makes {pl_module.image_shape}")
        self.metrics.to(pl_module.device)
        if not self.metrics.has_real:
            part = shard(self.n_real, trainer.global_rank, trainer.world_size)
            real = mnist_images("test", self.n_real, self.data_dir)[part]  # (n_rank, 1, 28, 28) uint8
            self.metrics.update(real.to(pl_module.device).float() / 255, real=True)

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

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        if trainer.sanity_checking or ((epoch + 1) % self.every_n_epochs and not last):
            return
        values = self.evaluate(trainer, pl_module)
        for key, value in values.items():
            if not key.endswith("histogram"):
                # Identical on every rank already (torchmetrics synced); sync_dist keeps Lightning's DDP check quiet.
                pl_module.log(f"val/{key}", float(value), on_epoch=True, sync_dist=True)
        if self.plot and trainer.is_global_zero and "class_histogram" in values:
            from callbacks import run_dir

            path = run_dir(trainer) / "class_coverage" / f"epoch={epoch:03d}.png"
            save_coverage_plot(values["class_histogram"], path, title=f"epoch {epoch}: {values['classes_covered']}/10")
            from pytorch_lightning.loggers import WandbLogger

            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key="val/class_coverage", images=[str(path)], step=trainer.global_step)


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


# --- class-to-class interpolation endpoints --------------------------------------------------------------------------


@torch.no_grad()
def class_pair_endpoints(
    pl_module: LightningModule,
    classifier: MNISTClassifier | None = None,
    pairs: int = 5,
    candidates: int = 256,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Latent endpoints whose samples the classifier labels as different digits, for class-to-class interpolation.

    Draws ``candidates`` noise vectors, labels their samples, and pairs the most confident sample of one digit with the
    most confident sample of another (digits cycling 0->1, 1->2, ... over the classes present).

    Returns:
        z1, z2 (pairs, latent_dim) on the module's device and their digits d1, d2 (pairs,); d1 != d2 whenever the
        generator makes at least two digits (else both endpoints share a digit).
    """
    classifier = (classifier or load_classifier()).to(pl_module.device)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(candidates, pl_module.latent_dim, generator=gen).to(pl_module.device)
    images = to_unit_range(pl_module.sample(candidates, z=z), pl_module.data_range)
    confidence, digit = torch.cat([classifier.logits(x) for x in images.split(500)]).softmax(1).max(1)
    best = {}  # digit -> index of its most confident sample
    for d in digit.unique().tolist():
        idx = (digit == d).nonzero().flatten()
        best[d] = int(idx[confidence[idx].argmax()])
    present = sorted(best)
    first = [present[i % len(present)] for i in range(pairs)]
    second = [present[(i + 1) % len(present)] for i in range(pairs)]
    i1 = torch.tensor([best[d] for d in first], device=z.device)
    i2 = torch.tensor([best[d] for d in second], device=z.device)
    return z[i1], z[i2], digit[i1], digit[i2]
