"""2-D Gaussian mixtures for mode-collapse experiments: the 8-ring and the 25-grid of the PacGAN/VEEGAN protocol.

- ``ring``: ``n_modes`` means on a circle of radius ``radius`` at angles 2*pi*k/n_modes (default 8, 1.0, sigma 0.01).
- ``grid``: ``side**2`` means at ``spacing * {-(side-1)/2, ..., (side-1)/2}^2`` (default 5x5 at {-4,-2,0,2,4}^2,
  sigma 0.05); ``n_modes`` must be a perfect square.

Each epoch draws ``samples_per_epoch`` fresh points (modes chosen uniformly) from a generator seeded by
``seed`` and the epoch number, so runs are reproducible and the model never sees the same point twice.
Batches are ``(points, mode_index)`` with points ``(B, 2)`` float32 and mode_index ``(B,)`` int64; with
``batches_per_item`` k > 1 each loader item stacks k consecutive batches, ``(k, B, 2)`` and ``(k, B)``, the same points
in the same order (``GANModule`` takes one critic step per batch of a stack).
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from datamodules.mixture_stream import KINDS, MixtureStream, mixture_centres, sample_mixture

__all__ = ["KINDS", "GaussianMixtureDataModule", "mixture_centres", "sample_mixture"]


class GaussianMixtureDataModule(pl.LightningDataModule):
    """Ring or grid of isotropic 2-D Gaussians with equal weights.

    Args:
        kind: ``"ring"`` or ``"grid"``.
        n_modes: number of Gaussians (a square number for the grid).
        scale: ring radius or grid spacing (1.0 for the ring and 2.0 for the grid in the published protocol).
        std: standard deviation of every Gaussian (0.01 ring, 0.05 grid).
        samples_per_epoch: fresh points drawn per epoch (rounded down to whole batches).
        batch_size: points per batch.
        seed: data seed (independent of the model seed).
        value_range: always ``"none"`` (points are unbounded, so the generator's last layer is linear); present so
            the CLI's data -> model ``value_range`` link checks the generator like it does for images.
        batches_per_item: k batches per loader item (a ``(k, B, 2)`` stack; must divide the batches of an epoch).
            Training is the same as with k = 1 (same points, steps and weights, bit for bit), but Lightning's
            per-batch work (hooks, progress bar, fetching) is paid once per k critic steps: on these tiny nets
            it is comparable to the step itself. Lightning's batch counters then count items: ``limit_train_batches``,
            ``log_every_n_steps`` and the ``step`` of logged scalars; epochs, ``max_steps`` (optimizer steps) and
            ``progress/generator_steps`` keep their meaning.
    """

    scored_by = "mixture"  # samples scored by modes and HQ points (callbacks.modes.MixtureModes)
    checkpoint_min_interval_s = 10.0  # epochs last a fraction of a second: last.ckpt at most every 10 s

    def __init__(
        self,
        kind: str = "ring",
        n_modes: int = 8,
        scale: float = 1.0,
        std: float = 0.01,
        samples_per_epoch: int = 51_200,
        batch_size: int = 512,
        seed: int = 0,
        value_range: str = "none",
        batches_per_item: int = 1,
    ) -> None:
        super().__init__()
        if value_range != "none":
            raise ValueError(f"mixture points are unbounded: value_range must be none, got {value_range!r}")
        if std <= 0:
            raise ValueError(f"std must be > 0, got {std}")
        if batch_size < 1 or samples_per_epoch < batch_size:
            raise ValueError(
                f"need batch_size >= 1 and samples_per_epoch >= batch_size, got {batch_size} and {samples_per_epoch}"
            )
        batches = samples_per_epoch // batch_size
        if batches_per_item < 1 or batches % batches_per_item:
            raise ValueError(
                f"batches_per_item must be >= 1 and divide the {batches} batches of an epoch "
                f"(samples_per_epoch // batch_size), got {batches_per_item}"
            )
        self.save_hyperparameters()
        self.kind, self.std, self.batch_size, self.seed = kind, float(std), batch_size, seed
        self.centres = mixture_centres(kind, n_modes, scale)  # (K, 2)
        self.n_modes, self.value_range = n_modes, value_range
        self.data_range = (-math.inf, math.inf)
        self.image_shape = (2,)
        self.batches_per_item = batches_per_item
        self._stream = MixtureStream(self.centres, self.std, batch_size, batches, seed, batches_per_item)

    def train_dataloader(self) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        self._stream.rank = trainer.global_rank if trainer is not None else 0
        # A generator of its own: the iterator's base seed is then not drawn from the global RNG at each epoch, so a
        # resumed run (RNG restored by RNGStateCheckpoint after the loaders are set up) draws the same noise.
        return DataLoader(self._stream, batch_size=None, generator=torch.Generator().manual_seed(self.seed))

    def state_dict(self) -> dict[str, int]:
        """Saved in checkpoints: the epochs of data already drawn (a resumed run continues the stream)."""
        return {"epoch": self._stream.epoch}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self._stream.epoch = int(state_dict["epoch"])

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` real points ``(n, 2)`` drawn with their own seed (for reference plots and metric checks)."""
        return sample_mixture(self.centres, self.std, n, torch.Generator().manual_seed(seed))[0]
