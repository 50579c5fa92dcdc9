"""Shuffling that is a pure function of (seed, epoch), so runs resume exactly and data never draws from global RNG.

``torch.utils.data.RandomSampler`` draws its permutation from the global torch RNG (and every DataLoader iterator
draws a base seed from it), so the order of epoch k depends on everything the run sampled before, and a run resumed
from a checkpoint sees other batches than the uninterrupted run. ``SeededRandomSampler`` draws epoch k's permutation
from its own generator seeded with ``seed + k``; Lightning calls ``set_epoch`` at the start of every epoch (as it does
for ``DistributedSampler``, which replaces this sampler under DDP and has the same property).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorBatchDataset(Dataset):
    """Tensors of equal length served a whole batch at a time through ``__getitems__``: one gather per batch.

    The DataLoader then calls ``__getitems__(indices)`` once per batch instead of ``__getitem__`` per sample plus a
    collate; samplers (ours, or Lightning's ``DistributedSampler`` under DDP) keep working on indices as usual.
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("TensorBatchDataset needs one or more tensors of the same length")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, ...]:
        index = torch.as_tensor(indices)
        return tuple(t[index] for t in self.tensors)  # each (B, ...)


def whole_batch(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Collate function for ``TensorBatchDataset``: the gathered batch is already the batch."""
    return batch


class SeededRandomSampler(Sampler[int]):
    """A random permutation of ``range(len(data))`` that depends only on ``seed`` and the epoch set by Lightning."""

    def __init__(self, data: Sized, seed: int | None = None) -> None:
        self.num_samples = len(data)
        self.seed = torch.initial_seed() if seed is None else seed  # None: the run's seed_everything value
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.num_samples, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_samples


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int | None = None,
    collate_fn: Callable[[Any], Any] | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader whose order depends only on (seed, epoch) and which never touches the global RNG.

    ``seed=None`` takes the run's seed (``torch.initial_seed()`` after Lightning's ``seed_everything``). Without a
    ``collate_fn``, batches of a ``TensorBatchDataset`` are passed on as gathered.
    """
    seed = torch.initial_seed() if seed is None else seed
    sampler = SeededRandomSampler(dataset, seed) if shuffle else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn or (whole_batch if isinstance(dataset, TensorBatchDataset) else None),
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed),  # the iterator's base seed comes from here, not global RNG
    )
