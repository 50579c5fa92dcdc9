"""Summary statistics shared by the report, the runners and the results builder: one ``mean ± std``."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1) of the finite values; std is None for a single value, both NaN for
    none."""
    finite = [float(v) for v in values if not math.isnan(float(v))]
    if not finite:
        return math.nan, None
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else None)


def format_mean_std(values: Sequence[float], digits: int = 2) -> str:
    """``mean ± std`` with ``digits`` decimals (``mean`` alone for one value, ``–`` for none); NaN values are left
    out and counted."""
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "–"
    text = f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"
    missing = sum(math.isnan(float(v)) for v in values)
    return text + (f" ({missing} n/a)" if missing else "")
