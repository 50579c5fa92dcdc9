"""``python -m gan_lab evaluate --samples FILE.pt``: saved samples scored as a checkpoint's are (the format
``python -m gan_lab sample --out FILE.pt`` writes), so that any generator, from this suite or not, and the baseline
rows (real data, uniform noise, one mode) are measured by the same code as the trained runs.

- ``N x 1 x 28 x 28`` images in [0, 1]: MNIST, the checkpoint's keys (``fid``, ``kid``, ``is``, ``precision``,
  ``recall``, ``density``, ``coverage``, ``classes``, ``class_kl`` and the real-data columns);
- ``N x 3 x 28 x 28`` images in [0, 1]: Stacked MNIST, ``modes`` (of 1,000: the three digits the classifier reads,
  one per channel) and ``kl`` (to uniform over the 1,000);
- ``N x 2`` points with ``--data ring|grid``: the protocol's mixture (ring: 8 modes, radius 1, std 0.01; grid: 25
  modes, spacing 2, std 0.05), ``modes`` (the protocol's count), ``modes_gated``, ``hq`` (% high quality) and ``rkl``
  (reverse KL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lab.errors import LabError

MIXTURES = ("ring", "grid")


def load_samples(path: str | Path, data: str | None) -> tuple[str, torch.Tensor]:
    """``(kind, samples)`` with kind ``mnist``, ``stacked_mnist`` or ``mixture``; LabError in one line when the file,
    its shape, its range or ``--data`` does not fit."""
    path = Path(path)
    if not path.is_file():
        raise LabError(f"samples file {path} does not exist")
    try:
        samples = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and tensor errors all mean the same thing to the user
        raise LabError(f"samples file {path} is not a saved tensor ({' '.join(str(err).split())[:120]})") from None
    if not isinstance(samples, torch.Tensor) or not samples.is_floating_point():
        raise LabError(f"samples file {path} must hold one float tensor (as `python -m gan_lab sample --out X.pt`)")
    shape = tuple(samples.shape)
    if len(shape) == 2 and shape[1] == 2:
        if data not in MIXTURES:
            raise LabError(f"{path} holds 2-D points {shape}: say which mixture with --data {'|'.join(MIXTURES)}")
        return "mixture", samples.float()
    if data is not None:
        raise LabError(f"--data is for 2-D points; {path} holds images {shape}")
    if len(shape) != 4 or shape[1:] not in ((1, 28, 28), (3, 28, 28)):
        raise LabError(f"{path} holds a tensor of shape {shape}: expected N x 1 x 28 x 28 (MNIST), N x 3 x 28 x 28 "
                       "(Stacked MNIST) or N x 2 (points)")  # fmt: skip
    if shape[0] < 2 or float(samples.min()) < 0.0 or float(samples.max()) > 1.0:
        raise LabError(f"{path}: images must number at least 2 and lie in [0, 1] (got {shape[0]} in "
                       f"[{float(samples.min()):.3g}, {float(samples.max()):.3g}])")  # fmt: skip
    return ("mnist" if shape[1] == 1 else "stacked_mnist"), samples.float()


def score_points(points: torch.Tensor, data: str) -> dict[str, Any]:
    """The protocol's mixture scores of ``points`` (N, 2)."""
    from datamodules.mixture_stream import mixture_centres
    from lab.metrics.functional import mixture_mode_stats

    n_modes, scale, std = {"ring": (8, 1.0, 0.01), "grid": (25, 2.0, 0.05)}[data]
    stats = mixture_mode_stats(points, mixture_centres(data, n_modes, scale), std)
    return {"modes": stats["modes"], "modes_gated": stats["modes_gated"], "hq": stats["hq_percent"],
            "rkl": stats["reverse_kl"], "counts": stats["counts"], "data": data, "n": len(points)}  # fmt: skip


@torch.no_grad()
def score_stacked(images: torch.Tensor, batch_size: int = 500, device: str = "cpu") -> dict[str, Any]:
    """Modes of 1,000 and KL to uniform of stacked images (N, 3, 28, 28) in [0, 1]."""
    from lab.metrics.backbones import load_classifier
    from lab.metrics.functional import classify_stacked, stacked_mode_stats

    classifier = load_classifier(device=device).eval()
    digits = torch.cat([classify_stacked(batch.to(device), classifier).cpu() for batch in images.split(batch_size)])
    return {**stacked_mode_stats(digits), "n": len(images)}
