"""VAE baseline (Kingma & Welling 2014): Bernoulli decoder, Gaussian posterior, loss = reconstruction + beta * KL.

It has the image-generator protocol (``lab.protocol.ImageGenerator``: ``sample``, ``latent_dim``, ...), so the
sample-grid and interpolation callbacks, ``sample`` and ``evaluate`` treat it like any GAN. Automatic optimization.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import torch
from pytorch_lightning import LightningModule
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor, nn

from gan_lab import losses
from gan_lab.generator import VALUE_RANGES, ImageGeneratorMixin, check_metrics_args
from lab.errors import check_optimizer


class VAE(ImageGeneratorMixin, LightningModule):
    """Args:
    encoder: images (B, C, H, W) -> (mu, logvar), each (B, latent_dim); needs a ``latent_dim`` attribute.
    decoder: z (B, latent_dim) -> pixel logits (B, C, H, W): a generator with ``output_activation: none``.
    optimizer: callable params -> optimizer (default Adam 1e-3).
    beta: weight of the KL term (1: the ELBO; > 1: beta-VAE).
    value_range: data scaling, linked from ``data.init_args.value_range`` (tanh or sigmoid; default sigmoid);
        samples are returned in this range.
    sample_every_n_epochs: cadence of the sample-grid and interpolation images (0: none).
    metrics_every_n_epochs: cadence of FID, IS and class coverage (0: none).
    metrics_samples: generated images per metric evaluation.
    """

    family = "vae"

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        optimizer: OptimizerCallable | None = None,
        beta: float = 1.0,
        value_range: str | None = None,
        sample_every_n_epochs: int = 1,
        metrics_every_n_epochs: int = 1,
        metrics_samples: int = 10000,
    ) -> None:
        super().__init__()
        if getattr(decoder, "output_activation", None) != "none":
            raise ValueError("the VAE decoder must output logits: set its output_activation: none")
        if getattr(encoder, "latent_dim", None) != getattr(decoder, "latent_dim", None):
            raise ValueError(
                f"encoder latent_dim {getattr(encoder, 'latent_dim', None)} != decoder latent_dim "
                f"{getattr(decoder, 'latent_dim', None)}"
            )
        if value_range not in (None, "tanh", "sigmoid"):
            raise ValueError(f"value_range must be tanh or sigmoid for the VAE, got {value_range!r}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim: int = decoder.latent_dim
        self.image_shape = tuple(decoder.image_shape)
        self.value_range = value_range or "sigmoid"
        self.optimizer = optimizer or functools.partial(torch.optim.Adam, lr=1e-3)
        check_optimizer(self.optimizer, "optimizer")
        self.beta = beta
        self.sample_every_n_epochs = sample_every_n_epochs
        self.metrics_every_n_epochs, self.metrics_samples = check_metrics_args(metrics_every_n_epochs, metrics_samples)

    def generate(self, z: Tensor) -> Tensor:
        """Mean image of p(x | z), mapped to ``data_range``: (B, latent_dim) -> (B, C, H, W)."""
        low, high = VALUE_RANGES[self.value_range]
        return low + (high - low) * torch.sigmoid(self.decoder(z))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(logits (B, C, H, W), mu, logvar) with z = mu + sigma * eps (reparameterisation)."""
        mu, logvar = self.encoder(images)  # (B, latent_dim) each
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decoder(z), mu, logvar

    def step(self, batch: Tensor | tuple[Tensor, ...], stage: str) -> Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch  # (B, C, H, W) in data_range
        target = self.to_unit(images)
        logits, mu, logvar = self(images)
        reconstruction = losses.bernoulli_reconstruction_loss(logits, target)
        kl = losses.kl_divergence(mu, logvar)
        loss = reconstruction + self.beta * kl
        metrics = {"loss": loss, "reconstruction": reconstruction, "kl": kl}
        self.log_dict({f"{stage}/{k}": v.detach() for k, v in metrics.items()}, batch_size=images.shape[0])
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.step(batch, "val")

    def on_train_epoch_end(self) -> None:
        # the decoder is the generator: one update per batch (the family tables' budget column)
        self.log("progress/generator_steps", float(self.trainer.global_step), rank_zero_only=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer(self.parameters())
