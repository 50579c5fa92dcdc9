"""LatentInterpolation: rows of G(z) along paths between two fixed latent points (linear, slerp, z2 scaled by 2)."""

from __future__ import annotations

from functools import partial

import torch
from pytorch_lightning import LightningModule, Trainer
from torch import Tensor
from torchvision.utils import make_grid, save_image

from callbacks.base import EpochCallback

MODES = ("linear", "slerp", "scaled")


def lerp(z1: Tensor, z2: Tensor, t: Tensor) -> Tensor:
    """(1 - t) z1 + t z2 for rows z1, z2 (R, D) and steps t (S,) -> (R, S, D)."""
    t = t.view(1, -1, 1)
    return (1 - t) * z1.unsqueeze(1) + t * z2.unsqueeze(1)


def slerp(z1: Tensor, z2: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation sin((1-t)w)/sin(w) z1 + sin(tw)/sin(w) z2, w = angle(z1, z2) -> (R, S, D).

    Falls back to linear interpolation for (nearly) parallel pairs.
    """
    cos = torch.nn.functional.cosine_similarity(z1, z2, dim=1).clamp(-1 + eps, 1 - eps)
    omega = torch.acos(cos).view(-1, 1, 1)  # (R, 1, 1)
    t = t.view(1, -1, 1)  # (1, S, 1)
    sin = torch.sin(omega)
    path = (torch.sin((1 - t) * omega) * z1.unsqueeze(1) + torch.sin(t * omega) * z2.unsqueeze(1)) / sin
    return torch.where(sin.abs() < 1e-4, lerp(z1, z2, t.view(-1)), path)


def interpolation_path(z1: Tensor, z2: Tensor, steps: int, mode: str, scale: float = 2.0) -> Tensor:
    """Latent points (R, steps, D) from z1 to z2: ``linear``, ``slerp``, or ``scaled`` (linear from z1 to scale*z2)."""
    t = torch.linspace(0, 1, steps, device=z1.device)
    if mode == "linear":
        return lerp(z1, z2, t)
    if mode == "slerp":
        return slerp(z1, z2, t)
    if mode == "scaled":
        return lerp(z1, scale * z2, t)
    raise ValueError(f"interpolation mode must be one of {', '.join(MODES)}, got {mode!r}")


class LatentInterpolation(EpochCallback):
    """Every ``every_n_epochs`` epochs, one image per mode: ``rows`` fixed pairs (z1, z2), ``steps`` images per row.

    Writes ``<run dir>/interpolation/<mode>_epoch=NNN.png`` and logs ``interpolation/<mode>`` as media.

    Args:
        every_n_epochs: cadence (the last epoch always gets images).
        rows: number of (z1, z2) pairs.
        steps: images per row, endpoints included.
        modes: any of ``linear``, ``slerp``, ``scaled`` (the path from z1 to 2 * z2, leaving the typical set).
        scale: the factor of z2 in ``scaled`` mode.
        seed: seed of the fixed pairs.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        rows: int = 5,
        steps: int = 10,
        modes: tuple[str, ...] | list[str] = MODES,
        scale: float = 2.0,
        seed: int = 1,
    ) -> None:
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise ValueError(f"interpolation modes must be among {', '.join(MODES)}, got {unknown}")
        super().__init__(every_n_epochs)
        if rows < 1 or steps < 2:
            raise ValueError(f"rows must be >= 1 and steps >= 2, got {rows} and {steps}")
        self.rows, self.steps = rows, steps
        self.modes, self.scale, self.seed = tuple(modes), scale, seed
        self.endpoints: tuple[Tensor, Tensor] | None = None

    def pairs(self, pl_module: LightningModule) -> tuple[Tensor, Tensor]:
        """The fixed endpoints z1, z2, each (rows, latent_dim), made once."""
        if self.endpoints is None:
            gen = torch.Generator().manual_seed(self.seed)
            z = torch.randn(2, self.rows, pl_module.latent_dim, generator=gen)
            self.endpoints = (z[0], z[1])
        return self.endpoints[0].to(pl_module.device), self.endpoints[1].to(pl_module.device)

    def make_grid(self, pl_module: LightningModule, mode: str) -> Tensor:
        """The image (C, H', W') in [0, 1] for ``mode``: one row per pair."""
        path = interpolation_path(*self.pairs(pl_module), self.steps, mode, self.scale)  # (R, S, D)
        images = pl_module.sample(self.rows * self.steps, z=path.flatten(0, 1))  # (R*S, C, H, W)
        return make_grid(pl_module.to_unit(images).cpu(), nrow=self.steps, padding=2, pad_value=1.0)

    def on_due(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        for mode in self.modes:
            grid = self.make_grid(pl_module, mode)
            name = f"interpolation/{mode}_epoch={trainer.current_epoch:03d}.png"
            self.save_png(trainer, f"interpolation/{mode}", name, partial(save_image, grid), f"{mode} path")
