"""An experiment's figure from its table rows (``lab.experiment.table.rows``): a dot per seed with the mean and its
95% interval per variant, or, with a ``figure`` spec, the key metric against a variable with a line per axis value."""

from __future__ import annotations

import statistics
import textwrap
from pathlib import Path
from typing import Any

from lab.experiment.spec import Experiment, Metric
from lab.stats import finite, interval, successes, wilson


def curve_points(exp: Experiment, table: list[dict[str, Any]], metric: Metric) -> dict[tuple[str, str], list]:
    """(panel, line) -> [(x, y, low, high)]: success metrics as the rate with its Wilson interval, ``reach`` metrics
    as the median step with the [min, max] of the runs that reached it, others as the mean with its t interval."""
    x_var, line_axes, panel_axis = exp.figure["x"], exp.figure.get("lines", []), exp.figure.get("panels")
    lines: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    for row in (row for row in table if row["variant"] in exp.variants):  # baselines have no x
        variant = exp.variants[row["variant"]]
        names = variant.get("axis_labels") or variant["axes"]
        label = (names[panel_axis] if panel_axis else "", ", ".join(names[a] for a in line_axes))
        values = finite(row["values"][metric.slot])
        x = float(variant["vars"][x_var])
        if not values:
            continue
        if metric.success is not None:
            k, n = successes(values, metric.success, metric.higher)
            low, high = wilson(k, n)
            point = (x, k / n, low, high)
        elif metric.reach is not None:
            point = (x, statistics.median(values), min(values), max(values))
        else:
            mean, half = interval(values)
            point = (x, mean, mean - (half or 0), mean + (half or 0))
        lines.setdefault(label, []).append(point)
    return lines


def curve_figure(exp: Experiment, table: list[dict[str, Any]], path: Path) -> None:
    """With ``figure: {x: <var>, panels: <axis>, lines: [<axis>, ...], metrics: [<key>, ...]}``: each metric (the key
    metric when none are named) against the variable ``x`` (log scale), a row of panels per metric, a panel per
    ``panels`` value, a line per combination of the ``lines`` axes (``curve_points``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    keys = exp.figure.get("metrics") or [exp.key_metric]
    metrics = [next(m for m in exp.metrics if m.key == key) for key in keys]
    found = [curve_points(exp, table, metric) for metric in metrics]
    panels = list(dict.fromkeys(panel for lines in found for panel, _ in lines))
    if not panels:
        return
    fig, axes = plt.subplots(len(metrics), len(panels), figsize=(3.6 * len(panels) + 1, 3.4 * len(metrics)),
                             sharex=True, sharey="row", squeeze=False)  # fmt: skip
    # one colour per line across the panels, and the x values the experiment defines as ticks, run yet or not
    colours = {label: f"C{i}" for i, label in enumerate(sorted({label for lines in found for _, label in lines}))}
    ticks = sorted({float(v["vars"][exp.figure["x"]]) for v in exp.variants.values()})
    for r, (metric, lines) in enumerate(zip(metrics, found, strict=True)):
        for i, ((panel, label), points) in enumerate(sorted(lines.items())):
            ax = axes[r][panels.index(panel)]
            points.sort()
            xs, ys, lows, highs = (list(column) for column in zip(*points, strict=True))
            shift = [x * (1 + 0.03 * (i - len(lines) / 2)) for x in xs]  # keep the interval bars apart
            ax.errorbar(shift, ys, yerr=[[y - lo for y, lo in zip(ys, lows, strict=True)],
                                          [hi - y for y, hi in zip(ys, highs, strict=True)]],
                        marker="o", capsize=3, label=label, color=colours[label])  # fmt: skip
        kind = "Wilson 95%" if metric.success is not None else "median, [min, max]" if metric.reach is not None \
            else "95% t"  # fmt: skip
        for panel, ax in zip(panels, axes[r], strict=True):
            ax.set_xscale("log")
            ax.set_xticks(ticks, [f"{t:,g}" for t in ticks], fontsize=8)
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlim(ticks[0] / 1.3, ticks[-1] * 1.3)
            if r == len(metrics) - 1:
                ax.set_xlabel(exp.figure["x"])
            ax.set_title(f"{panel} ({kind})", fontsize=9)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        name = f"seeds solved ({metric.key} >= {metric.success})" if metric.success is not None else metric.label
        axes[r][0].set_ylabel(textwrap.fill(name, 30), fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def experiment_figure(exp: Experiment, table: list[dict[str, Any]], path: Path) -> None:
    """The key metric per variant: every seed as a dot, the mean and its 95% interval as a bar (or, for an
    experiment with a ``figure`` spec, ``curve_figure``, or the function it names)."""
    if exp.figure.get("function"):  # the experiment's own figure: {function: module.name, args}
        from lab.experiment.table import named

        named(exp.figure)(exp, table, path, **exp.figure.get("args", {}))
        return
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
        values = finite(row["values"][metric.slot])
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
