"""The metrics maths as pure functions on tensors (the torchmetrics pattern: a functional core under thin classes).

Image metrics: ``to_unit_range``, ``coverage_stats`` (class histogram, classes covered, KL to uniform), ``shard``
(a DDP rank's part of a fixed sample set), ``class_pair_endpoints``. FID and KID themselves are torchmetrics'.

Mode-collapse metrics, Definitions (mixtures, after PacGAN, Lin et al. 2018, and VEEGAN, Srivastava et al. 2017):

- a generated point is *high quality* (HQ) when its distance to the nearest mode centre is <= ``n_sigma * std``
  (``n_sigma`` = 3);
- a mode is *captured* when at least one HQ point has it as nearest centre (out of 2,500 generated points): the
  protocol's count, ``modes``;
- ``modes_gated`` counts a mode only when it holds at least ``gate`` (20%) of the HQ points the true mixture would
  put there in as many samples, ``count_k >= 0.2 * N * (1 - exp(-n_sigma^2 / 2)) / K`` (and at least one point): a
  uniform cloud over the box, a few stray points, or low-quality mass cannot make a mode (docs/modes.md);
- *reverse KL* is ``KL(p || u) = sum_k p_k log(K p_k)``, where ``p`` is the histogram of the HQ points over the
  K modes (normalised by the number of HQ points; terms with ``p_k = 0`` count 0) and ``u`` is uniform over the K
  modes. It is 0 when the HQ points are spread evenly over all modes and ``log K`` when they all sit in one mode;
  it is NaN when there is no HQ point at all.

Stacked MNIST (after VEEGAN / Unrolled GAN): each channel of a generated image is classified by the project's MNIST
classifier; the mode is ``100 * d_red + 10 * d_green + d_blue`` (1,000 modes); ``modes`` counts the modes hit at
least once and ``kl`` is ``KL(p || u)`` over the 1,000 modes with ``p`` the histogram of all samples.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


def to_unit_range(images: Tensor, data_range: tuple[float, float]) -> Tensor:
    """Maps images from ``data_range`` (e.g. (-1, 1)) to [0, 1], clamped."""
    low, high = float(data_range[0]), float(data_range[1])
    if not high > low:
        raise ValueError(f"data_range must be (low, high) with low < high, got {data_range}")
    return ((images.float() - low) / (high - low)).clamp_(0, 1)


def coverage_stats(counts: Tensor) -> dict[str, Tensor]:
    """Histogram (as frequencies), number of classes with at least one sample, and KL(histogram || uniform) in nats."""
    p = counts.double() / counts.sum().clamp(min=1)
    plogp = torch.where(p > 0, p * p.clamp(min=1e-300).log(), torch.zeros_like(p))
    kl = plogp.sum() + math.log(len(counts))  # sum p log(p / (1/K))
    return {"histogram": p, "classes_covered": (counts > 0).sum(), "class_kl": kl}


def shard(n: int, rank: int, world_size: int) -> slice:
    """The contiguous part of ``range(n)`` that DDP rank ``rank`` of ``world_size`` handles."""
    per, extra = divmod(n, world_size)
    start = rank * per + min(rank, extra)
    return slice(start, start + per + (rank < extra))


STACKED_MODES = 1000


def kl_to_uniform(counts: torch.Tensor) -> float:
    """``sum_k p_k log(K p_k)`` with ``p = counts / counts.sum()`` over ``K = len(counts)``; NaN if all counts are 0."""
    total = counts.sum()
    if total <= 0:
        return math.nan
    p = counts.double() / total
    nonzero = p > 0
    return float((p[nonzero] * torch.log(p[nonzero] * len(counts))).sum())


def mixture_mode_stats(
    samples: torch.Tensor, centres: torch.Tensor, std: float, n_sigma: float = 3.0, gate: float = 0.2
) -> dict:
    """Modes captured (the protocol's count and the quality-gated one), HQ percentage and reverse KL of ``samples``
    ``(N, 2)`` against ``centres`` ``(K, 2)`` of an isotropic mixture with equal weights and std ``std``.

    Returns:
        ``{"modes": int, "modes_gated": int, "hq_percent": float, "reverse_kl": float, "counts": list[int]}``
        (``counts``: HQ points per mode; ``modes_gated``: modes with ``count_k >= 1`` and ``count_k >= gate * N *
        P(HQ) / K``, where ``P(HQ) = 1 - exp(-n_sigma^2 / 2)`` is a true sample's chance of being HQ in 2-D).
    """
    if not 0.0 <= gate <= 1.0:
        raise ValueError(f"gate must be in [0, 1], got {gate}")
    samples = samples.detach().float().cpu()
    centres = centres.float().cpu()
    distance, nearest = torch.cdist(samples, centres).min(dim=1)  # (N,), (N,)
    high_quality = distance <= n_sigma * std
    counts = torch.bincount(nearest[high_quality], minlength=len(centres))  # (K,)
    expected = len(samples) * (1.0 - math.exp(-(n_sigma**2) / 2)) / len(centres)  # HQ points per mode, true mixture
    return {
        "modes": int((counts > 0).sum()),
        "modes_gated": int(((counts > 0) & (counts >= gate * expected)).sum()),
        "hq_percent": 100.0 * float(high_quality.float().mean()),
        "reverse_kl": kl_to_uniform(counts),
        "counts": counts.tolist(),
    }


def stacked_mode_stats(digits: torch.Tensor) -> dict:
    """Modes hit (of 1,000) and KL to uniform from per-channel digits ``(N, 3)`` (red, green, blue)."""
    if digits.ndim != 2 or digits.shape[1] != 3:
        raise ValueError(f"digits must be (N, 3), got {tuple(digits.shape)}")
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]  # (N,)
    counts = torch.bincount(modes.long().cpu(), minlength=STACKED_MODES)
    return {"modes": int((counts > 0).sum()), "kl": kl_to_uniform(counts)}


def classify_stacked(images: torch.Tensor, classifier: torch.nn.Module) -> torch.Tensor:
    """Per-channel digits ``(N, 3)`` of stacked images ``(N, 3, 28, 28)`` in [0, 1] (one MNIST prediction each)."""
    n = images.shape[0]
    channels = images.reshape(n * 3, 1, *images.shape[-2:])  # (3N, 1, 28, 28)
    logits = classifier(channels)  # (3N, 10)
    return logits.argmax(dim=1).reshape(n, 3)


@torch.no_grad()
def class_pair_endpoints(
    module: Any,
    classifier: torch.nn.Module,
    pairs: int = 5,
    candidates: int = 256,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Latent endpoints whose samples the classifier labels as different digits, for class-to-class interpolation.

    Draws ``candidates`` noise vectors, labels their samples, and pairs the most confident sample of one digit with the
    most confident sample of another (digits cycling 0->1, 1->2, ... over the classes present).

    Returns:
        z1, z2 (pairs, latent_dim) on the device of ``module`` (an image generator: ``latent_dim``, ``sample``,
        ``data_range``) and their digits d1, d2 (pairs,); d1 != d2 whenever the
        generator makes at least two digits (else both endpoints share a digit).
    """
    classifier = classifier.to(module.device)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(candidates, module.latent_dim, generator=gen).to(module.device)
    images = to_unit_range(module.sample(candidates, z=z), module.data_range)
    confidence, digit = torch.cat([classifier.logits(x) for x in images.split(500)]).softmax(1).max(1)
    best = {}  # digit -> index of its most confident sample
    for d in digit.unique().tolist():
        idx = (digit == d).nonzero().flatten()
        best[d] = int(idx[confidence[idx].argmax()])
    present = sorted(best)
    first = [present[i % len(present)] for i in range(pairs)]
    second = [present[(i + 1) % len(present)] for i in range(pairs)]
    i1 = torch.tensor([best[d] for d in first], device=z.device)
    i2 = torch.tensor([best[d] for d in second], device=z.device)
    return z[i1], z[i2], digit[i1], digit[i2]
