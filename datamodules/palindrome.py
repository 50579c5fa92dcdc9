"""Random digit palindromes: predict the last digit from the ones before it.

A palindrome of length L is fixed by its first ``ceil(L/2)`` digits (its *half*), so there are ``10**ceil(L/2)``
distinct ones. Input = the first ``L - 1`` digits, target = the last digit, which equals the first.

Train, validation and test never share a palindrome (``palindrome_splits`` takes the shares of any number of splits):

- ``num_samples <= 10**ceil(L/2)``: all samples are distinct palindromes (drawn without replacement), cut in order
  into the splits' shares (``train_fraction``, the rest minus ``test_fraction``, ``test_fraction``).
- ``num_samples >`` that number (short lengths: 1,000 palindromes at L = 5 or 6): the distinct palindromes themselves
  are cut in the same shares, and each split draws its share of ``num_samples`` from its own palindromes with
  replacement. Samples repeat, but validation and test only hold palindromes never seen in training (nor in each
  other).

Generation is vectorised in torch; 1,000,000 samples of length 20 take a fraction of a second (bench/palindrome_gen.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader

from datamodules.sampling import TensorBatchDataset, make_loader

NUM_DIGITS = 10
_EXACT_KEY_DIGITS = 18  # 10**18 < 2**63: halves up to 18 digits are encoded exactly as one int64 key
_PERMUTE_BELOW = 1 << 24  # below this many distinct keys, a full randperm is cheap


def distinct_palindromes(seq_len: int) -> int:
    """How many distinct digit palindromes of length ``seq_len`` exist: 10**ceil(seq_len/2)."""
    return NUM_DIGITS ** ((seq_len + 1) // 2)


def _digits_of(keys: Tensor, width: int) -> Tensor:
    """Base-10 digits of int64 ``keys`` < 10**width, most significant first: (N,) -> (N, width) uint8.

    Splits the keys into 3-digit chunks and looks each chunk up in a 1000-row table: a few operations on (N,)
    tensors instead of ``width`` divisions of an (N, width) tensor.
    """
    codes = torch.arange(1000, device=keys.device)
    table = torch.stack([codes // 100, codes // 10 % 10, codes % 10], dim=1).to(torch.uint8)  # (1000, 3)
    chunks, rest = [], keys
    for _ in range((width + 2) // 3):  # least significant chunk first
        chunks.append(table[rest.remainder(1000)])  # (N, 3)
        rest = torch.div(rest, 1000, rounding_mode="floor")
    return torch.cat(chunks[::-1], dim=1)[:, -width:]  # (N, width)


def _distinct_keys(count: int, high: int, generator: torch.Generator) -> Tensor:
    """``count`` distinct random integers in [0, high), in random order (requires count <= high)."""
    if high <= _PERMUTE_BELOW:
        return torch.randperm(high, generator=generator)[:count]
    keys = torch.empty(0, dtype=torch.int64)
    while keys.numel() < count:  # a round or two: collisions are rare when high is large
        missing = count - keys.numel()
        draw = torch.randint(0, high, (missing + missing // 64 + 16,), generator=generator, dtype=torch.int64)
        merged = torch.from_numpy(np.sort(torch.cat([keys, draw]).numpy()))  # numpy's sort is ~5x torch's here
        keep = torch.ones_like(merged, dtype=torch.bool)
        keep[1:] = merged[1:] != merged[:-1]
        keys = merged[keep]  # sorted and distinct; the order is randomised below
    return keys[torch.randperm(keys.numel(), generator=generator)[:count]]


def make_palindromes(seq_len: int, halves: Tensor, generator: torch.Generator) -> Tensor:
    """Full palindromes from half keys: (N,) int64 keys of the first digits -> (N, seq_len) uint8 digits.

    Halves longer than 18 digits take their first 18 digits from the key and the rest at random.
    """
    half = (seq_len + 1) // 2
    key_digits = min(half, _EXACT_KEY_DIGITS)
    first = _digits_of(halves, key_digits)  # (N, key_digits)
    if half > key_digits:
        rest = torch.randint(0, NUM_DIGITS, (halves.numel(), half - key_digits), generator=generator)
        first = torch.cat([first, rest.to(torch.uint8)], dim=1)  # (N, half)
    return torch.cat([first, first[:, : seq_len // 2].flip(1)], dim=1)  # (N, seq_len)


def _cuts(fractions: Sequence[float], total: int, min_size: int) -> list[int]:
    """Boundaries 0 = b_0 < ... < b_n = total cutting ``total`` items in the given shares, each part >= min_size."""
    cuts, share = [0], 0.0
    for i, fraction in enumerate(fractions[:-1], start=1):
        share += fraction
        room = total - min_size * (len(fractions) - i)  # leave at least min_size for each later split
        cuts.append(min(max(round(share * total), cuts[-1] + min_size), room))
    return [*cuts, total]


def palindrome_splits(
    seq_len: int, num_samples: int, fractions: float | Sequence[float], seed: int
) -> tuple[tuple[Tensor, Tensor], ...]:
    """Disjoint splits of ``num_samples`` palindromes in the shares ``fractions`` (summing to 1; a single float f
    means (f, 1 - f): train and validation). Returns ((x, y), ...) one pair per split, in order.

    x: (N, seq_len - 1) uint8 digits, y: (N,) int64 last digit. Same seed, same data.
    """
    if isinstance(fractions, float | int):
        fractions = (float(fractions), 1.0 - float(fractions))
    generator = torch.Generator().manual_seed(seed)
    bounds = _cuts(fractions, num_samples, 0)
    counts = [b - a for a, b in pairwise(bounds)]
    distinct = distinct_palindromes(seq_len)
    key_space = NUM_DIGITS ** min((seq_len + 1) // 2, _EXACT_KEY_DIGITS)
    if num_samples <= distinct:
        keys = _distinct_keys(num_samples, key_space, generator)
        split_keys = [keys[a:b] for a, b in pairwise(bounds)]
    else:  # split the distinct palindromes, then sample each side with replacement
        keys = torch.randperm(key_space, generator=generator)
        cuts = _cuts(fractions, key_space, 1)
        split_keys = []
        for count, (a, b) in zip(counts, pairwise(cuts), strict=True):
            pool = keys[a:b]
            split_keys.append(pool[torch.randint(0, pool.numel(), (count,), generator=generator)])
    splits = []
    for keys_of_split in split_keys:
        full = make_palindromes(seq_len, keys_of_split, generator)  # (N, seq_len)
        splits.append((full[:, :-1], full[:, -1].long()))
    return tuple(splits)


class PalindromeDataModule(LightningDataModule):
    """Digit palindromes of total length ``seq_len``; batches of (x, y) with x (B, seq_len - 1), y (B,).

    Args:
        seq_len: total palindrome length (>= 2); the model sees ``seq_len - 1`` digits.
        num_samples: train + validation + test samples.
        batch_size: training batch size (validation and test use larger batches; they only run forward).
        train_fraction: share of samples used for training, in (0, 1).
        test_fraction: share held out for ``test`` (never seen in training or validation), in (0, 1); validation
            gets the rest, ``1 - train_fraction - test_fraction``, which must be positive.
        one_hot: yield x as float one-hot (B, T, 10) instead of int64 digits (B, T).
        seed: seed of the data (independent of the model seed).
    """

    num_classes = NUM_DIGITS

    def __init__(
        self,
        seq_len: int = 20,
        num_samples: int = 100_000,
        batch_size: int = 128,
        train_fraction: float = 0.8,
        test_fraction: float = 0.1,
        one_hot: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if seq_len < 2:
            raise ValueError(f"seq_len must be at least 2 (one input digit and the target); got {seq_len}")
        if num_samples < 1 or batch_size < 1:
            raise ValueError(f"num_samples and batch_size must be positive; got {num_samples} and {batch_size}")
        if not 0.0 < train_fraction < 1.0:
            raise ValueError(f"train_fraction must be strictly between 0 and 1; got {train_fraction}")
        if not 0.0 < test_fraction < 1.0 or train_fraction + test_fraction >= 1.0:
            raise ValueError(
                f"test_fraction must be in (0, 1) and leave a validation share (train_fraction + test_fraction < 1); "
                f"got train_fraction={train_fraction}, test_fraction={test_fraction}"
            )
        bounds = _cuts(self._fractions(train_fraction, test_fraction), num_samples, 0)
        if any(b <= a for a, b in pairwise(bounds)):
            raise ValueError(
                f"num_samples={num_samples} with train_fraction={train_fraction} and test_fraction={test_fraction} "
                "leaves an empty train, validation or test split; use more samples"
            )
        self.save_hyperparameters()
        self.seq_len, self.num_samples, self.batch_size = seq_len, num_samples, batch_size
        self.train_fraction, self.test_fraction, self.one_hot, self.seed = train_fraction, test_fraction, one_hot, seed
        self.train_set: TensorBatchDataset | None = None
        self.val_set: TensorBatchDataset | None = None
        self.test_set: TensorBatchDataset | None = None

    @staticmethod
    def _fractions(train_fraction: float, test_fraction: float) -> tuple[float, float, float]:
        return train_fraction, 1.0 - train_fraction - test_fraction, test_fraction

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            fractions = self._fractions(self.train_fraction, self.test_fraction)
            splits = palindrome_splits(self.seq_len, self.num_samples, fractions, self.seed)
            self.train_set, self.val_set, self.test_set = (TensorBatchDataset(x, y) for x, y in splits)

    def _loader(self, dataset: TensorBatchDataset, batch_size: int, shuffle: bool) -> DataLoader:
        # One gather per batch; the order is a function of (run seed, epoch), sharded by Lightning under DDP.
        return make_loader(dataset, batch_size, shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, max(self.batch_size, 1024), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, max(self.batch_size, 1024), shuffle=False)

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        x, y = batch
        x = F.one_hot(x.long(), NUM_DIGITS).float() if self.one_hot else x.long()  # (B, T, 10) or (B, T)
        return x, y
