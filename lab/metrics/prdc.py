"""Precision, recall, density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
Generative Models"), a pure function on feature tensors.

With ``B(x, X, k)`` the ball around ``x`` whose radius is the distance to its k-th nearest neighbour in ``X``
(``x`` itself excluded), real features ``R`` (N of them) and generated features ``F`` (M of them):

- precision = ``1/M sum_j [F_j in some B(R_i, R, k)]``: generated samples that land on the real manifold (fidelity);
- recall    = ``1/N sum_i [R_i in some B(F_j, F, k)]``: real samples that land on the generated manifold (diversity);
- density   = ``1/(kM) sum_j sum_i [F_j in B(R_i, R, k)]``: how many real balls hold a generated sample, on average
  (1 when both sets come from one distribution; above 1 when samples crowd where real data is dense);
- coverage  = ``1/N sum_i [some F_j in B(R_i, R, k)]``: real samples with a generated sample in their ball.

"In" is strict (``distance < radius``), as in the authors' ``prdc`` package, which ``tests/test_prdc.py`` checks
this against. Distances are Euclidean, computed in float64 in row chunks, so 10,000 x 10,000 sets need
``chunk_size`` x 10,000 doubles at a time (80 MB for 1,000 rows), never the full matrix.
"""

from __future__ import annotations

import torch
from torch import Tensor


def knn_radii(features: Tensor, k: int, chunk_size: int = 1000) -> Tensor:
    """Distance (N,) from each row of ``features`` (N, D) to its k-th nearest other row."""
    # the (k + 1)-th smallest distance of a row: the smallest is the row itself (0)
    return torch.cat([torch.cdist(rows, features).kthvalue(k + 1, dim=1).values for rows in features.split(chunk_size)])


def prdc(real_features: Tensor, fake_features: Tensor, k: int = 5, chunk_size: int = 1000) -> dict[str, float]:
    """Precision, recall, density and coverage of generated features against real ones (module docstring).

    Args:
        real_features: (N, D) features of real images, N > k.
        fake_features: (M, D) features of generated images (same backbone), M > k.
        k: the neighbour that sets each ball's radius (the paper's and its package's default: 5).
        chunk_size: rows of distances computed at once (memory: ``chunk_size`` x max(N, M) doubles).

    Returns:
        ``{"precision", "recall", "density", "coverage"}`` as floats.
    """
    if real_features.dim() != 2 or fake_features.dim() != 2 or real_features.shape[1] != fake_features.shape[1]:
        raise ValueError(
            f"features must be (N, D) and (M, D), got {tuple(real_features.shape)} and {tuple(fake_features.shape)}"
        )
    if k < 1 or min(len(real_features), len(fake_features)) <= k:
        raise ValueError(f"k must be >= 1 and below both set sizes, got k={k} for {len(real_features)} real "
                         f"and {len(fake_features)} generated")  # fmt: skip
    real = real_features.detach().double()
    fake = fake_features.detach().to(real)
    real_radii = knn_radii(real, k, chunk_size)  # (N,)
    fake_radii = knn_radii(fake, k, chunk_size)  # (M,)
    balls_holding = torch.zeros(len(fake), dtype=torch.long, device=real.device)  # (M,) real balls around each fake
    recalled = covered = 0
    for rows, radii in zip(real.split(chunk_size), real_radii.split(chunk_size), strict=True):
        distance = torch.cdist(rows, fake)  # (chunk, M)
        inside = distance < radii[:, None]  # fake j in the ball of real i
        balls_holding += inside.sum(dim=0)
        covered += int(inside.any(dim=1).sum())
        recalled += int((distance < fake_radii[None, :]).any(dim=1).sum())
    return {
        "precision": float((balls_holding > 0).double().mean()),
        "recall": recalled / len(real),
        "density": float(balls_holding.sum()) / (k * len(fake)),
        "coverage": covered / len(real),
    }
