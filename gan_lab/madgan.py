"""MAD-GAN (Ghosh et al. 2018): k generators and a discriminator that also tells which generator made a sample.

The discriminator has k + 1 outputs (softmax over "generator 1..k" and "real", real = index k) and minimises the
cross-entropy ``-E_x log D_real(x) - sum_i E_z log D_i(G_i(z))``; each generator maximises ``log D_real(G_i(z))``
(the non-saturating form of the paper's ``log(1 - D_real(G_i(z)))``). To fool the discriminator a generator must
make real-looking samples that the others do not make, which pushes the generators to different modes.

Sampling is uniform over generators: row j of a batch comes from generator ``j mod k``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_lab.module import GANModule


def generator_assignment(n: int, n_generators: int, device: torch.device | None = None) -> Tensor:
    """Which generator makes row j of a batch of ``n``: ``j mod n_generators`` (n,), uniform over generators."""
    return torch.arange(n, device=device) % n_generators


def madgan_discriminator_loss(real_logits: Tensor, fake_logits: Tensor, fake_labels: Tensor) -> Tensor:
    """-E log D_real(x) - E log D_{i(z)}(G_i(z)): cross-entropy over k + 1 classes, real = the last class."""
    real_target = torch.full((real_logits.shape[0],), real_logits.shape[1] - 1, device=real_logits.device)
    return F.cross_entropy(real_logits, real_target) + F.cross_entropy(fake_logits, fake_labels)


def madgan_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E log D_real(G_i(z)) over all generators' samples (non-saturating)."""
    return -F.log_softmax(fake_logits, dim=1)[:, -1].mean()


def _reinitialise(module: nn.Module) -> nn.Module:
    for layer in module.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return module


class MultiGenerator(nn.Module):
    """k generators as one module: ``forward(z)`` sends row j of ``z`` to generator ``j mod k``.

    Args:
        generator: the template network (copied k times, each copy re-initialised).
        n_generators: k.
        shared_trunk: share everything but the last layer(s): the template must be ``head(trunk(z))`` with ``trunk``
            and ``head`` submodules (``MixtureGenerator`` is); only the head is copied. False: k separate networks.
    """

    def __init__(self, generator: nn.Module, n_generators: int = 4, shared_trunk: bool = False) -> None:
        super().__init__()
        if n_generators < 1:
            raise ValueError(f"n_generators must be >= 1, got {n_generators}")
        for name in ("latent_dim", "image_shape", "output_activation"):
            if not hasattr(generator, name):
                raise ValueError(f"the generator {type(generator).__name__} needs a `{name}` attribute")
        if shared_trunk and not (hasattr(generator, "trunk") and hasattr(generator, "head")):
            raise ValueError(
                f"shared_trunk needs a generator with `trunk` and `head` submodules; {type(generator).__name__} has "
                "not: set shared_trunk: false for separate generators"
            )
        self.latent_dim, self.image_shape = generator.latent_dim, tuple(generator.image_shape)
        self.output_activation, self.n_generators, self.shared_trunk = (
            generator.output_activation,
            n_generators,
            shared_trunk,
        )
        if shared_trunk:
            self.trunk = generator.trunk
            self.heads = nn.ModuleList([_reinitialise(copy.deepcopy(generator.head)) for _ in range(n_generators)])
        else:
            self.generators = nn.ModuleList(
                [generator] + [_reinitialise(copy.deepcopy(generator)) for _ in range(n_generators - 1)]
            )

    def forward_one(self, index: int, z: Tensor) -> Tensor:
        """Samples of generator ``index`` for noise ``z`` (B, latent_dim)."""
        if self.shared_trunk:
            return self.heads[index](self.trunk(z))
        return self.generators[index](z)

    def forward(self, z: Tensor) -> Tensor:
        k = self.n_generators
        if self.shared_trunk:  # the trunk once on the whole batch (batch norm sees it all), then one head per slice
            h = self.trunk(z)  # (B, hidden)
            parts = [self.heads[i](h[i::k]) for i in range(min(k, z.shape[0]))]
        else:
            parts = [self.forward_one(i, z[i::k]) for i in range(min(k, z.shape[0]))]
        out = parts[0].new_empty(z.shape[0], *parts[0].shape[1:])  # (B, ...), in the parts' dtype (bf16 under autocast)
        for i, part in enumerate(parts):
            out[i::k] = part
        return out


class MADGAN(GANModule):
    """Multi-agent diverse GAN. ``generator`` is a ``MultiGenerator``; ``discriminator`` returns (B, k + 1) logits.

    Args:
        generator: the k generators (``gan_lab.madgan.MultiGenerator``).
        discriminator: x -> logits (B, k + 1), the last one meaning "real".
        *args, **kwargs: as in GANModule.
    """

    family = "madgan"

    def __init__(self, generator: nn.Module, discriminator: nn.Module, *args: Any, **kwargs: Any) -> None:
        if not isinstance(generator, MultiGenerator):
            raise ValueError(f"MADGAN needs generator: gan_lab.madgan.MultiGenerator, got {type(generator).__name__}")
        if kwargs.get("packing", 1) != 1:
            raise ValueError("MAD-GAN's discriminator names each sample's generator: packing must be 1")
        super().__init__(generator, discriminator, *args, **kwargs)
        self.n_generators = generator.n_generators
        with torch.no_grad():
            was_training = discriminator.training
            discriminator.eval()
            out = discriminator(torch.zeros(2, *generator.image_shape))
            discriminator.train(was_training)
        if out.ndim != 2 or out.shape[1] != self.n_generators + 1:
            raise ValueError(
                f"the MAD-GAN discriminator must return (B, n_generators + 1) = (B, {self.n_generators + 1}) logits, "
                f"got {tuple(out.shape)}: set its n_outputs to {self.n_generators + 1}"
            )

    def discriminator_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # maximize log D_real(x) + sum_i log D_i(G_i(z))
        real_logits, fake_logits = self.discriminate(real), self.discriminate(fake)  # (B, k + 1) each
        labels = generator_assignment(fake.shape[0], self.n_generators, fake.device)
        loss = madgan_discriminator_loss(real_logits, fake_logits, labels)
        d_real = real_logits.detach().softmax(1)[:, -1].mean()
        d_fake = fake_logits.detach().softmax(1)[:, -1].mean()
        which = (fake_logits.detach()[:, :-1].argmax(1) == labels).float().mean()
        return loss, {"d_real": d_real, "d_fake": d_fake, "d_which_generator_acc": which}

    def generator_loss(self, fake: Tensor, real: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # maximize log D_real(G_i(z)) for every generator i
        return madgan_generator_loss(self.discriminate(fake)), {}
