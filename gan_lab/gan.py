"""GAN (Goodfellow et al. 2014): BCE-with-logits discriminator, non-saturating or minimax generator loss.

DCGAN (Radford et al. 2016) is this class with convolutional nets and ``family: dcgan`` (configs/gan/dcgan.yaml).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from gan_lab import losses
from gan_lab.module import GANModule
from lab.errors import one_of

GENERATOR_LOSSES = {"nonsaturating": losses.nonsaturating_generator_loss, "minimax": losses.minimax_generator_loss}


class GAN(GANModule):
    """The seed GAN. Extra args (the rest as in GANModule):

    Args:
        generator_loss_type: ``nonsaturating`` (-log D(G(z)), the default) or ``minimax`` (log(1 - D(G(z)))).
        real_label: target for real images; 0.9 gives one-sided label smoothing (fakes stay at 0).
    """

    family = "gan"

    def __init__(self, *args: Any, generator_loss_type: str = "nonsaturating", real_label: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        one_of("generator_loss_type", generator_loss_type, tuple(GENERATOR_LOSSES))
        if not 0.5 < real_label <= 1.0:
            raise ValueError(f"real_label must be in (0.5, 1], got {real_label}")
        self.generator_loss_fn = GENERATOR_LOSSES[generator_loss_type]
        self.real_label = real_label

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # maximize log(D(x)) + log(1 - D(G(z)))
        real_logits, fake_logits = self.discriminate(real), self.discriminate(fake)
        loss = losses.bce_discriminator_loss(real_logits, fake_logits, self.real_label)
        d_real, d_fake = real_logits.detach().sigmoid().mean(), fake_logits.detach().sigmoid().mean()
        return loss, {"d_real": d_real, "d_fake": d_fake}

    def generator_loss(self, fake: Tensor, real: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # maximize log(D(G(z))) (non-saturating) or minimize log(1 - D(G(z))) (minimax)
        return self.generator_loss_fn(self.discriminate(fake)), {}
