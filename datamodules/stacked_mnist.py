"""Stacked MNIST: three MNIST training digits stacked as the R, G, B channels of one 3x28x28 image (1,000 modes).

The images are never materialised: a seeded ``(N, 3)`` table of MNIST indices is drawn once and each batch is
gathered from the uint8 MNIST tensor in memory, then normalised on the fly like MNIST. The label of an image is its
mode ``100 * d_red + 10 * d_green + d_blue``.
"""

from __future__ import annotations

import torch
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import MNIST

from datamodules.mnist import VALUE_RANGES, MNISTMissingError, NormalizeBatch, _missing_message, missing_files
from lab.paths import default_data_dir


class StackedDataset(Dataset):
    """Stacked images gathered a batch at a time from ``digits`` ``(M, 28, 28)`` uint8 by ``triples`` ``(N, 3)``."""

    def __init__(self, digits: Tensor, digit_labels: Tensor, triples: Tensor) -> None:
        self.digits, self.digit_labels, self.triples = digits, digit_labels, triples

    def __len__(self) -> int:
        return len(self.triples)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        images, labels = self.__getitems__([index])
        return images[0], labels[0]

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, Tensor]:
        triples = self.triples[torch.as_tensor(indices)]  # (B, 3)
        images = self.digits[triples]  # (B, 3, 28, 28) uint8
        d = self.digit_labels[triples]  # (B, 3)
        return images, d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2]


class StackedMNISTDataModule(LightningDataModule):
    """Stacked MNIST batches ``(images (B, 3, 28, 28) float, mode (B,) in [0, 1000))`` from the MNIST train split.

    Args:
        data_dir: folder that holds ``MNIST/raw`` (default ``$LAB_DATA_DIR`` or ``./data``).
        num_samples: stacked images per epoch (drawn once, seeded).
        batch_size: images per batch.
        value_range: ``"tanh"`` -> [-1, 1], ``"sigmoid"`` -> [0, 1]; match the generator's output.
        seed: seed of the index table (independent of the model seed).
    """

    scored_by = "stacked_mnist"  # samples scored by modes of 1,000 (callbacks.modes.StackedMNISTModes)

    def __init__(
        self,
        data_dir: str | None = None,
        num_samples: int = 128_000,
        batch_size: int = 64,
        value_range: str = "tanh",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if value_range not in VALUE_RANGES:
            raise ValueError(f"value_range must be one of {', '.join(VALUE_RANGES)}, got {value_range!r}")
        if batch_size < 1 or num_samples < 1:
            raise ValueError(f"batch_size and num_samples must be >= 1, got {batch_size} and {num_samples}")
        self.data_dir = str(data_dir or default_data_dir())
        self.num_samples, self.batch_size, self.value_range, self.seed = num_samples, batch_size, value_range, seed
        self.data_range = VALUE_RANGES[value_range]
        self.image_shape = (3, 28, 28)
        missing = missing_files(self.data_dir)
        if missing:
            raise MNISTMissingError(_missing_message(self.data_dir, missing, "Stacked MNIST never downloads"))
        self._train: StackedDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._train is not None:
            return
        mnist = MNIST(self.data_dir, train=True, download=False)
        generator = torch.Generator().manual_seed(self.seed)
        triples = torch.randint(len(mnist.data), (self.num_samples, 3), generator=generator)  # (N, 3)
        self._train = StackedDataset(mnist.data, mnist.targets, triples)

    @property
    def train_set(self) -> StackedDataset:
        self.setup()
        return self._train

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set, batch_size=self.batch_size, shuffle=True, collate_fn=NormalizeBatch(self.value_range)
        )
