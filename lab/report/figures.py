"""An experiment's figure from its table rows (``lab.experiment.table.rows``): a dot per seed with the mean and its
95% interval per variant, or, with a ``figure`` spec, the key metric against a variable with a line per axis value."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from lab.experiment.spec import Experiment
from lab.experiment.table import interval, wilson


def curve_figure(exp: Experiment, table: list[dict[str, Any]], path: Path) -> None:
    """With ``figure: {x: <var>, lines: [<axis>, ...]}``: the key metric against the variable ``x`` (log scale), a
    line per combination of the ``lines`` axes; success metrics as the rate with its Wilson interval, others as the
    mean with its t interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = next(m for m in exp.metrics if m.key == exp.key_metric)
    x_var, line_axes, panel_axis = exp.figure["x"], exp.figure.get("lines", []), exp.figure.get("panels")
    lines: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    for row in (row for row in table if row["variant"] in exp.variants):  # baselines have no x
        variant = exp.variants[row["variant"]]
        label = (variant["axes"][panel_axis] if panel_axis else "", ", ".join(variant["axes"][a] for a in line_axes))
        values = [v for v in row["values"][metric.key] if v is not None and not math.isnan(v)]
        if not values:
            continue
        if metric.success is not None:
            k = sum(v >= metric.success if metric.higher else v <= metric.success for v in values)
            low, high = wilson(k, len(values))
            point = (float(variant["vars"][x_var]), k / len(values), low, high)
        else:
            mean, half = interval(values)
            point = (float(variant["vars"][x_var]), mean, mean - (half or 0), mean + (half or 0))
        lines.setdefault(label, []).append(point)
    panels = list(dict.fromkeys(panel for panel, _ in lines))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 1, 3.4), sharey=True, squeeze=False)
    for i, ((panel, label), points) in enumerate(sorted(lines.items())):
        ax = axes[0][panels.index(panel)]
        points.sort()
        xs, ys, lows, highs = (list(column) for column in zip(*points, strict=True))
        shift = [x * (1 + 0.03 * (i - len(lines) / 2)) for x in xs]  # keep the interval bars apart
        ax.errorbar(shift, ys, yerr=[[y - lo for y, lo in zip(ys, lows, strict=True)],
                                      [hi - y for y, hi in zip(ys, highs, strict=True)]],
                    marker="o", capsize=3, label=label)  # fmt: skip
    for panel, ax in zip(panels, axes[0], strict=True):
        ax.set_xscale("log")
        ax.set_xlabel(x_var)
        ax.set_title(f"{panel} (95% {'Wilson' if metric.success is not None else 't'} intervals)", fontsize=9)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(metric.label if metric.success is None else f"success ({metric.key} >= {metric.success})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def experiment_figure(exp: Experiment, table: list[dict[str, Any]], path: Path) -> None:
    """The key metric per variant: every seed as a dot, the mean and its 95% interval as a bar (or, for an
    experiment with a ``figure`` spec, ``curve_figure``)."""
    if exp.figure:
        curve_figure(exp, table, path)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = next(m for m in exp.metrics if m.key == exp.key_metric)
    if metric.reach is not None:
        return  # steps to a target: the table's median says it; no dot plot of missing values
    fig, ax = plt.subplots(figsize=(max(4.5, 1.5 * len(table) + 1.5), 3.6))
    for i, row in enumerate(table):
        values = [v for v in row["values"][metric.key] if v is not None and not math.isnan(v)]
        if not values:
            continue
        mean, half = interval(values)
        ax.errorbar([i], [mean], yerr=[[half or 0]], fmt="o", color="C0", capsize=4)
        ax.scatter([i + 0.15] * len(values), values, s=10, color="C1", alpha=0.7)
    ax.set_xticks(range(len(table)), [textwrap.fill(row["label"].strip("*"), 18) for row in table], fontsize=8)
    ax.set_ylabel(metric.label)
    ax.set_title(f"{exp.name}: {metric.label}\n(mean, 95% interval; dots: seeds)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
