"""DCGAN (Radford et al. 2016): the GAN objective with convolutional nets (chosen in configs/gan/dcgan.yaml)."""

from __future__ import annotations

from gan_lab.gan import GAN


class DCGAN(GAN):
    """The GAN loop and losses; only the nets differ (``gan_lab.nets.conv``), injected by the config."""

    family = "dcgan"
