"""The in-memory MNIST DataModule on the real files."""

import pytest
import torch

from datamodules.mnist import MNIST_FILES, MNISTDataModule, MNISTMissingError


@pytest.mark.parametrize("value_range, low, high", [("tanh", -1.0, 1.0), ("sigmoid", 0.0, 1.0)])
def test_batches_shapes_and_ranges(data_dir, value_range, low, high):
    """Batches are (64, 1, 28, 28) float with values spanning exactly the requested range; labels (64,)."""
    dm = MNISTDataModule(data_dir=data_dir, batch_size=64, value_range=value_range)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (64, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (64,) and labels.dtype == torch.int64
    assert images.min().item() == low and images.max().item() == high
    assert len(dm.dataset("train")) == 55000 and len(dm.dataset("val")) == 5000 and len(dm.dataset("test")) == 10000


def test_subset_and_val_size(data_dir):
    """subset keeps the first N training images (in file order); val_size=0 leaves no validation set."""
    full = MNISTDataModule(data_dir=data_dir, val_size=0)
    small = MNISTDataModule(data_dir=data_dir, subset=100, val_size=0, batch_size=32, shuffle=False)
    assert len(small.dataset("train")) == 100 and len(small.dataset("val")) == 0
    assert torch.equal(small.dataset("train").tensors[0], full.dataset("train").tensors[0][:100])
    assert len(small.train_dataloader()) == 4


def test_hflip_mirrors_some_images(data_dir):
    """With hflip each training image is either itself or its mirror, and some get flipped."""
    dm = MNISTDataModule(data_dir=data_dir, subset=256, batch_size=256, shuffle=False, hflip=True)
    plain = MNISTDataModule(data_dir=data_dir, subset=256, batch_size=256, shuffle=False)
    torch.manual_seed(0)
    flipped, _ = next(iter(dm.train_dataloader()))
    original, _ = next(iter(plain.train_dataloader()))
    same = (flipped == original).flatten(1).all(1)
    mirrored = (flipped == original.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all() and mirrored.sum() > 50 and same.sum() > 50


def test_missing_files_give_one_clear_error(tmp_path):
    """An empty data dir fails at construction, naming the four files and the folder, without hanging."""
    with pytest.raises(MNISTMissingError) as info:
        MNISTDataModule(data_dir=str(tmp_path), download=False)
    message = str(info.value)
    assert all(name in message for name in MNIST_FILES)
    assert str(tmp_path / "MNIST" / "raw") in message and "\n" not in message


def test_bad_value_range_is_refused(data_dir):
    """An unknown value_range is a ValueError listing the options."""
    with pytest.raises(ValueError, match="tanh, sigmoid"):
        MNISTDataModule(data_dir=data_dir, value_range="relu")
