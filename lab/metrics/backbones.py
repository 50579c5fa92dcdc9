"""Feature backbones of the image metrics: the suite's MNIST classifier and torchmetrics' InceptionV3.

- ``classifier`` (default on MNIST): a small LeNet whose committed weights (``lab/weights/mnist_classifier.pt``,
  provenance beside them; ``make train-classifier`` regenerates them) make every user compute the same FID / IS /
  class coverage. FID on its 128-d penultimate features, IS on its 10 logits: comparable between runs of this suite.
- ``inception``: torchmetrics' InceptionV3 (2048-d pool features, 1008 logits), grayscale repeated to 3 channels,
  resized like TensorFlow 1: comparable with papers that use torchmetrics / torch-fidelity.

Use::

    clf = load_classifier()          # eval mode, frozen, on CPU
    clf.features(x)                  # (B, 128) penultimate activations (after the ReLU) x FEATURE_SCALE,
                                     # x: (B, 1, 28, 28) in [0, 1]
    clf.logits(x)                    # (B, 10)
    clf.predict(x)                   # (B,) digit labels
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import torch
from torch import Tensor, nn

from lab.errors import LabError

BACKBONES = ("classifier", "inception")
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "mnist_classifier.pt"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # train-split pixel statistics, applied inside the net
FEATURE_DIM = 128
# The FID/KID features are the head's inputs (after the ReLU) times this constant, which makes the mean per-feature
# variance of the 10,000 real test images 1 (it was 952 / 128 = 7.44; tests/test_metrics.py recomputes it): KID's
# cubic kernel (x.y / d + 1)^3 assumes features of unit scale, and FID reads in units of one feature's variance.
FEATURE_SCALE = 0.3667


class MNISTClassifier(nn.Module):
    """LeNet-style CNN for (B, 1, 28, 28) images in [0, 1]: two 5x5 conv blocks, a 128-d hidden layer, 10 logits.

    Small on purpose: FID of 10,000 vs 10,000 images must take seconds on two CPU cores.
    """

    def __init__(self, dropout: float = 0.25) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 5),  # (B, 16, 24, 24)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 16, 12, 12)
            nn.Conv2d(16, 32, 5),  # (B, 32, 8, 8)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, 4, 4)
            nn.Flatten(),  # (B, 512)
        )
        self.hidden = nn.Sequential(nn.Linear(512, FEATURE_DIM), nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURE_DIM, 10)

    def activations(self, x: Tensor) -> Tensor:
        """Penultimate activations (B, 128), after the ReLU: what the head reads, of images (B, 1, 28, 28) in [0, 1]."""
        _check_images(x)
        x = ((x.float() - MNIST_MEAN) / MNIST_STD).contiguous(memory_format=torch.channels_last)  # 2x faster on CPU
        return self.hidden(self.conv(x))

    def features(self, x: Tensor) -> Tensor:
        """The FID/KID features (B, 128): ``activations(x) * FEATURE_SCALE`` (unit mean variance on real digits).

        After the ReLU, as the head uses them: before it, the real data's variance (trace 4,118) was dominated by
        directions the head cuts off. 15 of the 128 units are always 0 on real test digits; FID's matrix square root
        (torchmetrics, through eigenvalues) handles the singular covariance, and a generator that lights them up is
        charged for it.
        """
        return self.activations(x) * FEATURE_SCALE

    def logits(self, x: Tensor) -> Tensor:
        """Class logits (B, 10) of images (B, 1, 28, 28) in [0, 1]."""
        return self.head(self.dropout(self.activations(x)))

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Predicted digits (B,) of images (B, 1, 28, 28) in [0, 1]."""
        return self.logits(x).argmax(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(x)


def _check_images(x: Tensor) -> None:
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"the MNIST classifier takes (B, 1, 28, 28) images in [0, 1], got shape {tuple(x.shape)}")


def load_classifier(path: str | Path | None = None, device: torch.device | str = "cpu") -> MNISTClassifier:
    """The classifier with the committed weights (or those at ``path``), frozen and in eval mode."""
    path = Path(path) if path is not None else WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"classifier weights {path} not found: run `make train-classifier` to create them")
    model = MNISTClassifier()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval().requires_grad_(False)
    return model.to(device=device, memory_format=torch.channels_last)  # channels-last convs and max-pools


# --- torchmetrics feature modules: called on a batch of [0, 1] images ---------------------------------------


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
