"""DCGAN-style convolutional generator and discriminator for 28x28 images (plain nn.Modules)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from gan_lab.nets.mlp import output_activation_layer


class DCGenerator(nn.Module):
    """z (B, latent_dim) -> image (B, C, 28, 28): Linear to (2c, 7, 7), two stride-2 transposed convs.

    Args:
        latent_dim: size of the noise vector.
        channels: c, the width of the last hidden feature map (the first has 2c).
        image_shape: (C, 28, 28) of the output.
        batch_norm: BatchNorm after each hidden layer (DCGAN's choice; an ablation switch).
        output_activation: tanh (data in [-1, 1]) or sigmoid (data in [0, 1]); none for logits.
    """

    backbone = "conv"  # a W&B tag of runs with this generator

    def __init__(
        self,
        latent_dim: int = 100,
        channels: int = 64,
        image_shape: Sequence[int] = (1, 28, 28),
        batch_norm: bool = True,
        output_activation: str = "tanh",
    ) -> None:
        super().__init__()
        if tuple(image_shape[1:]) != (28, 28):
            raise ValueError(f"DCGenerator makes 28x28 images, got image_shape {tuple(image_shape)}")
        self.latent_dim = latent_dim
        self.image_shape = tuple(image_shape)
        self.output_activation = output_activation
        c = channels

        def norm1d(n: int) -> nn.Module:
            return nn.BatchNorm1d(n) if batch_norm else nn.Identity()

        def norm2d(n: int) -> nn.Module:
            return nn.BatchNorm2d(n) if batch_norm else nn.Identity()

        self.project = nn.Sequential(nn.Linear(latent_dim, 2 * c * 7 * 7, bias=not batch_norm), norm1d(2 * c * 7 * 7))
        self.net = nn.Sequential(
            nn.ReLU(),
            # state size. (2c) x 7 x 7
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1, bias=not batch_norm),
            norm2d(c),
            nn.ReLU(),
            # state size. (c) x 14 x 14
            nn.ConvTranspose2d(c, image_shape[0], 4, stride=2, padding=1),
            # state size. (C) x 28 x 28
            output_activation_layer(output_activation),
        )
        self.channels = c

    def forward(self, z: Tensor) -> Tensor:
        h = self.project(z).view(z.shape[0], 2 * self.channels, 7, 7)  # (B, 2c, 7, 7)
        return self.net(h)  # (B, C, 28, 28)


class DCDiscriminator(nn.Module):
    """image (B, C, 28, 28) -> logit or critic score (B,): two stride-2 convs with LeakyReLU(0.2), then Linear.

    Args:
        channels: c, the width of the first feature map (the second has 2c).
        image_shape: (C, 28, 28) of the input.
        batch_norm: BatchNorm2d on the second conv (keep off for WGAN-GP: the penalty is per sample).
        n_outputs: 1 gives (B,) scores; more gives (B, n_outputs) logits (MAD-GAN's k + 1 classes).
    """

    def __init__(
        self, channels: int = 64, image_shape: Sequence[int] = (1, 28, 28), batch_norm: bool = False, n_outputs: int = 1
    ) -> None:
        super().__init__()
        c, self.n_outputs = channels, n_outputs
        self.net = nn.Sequential(
            # input. (C) x 28 x 28
            nn.Conv2d(image_shape[0], c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            # state size. (c) x 14 x 14
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=not batch_norm),
            nn.BatchNorm2d(2 * c) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2),
            # state size. (2c) x 7 x 7
            nn.Flatten(),
            nn.Linear(2 * c * 7 * 7, n_outputs),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)  # (B, n_outputs)
        return out.squeeze(1) if self.n_outputs == 1 else out
