"""Baseline rows of the mode-collapse tables: what real samples, a uniform cloud and a collapsed generator score under
the same counting code (``lab.metrics.functional.mixture_mode_stats``) as every trained run.

An experiment names ``gan_lab.baselines.mixture_baselines`` under ``baselines:`` with the data's arguments; the table
builder calls it with the experiment's seeds and shows the rows beside the families. The uniform cloud's box is the
centres' bounding box widened on each side by half the distance between nearest centres ([-5, 5]^2 on the 25-grid):
on the grid 2,500 such points score about 21 of 25 modes under the protocol's count, which is why the gated count and
these rows stand beside every table.

``stacked_baselines`` and ``mnist_baselines`` give the same three kinds of row for Stacked MNIST and MNIST images,
scored by the classifier-based code of the trained runs.
"""

from __future__ import annotations

from typing import Any

import torch

from datamodules.mixture_stream import mixture_centres, sample_mixture
from lab.metrics.functional import mixture_mode_stats

LABELS = ("real samples", "uniform cloud over the box", "one mode")


def baseline_points(kind: str, centres: torch.Tensor, std: float, n: int, seed: int) -> torch.Tensor:
    """``n`` points ``(n, 2)`` of one baseline: ``real samples``, ``uniform cloud over the box`` or ``one mode``
    (every point drawn from the first mode's Gaussian)."""
    generator = torch.Generator().manual_seed(seed)
    if kind == "real samples":
        return sample_mixture(centres, std, n, generator)[0]
    if kind == "one mode":
        return centres[0] + std * torch.randn(n, 2, generator=generator)
    if kind == "uniform cloud over the box":
        margin = 0.5 * torch.cdist(centres, centres).fill_diagonal_(float("inf")).min()
        low, high = centres.min(dim=0).values - margin, centres.max(dim=0).values + margin
        return low + (high - low) * torch.rand(n, 2, generator=generator)
    raise ValueError(f"baseline must be one of {', '.join(LABELS)}; got {kind!r}")


def mixture_baselines(
    kind: str,
    seeds: list[int],
    n_modes: int | None = None,
    scale: float | None = None,
    std: float | None = None,
    n_samples: int = 2500,
) -> list[dict[str, Any]]:
    """One row per baseline: ``{"label", "runs": [{"val/modes": ..., "val/modes_gated": ..., "val/hq_percent": ...,
    "val/reverse_kl": ...} per seed]}``, scored on ``n_samples`` points per seed (the protocol's 2,500). The mixture
    defaults to the protocol's (ring: 8 modes, radius 1, std 0.01; grid: 25 modes, spacing 2, std 0.05)."""
    defaults = {"ring": (8, 1.0, 0.01), "grid": (25, 2.0, 0.05)}[kind]
    given = (n_modes, scale, std)
    n_modes, scale, std = (g if g is not None else d for g, d in zip(given, defaults, strict=True))
    centres = mixture_centres(kind, n_modes, scale)
    rows = []
    for label in LABELS:
        runs = []
        for seed in seeds:
            stats = mixture_mode_stats(baseline_points(label, centres, std, n_samples, seed), centres, std)
            runs.append({f"val/{k}": v for k, v in stats.items() if k != "counts"})
        rows.append({"label": label, "runs": runs})
    return rows


STACKED_LABELS = ("real stacked test digits", "uniform noise", "one digit triple")


def stacked_baselines(seeds: list[int], n_samples: int = 26_000) -> list[dict[str, Any]]:
    """The Stacked MNIST reference rows, ``{"label", "runs": [{"val/modes": ..., "val/kl": ...} per seed]}``, by the
    classifier count of every trained run (``gan_lab.evaluate_samples.score_stacked``) on ``n_samples`` images per
    seed: three MNIST test digits stacked as R, G, B; pixels uniform in [0, 1]; one real triple repeated."""
    from torchvision.datasets import MNIST

    from gan_lab.evaluate_samples import score_stacked
    from lab.paths import default_data_dir

    test = MNIST(default_data_dir(), train=False, download=False).data.float().div(255.0)  # (10000, 28, 28)
    rows = {label: [] for label in STACKED_LABELS}
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        triples = torch.randint(len(test), (n_samples, 3), generator=generator)
        made = {
            "real stacked test digits": test[triples],  # (n, 3, 28, 28)
            "uniform noise": torch.rand(n_samples, 3, 28, 28, generator=generator),
            "one digit triple": test[triples[:1]].expand(n_samples, 3, 28, 28),
        }
        for label, images in made.items():
            stats = score_stacked(images)
            rows[label].append({"val/modes": stats["modes"], "val/kl": stats["kl"]})
    return [{"label": label, "runs": runs} for label, runs in rows.items()]


MNIST_LABELS = ("real training digits, none in the test split", "uniform noise images", "one training digit, repeated")


def mnist_baselines(seeds: list[int], keys: dict[str, str], n: int = 10_000) -> list[dict[str, Any]]:
    """The MNIST reference rows, ``{"label", "runs": [{<table key>: value} per seed]}``: ``n`` images per seed scored
    by ``gan_lab.evaluate`` (the suite's classifier, against the first ``n`` test digits, as the runs' metrics are):
    training digits (the ceiling), pixels uniform in [0, 1], one training digit repeated (total collapse). ``keys``
    maps each table key to the result's metric: ``{eval/is_600s: is, eval/fid_600s: fid, val/classes_covered:
    classes_covered}``."""
    from datamodules.mnist import floor_draw
    from gan_lab.evaluate import evaluate

    rows: dict[str, list[dict[str, float]]] = {label: [] for label in MNIST_LABELS}
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        train = floor_draw(n, generator=generator)[0].float() / 255  # (n, 1, 28, 28)
        noise = torch.rand(n, 1, 28, 28, generator=generator)
        made = dict(zip(MNIST_LABELS, (train, noise, train[:1].expand_as(train)), strict=True))
        for label, images in made.items():
            result = evaluate(None, n=n, seed=seed, images=images)
            rows[label].append({key: float(result[name]) for key, name in keys.items()})
    return [{"label": label, "runs": runs} for label, runs in rows.items()]
