"""MNIST held in memory as uint8 tensors, normalised per batch (no per-image PIL transforms, no workers needed).

The files are torchvision's layout: ``<data_dir>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``.
Offline with no files, construction fails at once with one message naming the four files and the folder; online,
``prepare_data`` downloads them with torchvision (rank zero only, with a bounded socket timeout so it never hangs).
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader
from torchvision.datasets import MNIST

from datamodules.sampling import TensorBatchDataset, make_loader
from lab.errors import LabError
from lab.paths import default_data_dir

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
VALUE_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}


class MNISTMissingError(LabError, FileNotFoundError):
    """The MNIST files are absent and cannot be downloaded (one line, shown verbatim by the CLI)."""


def missing_files(data_dir: str | Path) -> list[str]:
    """The names among the four MNIST files that are not in ``<data_dir>/MNIST/raw``."""
    raw = Path(data_dir) / "MNIST" / "raw"
    return [name for name in MNIST_FILES if not (raw / name).is_file()]


def mirror_reachable(timeout: float) -> bool:
    """True when one of torchvision's MNIST mirrors accepts a TCP connection within ``timeout`` seconds."""
    for mirror in MNIST.mirrors:
        url = urlparse(mirror)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            with socket.create_connection((url.hostname, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def _missing_message(data_dir: str | Path, missing: list[str], reason: str) -> str:
    raw = Path(data_dir) / "MNIST" / "raw"
    what = "the four files" if len(missing) == len(MNIST_FILES) else f"{len(missing)} of the four files"
    return f"MNIST not found ({reason}): {what} {', '.join(missing)} are not in {raw}/ (set LAB_DATA_DIR)"


class NormalizeBatch:
    """Collate function: uint8 batch -> float in ``value_range``, with an optional random horizontal flip per image."""

    def __init__(self, value_range: str = "tanh", hflip: bool = False) -> None:
        self.low, self.high = VALUE_RANGES[value_range]
        self.hflip = hflip

    def __call__(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        images, labels = batch
        x = images.float().mul_((self.high - self.low) / 255.0).add_(self.low)  # (B, 1, 28, 28)
        if self.hflip:
            flip = torch.rand(x.shape[0], 1, 1, 1) < 0.5
            x = torch.where(flip, x.flip(-1), x)
        return x, labels


class MNISTDataModule(LightningDataModule):
    """MNIST batches ``(images (B, 1, 28, 28) float, labels (B,))`` served from memory.

    Args:
        data_dir: folder that holds ``MNIST/raw`` (default ``$LAB_DATA_DIR`` or ``./data``).
        batch_size: images per batch.
        val_size: images held out from the end of the 60k training split for validation (0: no validation set).
        subset: use only the first ``subset`` training (and at most as many validation/test) images; for tiny runs.
        value_range: ``"tanh"`` scales pixels to [-1, 1], ``"sigmoid"`` to [0, 1]; match the generator's output.
        hflip: flip training images horizontally at random (augmentation ablation; digits are not symmetric).
        download: download with torchvision when the files are absent and a mirror is reachable.
        download_timeout: seconds to wait for a mirror before giving up (never hangs).
        shuffle: shuffle the training batches.
    """

    scored_by = "mnist"  # samples scored by the MNIST classifier: FID / KID / IS, classes (gan_lab.generator)

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 64,
        val_size: int = 5000,
        subset: int | None = None,
        value_range: str = "tanh",
        hflip: bool = False,
        download: bool = True,
        download_timeout: float = 10.0,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        if value_range not in VALUE_RANGES:
            raise ValueError(f"value_range must be one of {', '.join(VALUE_RANGES)}, got {value_range!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= val_size < 60000:
            raise ValueError(f"val_size must be in [0, 60000), got {val_size}")
        if subset is not None and subset < 1:
            raise ValueError(f"subset must be >= 1 (or null for all images), got {subset}")
        self.data_dir = str(data_dir or default_data_dir())
        self.batch_size = batch_size
        self.val_size = val_size
        self.subset = subset
        self.value_range = value_range
        self.data_range = VALUE_RANGES[value_range]
        self.hflip = hflip
        self.download = download
        self.download_timeout = download_timeout
        self.shuffle = shuffle
        self.image_shape = (1, 28, 28)
        self._splits: dict[str, TensorBatchDataset] = {}
        missing = missing_files(self.data_dir)
        if missing and not download:
            raise MNISTMissingError(_missing_message(self.data_dir, missing, "download is off"))
        if missing and not mirror_reachable(download_timeout):
            raise MNISTMissingError(_missing_message(self.data_dir, missing, "no network to download them"))

    def prepare_data(self) -> None:
        """Downloads the files with torchvision when they are absent (called on rank zero only)."""
        if not missing_files(self.data_dir):
            return
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self.download_timeout)
        try:
            MNIST(self.data_dir, train=True, download=True)
            MNIST(self.data_dir, train=False, download=True)
        except (RuntimeError, OSError) as err:
            reason = f"download failed ({' '.join(str(err).split())[:200]})"
            raise MNISTMissingError(_missing_message(self.data_dir, missing_files(self.data_dir), reason)) from err
        finally:
            socket.setdefaulttimeout(previous)

    def setup(self, stage: str | None = None) -> None:
        """Reads the IDX files once into uint8 tensors and cuts train/val/test."""
        if self._splits:
            return
        missing = missing_files(self.data_dir)
        if missing:
            raise MNISTMissingError(_missing_message(self.data_dir, missing, "files absent"))
        train = MNIST(self.data_dir, train=True, download=False)
        test = MNIST(self.data_dir, train=False, download=False)
        images, labels = train.data.unsqueeze(1), train.targets  # (60000, 1, 28, 28) uint8
        n_train = len(images) - self.val_size
        cap = self.subset or len(images)
        self._splits["train"] = TensorBatchDataset(images[: min(cap, n_train)], labels[: min(cap, n_train)])
        val_end = n_train + min(cap, self.val_size)
        self._splits["val"] = TensorBatchDataset(images[n_train:val_end], labels[n_train:val_end])
        self._splits["test"] = TensorBatchDataset(test.data.unsqueeze(1)[:cap], test.targets[:cap])

    def dataset(self, split: str) -> TensorBatchDataset:
        """The uint8 dataset of ``split`` (``train``, ``val`` or ``test``), loading the files if needed."""
        self.setup()
        return self._splits[split]

    def _loader(self, split: str, shuffle: bool, augment: bool) -> DataLoader:
        # Order is a function of (run seed, epoch): exact resume, no draws from the global RNG.
        return make_loader(
            self.dataset(split),
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=NormalizeBatch(self.value_range, hflip=augment and self.hflip),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=self.shuffle, augment=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, augment=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, augment=False)


def mnist_images(split: str, n: int, data_dir: str | None = None, offset: int = 0) -> Tensor:
    """``n`` MNIST images (n, 1, 28, 28) as uint8, from ``offset`` on in the official ``train`` or ``test`` split."""
    data = MNISTDataModule(data_dir=data_dir, val_size=0, download=False).dataset(split)
    if offset + n > len(data):
        raise ValueError(f"asked for {n} MNIST {split} images from index {offset}, the split holds {len(data)}")
    return data.tensors[0][offset : offset + n]  # images (N, 1, 28, 28) uint8


def floor_draw(
    n: int, seed: int = 0, data_dir: str | None = None, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """The real-vs-real floor's "generated" set: ``n`` training images (uint8) and labels, a seeded draw without
    replacement. Every floor (``gan_lab.evaluate``, the RESULTS tables, the metric calibration) scores this same draw
    against the first ``n`` test images, so every table shows the same floor for the same (n, seed). ``generator``
    (seeded with ``seed`` by the caller) instead of ``seed`` lets a caller draw more from the same stream."""
    images, labels = MNISTDataModule(data_dir=data_dir, val_size=0, download=False).dataset("train").tensors
    if n > len(images):
        raise ValueError(f"asked for {n} MNIST train images, the split holds {len(images)}")
    pick = torch.randperm(len(images), generator=generator or torch.Generator().manual_seed(seed))[:n]
    return images[pick], labels[pick]
