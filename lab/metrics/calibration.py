"""How FID, KID and IS respond to known damage: real digits with noise, blur or missing classes.

``calibrate`` scores real MNIST training images, damaged, against the test split's statistics (the same
``ImageMetrics`` as training and ``evaluate``): the undamaged row is the real-vs-real floor, and each damage row says
what a value means ("an FID of 10 is about as far as the test digits with noise of sigma 0.1"). Used by
``tools/calibrate_metrics.py`` (the table in docs/evaluation.md and RESULTS.md) and by its test at small n.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torchvision.transforms.functional import gaussian_blur

from lab.metrics.image import ImageMetrics

NOISE = (0.05, 0.1, 0.2, 0.4)  # Gaussian pixel noise sigma, images in [0, 1]
BLUR = (0.5, 1.0, 1.5)  # Gaussian blur sigma in pixels (kernel 2 * ceil(3 sigma) + 1)
REMOVED = (1, 3, 5)  # classes left out (digits 0, 1, ... in order)


def damages(seed: int = 0) -> dict[str, tuple[str, float, Callable[[Tensor, Tensor], Tensor]]]:
    """Row name -> (kind, level, function (images, labels) -> damaged images) for every calibration row."""
    gen = torch.Generator().manual_seed(seed)

    def noise(sigma: float) -> Callable[[Tensor, Tensor], Tensor]:
        return lambda x, y: (x + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1)

    def blur(sigma: float) -> Callable[[Tensor, Tensor], Tensor]:
        size = 2 * int(torch.tensor(3 * sigma).ceil()) + 1
        return lambda x, y: gaussian_blur(x, [size, size], [sigma, sigma])

    def removed(k: int) -> Callable[[Tensor, Tensor], Tensor]:
        # keep the set size: the images of the remaining classes, drawn with replacement to n
        def apply(x: Tensor, y: Tensor) -> Tensor:
            keep = (y >= k).nonzero().squeeze(1)
            return x[keep[torch.randint(len(keep), (len(x),), generator=gen)]]

        return apply

    rows: dict[str, tuple[str, float, Callable[[Tensor, Tensor], Tensor]]] = {
        "none (floor)": ("none", 0.0, lambda x, y: x)
    }
    rows |= {f"noise sigma {s:g}": ("noise", s, noise(s)) for s in NOISE}
    rows |= {f"blur sigma {s:g} px": ("blur", s, blur(s)) for s in BLUR}
    rows |= {f"{k} class{'es' if k > 1 else ''} removed": ("removed", k, removed(k)) for k in REMOVED}
    return rows


@torch.no_grad()
def calibrate(
    reference: Tensor, images: Tensor, labels: Tensor, seed: int = 0, kid_subset_size: int = 1000
) -> list[dict[str, Any]]:
    """Metrics of ``images`` (training digits in [0, 1], with ``labels``) under every damage, against the real
    statistics of ``reference`` (test digits): one dict per row (row, kind, level, fid, kid, is, classes_covered)."""
    metrics = ImageMetrics(kid_subset_size=min(kid_subset_size, len(reference), len(images)))
    metrics.update(reference, real=True)
    out = []
    for row, (kind, level, damage) in damages(seed).items():
        metrics.update(damage(images, labels), real=False)
        values = metrics.compute(seed=seed)
        metrics.reset()
        out.append({"row": row, "kind": kind, "level": level,
                    **{k: values[k] for k in ("fid", "kid", "is", "classes_covered", "class_kl")}})  # fmt: skip
    return out


def is_monotone(rows: list[dict[str, Any]]) -> dict[str, bool]:
    """Per damage kind: FID and KID rise and IS falls strictly with the level, starting from the undamaged row."""
    floor = next(r for r in rows if r["kind"] == "none")
    verdict = {}
    for kind in sorted({r["kind"] for r in rows} - {"none"}):
        series = [floor] + sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["level"])
        rises = all(a[m] < b[m] for m in ("fid", "kid") for a, b in zip(series, series[1:], strict=False))
        falls = all(a["is"] > b["is"] for a, b in zip(series, series[1:], strict=False))
        verdict[kind] = rises and falls
    return verdict
