"""Summary statistics shared by the report, the experiment tables and their analyses: the values a run logged, mean
± std, the mean's 95% Student-t interval, success counts and their Wilson interval."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any


def finite(values: Sequence[Any]) -> list[float]:
    """The values that a run logged: missing (None) and NaN ones left out."""
    return [float(v) for v in values if v is not None and not math.isnan(v)]


def interval(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% Student-t interval (None for fewer than 2 values)."""
    from scipy.stats import t

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    return mean, float(t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The Wilson score 95% interval of a success rate (scipy's binomtest)."""
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def successes(values: Sequence[Any], level: float, higher: bool = True) -> tuple[int, int]:
    """(values reaching ``level``: >= it when ``higher``, else <=, values logged): missing and NaN ones left out."""
    kept = finite(values)
    return sum((v >= level) if higher else (v <= level) for v in kept), len(kept)


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1) of the finite values; std is None for a single value, both NaN for
    none."""
    kept = finite(values)
    if not kept:
        return math.nan, None
    return statistics.fmean(kept), (statistics.stdev(kept) if len(kept) > 1 else None)


def format_mean_std(values: Sequence[float], digits: int = 2) -> str:
    """``mean ± std`` with ``digits`` decimals (``mean`` alone for one value, ``–`` for none); NaN values are left
    out and counted."""
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "–"
    text = f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"
    missing = sum(math.isnan(float(v)) for v in values)
    return text + (f" ({missing} n/a)" if missing else "")
