"""The 2-D Gaussian mixtures themselves, in plain torch (no Lightning): mode centres, sampling, the per-epoch stream.

``datamodules.mixtures.GaussianMixtureDataModule`` serves them to a Trainer; a plain PyTorch loop (``bench/``) can
draw the same points without importing Lightning.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import IterableDataset

KINDS = ("ring", "grid")


def mixture_centres(kind: str, n_modes: int, scale: float) -> torch.Tensor:
    """The mode centres ``(n_modes, 2)`` of a ring (``scale`` = radius) or a square grid (``scale`` = spacing)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if n_modes < 1:
        raise ValueError(f"n_modes must be >= 1, got {n_modes}")
    if scale <= 0:
        raise ValueError(f"radius/spacing must be > 0, got {scale}")
    if kind == "ring":
        angles = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
        centres = scale * torch.stack([angles.cos(), angles.sin()], dim=1)  # (K, 2)
    else:
        side = math.isqrt(n_modes)
        if side * side != n_modes:
            raise ValueError(f"a grid needs a square number of modes (e.g. 25), got {n_modes}")
        axis = scale * (torch.arange(side, dtype=torch.float64) - (side - 1) / 2)
        centres = torch.cartesian_prod(axis, axis)  # (K, 2)
    return centres.float()


def sample_mixture(
    centres: torch.Tensor, std: float, n: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points from the equal-weight isotropic mixture: (points ``(n, 2)``, mode index ``(n,)``)."""
    modes = torch.randint(len(centres), (n,), generator=generator)
    noise = torch.randn(n, centres.shape[1], generator=generator)
    return centres[modes] + std * noise, modes


class MixtureStream(IterableDataset):
    """Yields whole batches of fresh mixture samples (or stacks of ``per_item`` consecutive batches); epoch ``e`` on
    rank ``r`` draws from a generator seeded by (seed, e, r), so ranks see different points and a run resumed at epoch
    ``e`` (``epoch`` is in the datamodule's checkpoint state) sees the points an uninterrupted run would."""

    def __init__(
        self, centres: torch.Tensor, std: float, batch_size: int, batches: int, seed: int, per_item: int = 1
    ) -> None:
        self.centres, self.std, self.batch_size, self.batches, self.seed = centres, std, batch_size, batches, seed
        self.per_item = per_item  # batches stacked in one item (divides ``batches``)
        self.epoch = 0
        self.rank = 0

    def __len__(self) -> int:  # items per epoch: lets the Trainer know the run length (progress bar, schedules)
        return self.batches // self.per_item

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch + self.rank * 1_000_003)
        self.epoch += 1
        for _ in range(len(self)):
            if self.per_item == 1:
                yield sample_mixture(self.centres, self.std, self.batch_size, generator)
                continue
            # batch by batch from the one generator, so a stack holds the points of per_item single batches
            draws = [sample_mixture(self.centres, self.std, self.batch_size, generator) for _ in range(self.per_item)]
            yield torch.stack([p for p, _ in draws]), torch.stack([m for _, m in draws])  # (k, B, 2), (k, B)
