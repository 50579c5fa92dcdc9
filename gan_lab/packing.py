"""PacGAN (Lin et al. 2018): the discriminator scores packs of m samples, concatenated along the feature/channel axis.

Real packs are made of real samples only and fake packs of fake samples only, so a discriminator that sees m samples
at once can tell a generator that repeats itself from the data: packing penalises mode collapse. ``GANModule``'s
``packing`` applies it to every family that scores through ``discriminate`` (GAN, DCGAN, WGAN, WGAN-GP, Unrolled);
the discriminator must take ``m`` times the channels/features of one sample (``MixtureDiscriminator`` ``in_dim:
2 m``, ``DCDiscriminator`` / ``MLPDiscriminator`` ``image_shape: [m C, H, W]``), and the batch size must be divisible
by m. ``packing: 1`` is the unpacked family, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def n_packs(batch_size: int, packing: int) -> int:
    """The number of packs of ``packing`` samples in a batch; a ValueError when the batch does not split evenly."""
    if batch_size % packing:
        raise ValueError(f"batch size {batch_size} is not divisible by the packing degree {packing}")
    return batch_size // packing


def pack(x: Tensor, packing: int) -> Tensor:
    """(B, C, ...) -> (B / m, m C, ...): each row holds ``packing`` consecutive samples along the channel axis."""
    if packing == 1:
        return x
    return x.reshape(n_packs(x.shape[0], packing), packing * x.shape[1], *x.shape[2:])  # (B / m, m C, ...)


def check_packing(packing: int, discriminator: nn.Module, sample_shape: Sequence[int]) -> int:
    """``packing`` when it is >= 1 and the discriminator takes packs of ``packing`` samples of ``sample_shape`` (one
    forward on zeros in eval mode); else a ValueError naming the input shape it needs."""
    if packing < 1:
        raise ValueError(f"packing must be >= 1, got {packing}")
    if packing == 1:
        return packing
    packed = [packing * sample_shape[0], *sample_shape[1:]]
    was_training = discriminator.training
    discriminator.eval()
    try:
        with torch.no_grad():
            out = discriminator(torch.zeros(2, *packed))
    except RuntimeError:
        out = None
    finally:
        discriminator.train(was_training)
    if out is None or out.shape[0] != 2:
        raise ValueError(
            f"packing {packing}: the discriminator must take packs of {packing} samples of shape "
            f"{list(sample_shape)}, i.e. inputs of shape {packed} (e.g. MixtureDiscriminator in_dim: {packed[0]}, or "
            f"image_shape: {packed} for conv/MLP discriminators)"
        )
    return packing
