"""SampleGrid: a grid of samples from a fixed noise batch, saved as PNG in the run directory and logged as media.

Callbacks read the module only through the image-generator protocol of ``gan_lab.module`` (``latent_dim``,
``sample(n, z)``, ``to_unit``). Files are written on rank zero; W&B / TensorBoard images are added only for the
loggers that are active.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor
from torchvision.utils import make_grid, save_image

from callbacks import run_dir


def publish_image(trainer: Trainer, key: str, grid: Tensor, path: Path) -> None:
    """Saves ``grid`` (C, H, W) in [0, 1] to ``path`` and adds it to the active W&B / TensorBoard loggers."""
    from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path)
    # The step Lightning gives the epoch-end scalars (val/fid ...): batches, not optimizer steps (2+ per GAN batch).
    step = max(trainer.fit_loop.epoch_loop._batches_that_stepped - 1, 0)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[grid], step=step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, global_step=step)


class SampleGrid(Callback):
    """Every ``every_n_epochs`` epochs, a ``nrow`` x ``nrow`` grid of G(z) for a noise batch fixed at the start.

    Writes ``<run dir>/samples/epoch=NNN.png`` and logs the key ``samples`` to W&B / TensorBoard when active.

    Args:
        every_n_epochs: cadence (the last epoch always gets a grid).
        nrow: images per row and per column (5: a 5x5 grid).
        seed: seed of the fixed noise, so grids of different runs share their z.
    """

    def __init__(self, every_n_epochs: int = 1, nrow: int = 5, seed: int = 0) -> None:
        if every_n_epochs < 1 or nrow < 1:
            raise ValueError("every_n_epochs and nrow must be >= 1")
        self.every_n_epochs = every_n_epochs
        self.nrow = nrow
        self.seed = seed
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

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        if not trainer.is_global_zero or trainer.sanity_checking or ((epoch + 1) % self.every_n_epochs and not last):
            return
        grid = self.make_grid(pl_module)
        publish_image(trainer, "samples", grid, run_dir(trainer) / "samples" / f"epoch={epoch:03d}.png")
