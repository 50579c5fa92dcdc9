"""The Stacked MNIST nets of the two published settings, as PacGAN's released code builds them (fjxmlzn/PacGAN,
``stacked_MNIST_experiments``), for images (B, 3, 28, 28) in [-1, 1] (a pack of m images: 3m channels into D).

- **VEEGAN setting** (Srivastava et al. 2017; PacGAN's Table 2): the DCGAN of the TensorFlow code those papers used,
  5x5 kernels, stride 2, "same" padding. G: z -> Linear -> (8c, 2, 2) -> transposed convs to (4c, 4, 4), (2c, 7, 7),
  (c, 14, 14), (3, 28, 28), batch norm and ReLU after each but the last, tanh. D: convs to (c, 14, 14), (2c, 7, 7),
  (4c, 4, 4), (8c, 2, 2), batch norm on all but the first, LeakyReLU 0.2, Linear. c = 64 in the papers.
- **Unrolled GAN setting** (Metz et al. 2017, Appendix; PacGAN's Table 3): a small G (z of 256 -> Linear ->
  (64, 4, 4) -> 3x3 transposed convs to (32, 7, 7), (16, 14, 14), (8, 28, 28), a 3x3 conv to 3 channels, batch norm
  and ReLU after each hidden layer, tanh) and a D whose 3x3 stride-2 convs have ``channels`` = (2, 4, 8) filters for
  "D = 1/4 G" or (4, 8, 16) for "D = 1/2 G": a quarter or a half of G's filter counts (8, 16, 32), not of its
  parameters; batch norm after every conv, LeakyReLU 0.3, Linear.

PyTorch pads symmetrically where TensorFlow's "same" pads one more pixel at the end: the shapes and parameter
counts are the published ones, the alignment of odd padding is PyTorch's.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


def _check(image_shape: Sequence[int], what: str) -> None:
    if tuple(image_shape[1:]) != (28, 28):
        raise ValueError(f"{what} works on 28x28 images, got image_shape {tuple(image_shape)}")


class VeeganGenerator(nn.Module):
    """The VEEGAN setting's DCGAN generator (see the module docstring): z (B, latent_dim) -> (B, C, 28, 28) in [-1, 1].

    Args:
        latent_dim: size of z (100 in the papers).
        channels: c, the width of the last hidden map (64 in the papers; the first has 8c).
        image_shape: (C, 28, 28) of the output.
    """

    backbone = "conv"
    output_activation = "tanh"

    def __init__(self, latent_dim: int = 100, channels: int = 64, image_shape: Sequence[int] = (3, 28, 28)) -> None:
        super().__init__()
        _check(image_shape, "VeeganGenerator")
        self.latent_dim, self.image_shape, self.channels = latent_dim, tuple(image_shape), channels
        c = channels
        self.project = nn.Linear(latent_dim, 8 * c * 2 * 2)
        self.net = nn.Sequential(
            nn.BatchNorm2d(8 * c), nn.ReLU(),
            nn.ConvTranspose2d(8 * c, 4 * c, 5, stride=2, padding=2, output_padding=1),  # (4c, 4, 4)
            nn.BatchNorm2d(4 * c), nn.ReLU(),
            nn.ConvTranspose2d(4 * c, 2 * c, 5, stride=2, padding=2),  # (2c, 7, 7)
            nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.ConvTranspose2d(2 * c, c, 5, stride=2, padding=2, output_padding=1),  # (c, 14, 14)
            nn.BatchNorm2d(c), nn.ReLU(),
            nn.ConvTranspose2d(c, image_shape[0], 5, stride=2, padding=2, output_padding=1),  # (C, 28, 28)
            nn.Tanh(),
        )  # fmt: skip

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.project(z).view(z.shape[0], 8 * self.channels, 2, 2))


class VeeganDiscriminator(nn.Module):
    """The VEEGAN setting's DCGAN discriminator: (B, C, 28, 28) -> logit (B,).

    Args:
        channels: c, the width of the first map (64 in the papers; then 2c, 4c, 8c).
        image_shape: (C, 28, 28) of the input (C = 3m for packs of m).
    """

    def __init__(self, channels: int = 64, image_shape: Sequence[int] = (3, 28, 28)) -> None:
        super().__init__()
        _check(image_shape, "VeeganDiscriminator")
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(image_shape[0], c, 5, stride=2, padding=2), nn.LeakyReLU(0.2),  # (c, 14, 14)
            nn.Conv2d(c, 2 * c, 5, stride=2, padding=2), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2),  # (2c, 7, 7)
            nn.Conv2d(2 * c, 4 * c, 5, stride=2, padding=2), nn.BatchNorm2d(4 * c), nn.LeakyReLU(0.2),  # (4c, 4, 4)
            nn.Conv2d(4 * c, 8 * c, 5, stride=2, padding=2), nn.BatchNorm2d(8 * c), nn.LeakyReLU(0.2),  # (8c, 2, 2)
            nn.Flatten(), nn.Linear(8 * c * 2 * 2, 1),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class MetzGenerator(nn.Module):
    """The Unrolled GAN setting's generator (see the module docstring): z (B, latent_dim) -> (B, C, 28, 28).

    Args:
        latent_dim: size of z (256 in the paper).
        image_shape: (C, 28, 28) of the output.
    """

    backbone = "conv"
    output_activation = "tanh"

    def __init__(self, latent_dim: int = 256, image_shape: Sequence[int] = (3, 28, 28)) -> None:
        super().__init__()
        _check(image_shape, "MetzGenerator")
        self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)
        self.project = nn.Linear(latent_dim, 64 * 4 * 4)
        self.net = nn.Sequential(
            nn.BatchNorm2d(64), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),  # (32, 7, 7)
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, image_shape[0], 3, padding=1),  # (C, 28, 28)
            nn.Tanh(),
        )  # fmt: skip

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.project(z).view(z.shape[0], 64, 4, 4))


class MetzDiscriminator(nn.Module):
    """The Unrolled GAN setting's discriminator: (B, C, 28, 28) -> logit (B,).

    Args:
        channels: the filters of its three convs: (2, 4, 8) is "D = 1/4 G", (4, 8, 16) "D = 1/2 G" (of G's filter
            counts 8, 16, 32).
        image_shape: (C, 28, 28) of the input (C = 3m for packs of m).
    """

    def __init__(self, channels: Sequence[int] = (2, 4, 8), image_shape: Sequence[int] = (3, 28, 28)) -> None:
        super().__init__()
        _check(image_shape, "MetzDiscriminator")
        if len(channels) != 3 or min(channels) < 1:
            raise ValueError(f"channels must be three positive filter counts, got {list(channels)}")
        layers, width = [], image_shape[0]
        for out in channels:  # 28 -> 14 -> 7 -> 4
            layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.LeakyReLU(0.3)]
            width = out
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * 4 * 4, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)
