"""SampleGrid: a grid of samples from a fixed noise batch, saved as PNG in the run directory and logged as media."""

from __future__ import annotations

from functools import partial

import torch
from pytorch_lightning import LightningModule, Trainer
from torch import Tensor
from torchvision.utils import make_grid, save_image

from callbacks.base import EpochCallback


class SampleGrid(EpochCallback):
    """Every ``every_n_epochs`` epochs, a ``nrow`` x ``nrow`` grid of G(z) for a noise batch fixed at the start.

    Writes ``<run dir>/samples/epoch=NNN.png`` and logs the key ``samples`` to W&B / TensorBoard when active.

    Args:
        every_n_epochs: cadence (the last epoch always gets a grid).
        nrow: images per row and per column (5: a 5x5 grid).
        seed: seed of the fixed noise, so grids of different runs share their z.
    """

    def __init__(self, every_n_epochs: int = 1, nrow: int = 5, seed: int = 0) -> None:
        super().__init__(every_n_epochs)
        if nrow < 1:
            raise ValueError(f"nrow must be >= 1, got {nrow}")
        self.nrow, self.seed = nrow, seed
        self.fixed_noise: Tensor | None = None

    def noise(self, pl_module: LightningModule) -> Tensor:
        """The fixed noise batch (nrow^2, latent_dim), made once (on the CPU, seeded) and moved to the module."""
        if self.fixed_noise is None:
            gen = torch.Generator().manual_seed(self.seed)
            self.fixed_noise = torch.randn(self.nrow**2, pl_module.latent_dim, generator=gen)
        return self.fixed_noise.to(pl_module.device)

    def make_grid(self, pl_module: LightningModule) -> Tensor:
        """The grid image (C, H', W') in [0, 1]."""
        images = pl_module.to_unit(pl_module.sample(self.nrow**2, z=self.noise(pl_module)))  # (n, C, H, W)
        return make_grid(images.cpu(), nrow=self.nrow, padding=2, pad_value=1.0)

    def on_due(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            grid = self.make_grid(pl_module)
            name = f"samples/epoch={trainer.current_epoch:03d}.png"
            self.save_png(trainer, "samples", name, partial(save_image, grid), "samples from fixed noise")
