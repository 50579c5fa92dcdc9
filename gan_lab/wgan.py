"""Wasserstein GANs: WGAN with weight clipping (Arjovsky et al. 2017) and WGAN-GP (Gulrajani et al. 2017)."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

from gan_lab import losses
from gan_lab.module import GANModule
from gan_lab.packing import pack


class WGAN(GANModule):
    """WGAN: critic scores without sigmoid, weights clipped to [-clip_value, clip_value] after every critic step.

    Defaults are the paper's: RMSprop 5e-5, n_critic 5, clip 0.01.
    """

    family = "wgan_clip"
    default_optimizer: Any = functools.partial(torch.optim.RMSprop, lr=5e-5)

    def __init__(self, *args: Any, clip_value: float = 0.01, n_critic: int = 5, **kwargs: Any) -> None:
        super().__init__(*args, n_critic=n_critic, **kwargs)
        if clip_value <= 0:
            raise ValueError(f"clip_value must be > 0, got {clip_value}")
        self.clip_value = clip_value

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # maximize E[f(x)] - E[f(G(z))]
        real_scores, fake_scores = self.discriminate(real), self.discriminate(fake)
        d_real, d_fake = real_scores.detach().mean(), fake_scores.detach().mean()
        loss = losses.wasserstein_critic_loss(real_scores, fake_scores)
        return loss, {"d_real": d_real, "d_fake": d_fake, "wasserstein": d_real - d_fake}

    def generator_loss(self, fake: Tensor, real: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # maximize E[f(G(z))]
        return losses.wasserstein_generator_loss(self.discriminate(fake)), {}

    def after_discriminator_step(self) -> None:
        with torch.no_grad():
            for param in self.discriminator.parameters():
                param.clamp_(-self.clip_value, self.clip_value)


class WGANGP(GANModule):
    """WGAN-GP: the Wasserstein critic loss plus gp_weight * gradient penalty on per-sample interpolates.

    Defaults are the paper's: Adam 1e-4, betas (0.0, 0.9), n_critic 5, lambda 10; keep batch norm out of the critic.
    """

    family = "wgan"
    default_optimizer: Any = functools.partial(torch.optim.Adam, lr=1e-4, betas=(0.0, 0.9))

    def __init__(self, *args: Any, gp_weight: float = 10.0, n_critic: int = 5, **kwargs: Any) -> None:
        super().__init__(*args, n_critic=n_critic, **kwargs)
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight}")
        if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.discriminator.modules()):
            raise ValueError(
                "WGAN-GP's critic must not use batch norm (the penalty is per sample): set batch_norm: false"
            )
        self.gp_weight = gp_weight

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # maximize E[f(x)] - E[f(G(z))] - lambda E[(||grad f(x_hat)|| - 1)^2]
        real_scores, fake_scores = self.discriminate(real), self.discriminate(fake)
        # per discriminator input: on packs of `packing` samples (PacGAN), one interpolation weight per pack
        critic = functools.partial(self.discriminate, packed=True)
        penalty = losses.gradient_penalty(critic, pack(real, self.packing), pack(fake, self.packing))
        loss = losses.wasserstein_critic_loss(real_scores, fake_scores) + self.gp_weight * penalty
        d_real, d_fake = real_scores.detach().mean(), fake_scores.detach().mean()
        return loss, {"d_real": d_real, "d_fake": d_fake, "wasserstein": d_real - d_fake, "gp": penalty.detach()}

    def generator_loss(self, fake: Tensor, real: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # maximize E[f(G(z))]
        return losses.wasserstein_generator_loss(self.discriminate(fake)), {}
