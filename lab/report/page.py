"""``python -m gan_lab report`` [RUN_DIR ...] [--root DIR] [--out DIR] [--metrics KEY ...]``: one page comparing runs.

Reads only local files (no network, no W&B): each run's ``metrics.csv`` (CSVLogger), ``config.yaml`` (written by the
CLI) and PNGs, and writes ``report.md`` with PNG plots beside it:

- one plot per metric with the curves of every run (FID/IS when logged, else the ``val/`` metrics, else train losses);
- a table of final metrics, one row per run, and a table of mean ± std over seeds: runs are grouped by their name
  minus the ``-s<seed>`` suffix (``wgan-default-s0`` and ``wgan-default-s1`` form ``wgan-default``);
- the latest sample grid of each run side by side (``samples.png``) and links to the other latest images;
- folders that hold their own figures (the palindrome sweep, the gradient-flow plot) with their PNGs and markdown.

The building blocks (``load_runs``, ``choose_metrics``, ``plot_curves``, ``final_rows``, ``seed_rows``,
``markdown_table``, ``compose_samples``) take runs and return tables or plots, so other pages (RESULTS.md) reuse them.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.errors import LabError, fail
from lab.report.runs import FID_IS, MARKER, SEED_KEYS, FigureFolder, Report, Run, _version_number, load_runs
from lab.stats import mean_std


def choose_metrics(runs: Sequence[Run], requested: Sequence[str] | None = None) -> list[str]:
    """The metrics to plot: ``requested``, else FID/IS when logged, else every ``val/`` metric, else train losses."""
    available = sorted({key for run in runs for key in run.metric_keys()})
    if requested:
        unknown = [key for key in requested if key not in available]
        if unknown:
            raise LabError(f"metric {', '.join(unknown)} was not logged by these runs; logged: {', '.join(available)}")
        return list(requested)
    headline = [key for key in FID_IS if key in available]
    if headline:
        return headline
    validation = [key for key in available if key.startswith("val/") and not key.endswith("_std")]
    if validation:
        return validation
    losses = [key for key in available if key.startswith("train/") and "loss" in key]
    return losses or [key for key in available if key.startswith("train/")] or available


def table_metrics(runs: Sequence[Run], plotted: Sequence[str]) -> list[str]:
    """Table columns: the plotted metrics, then (if those are ``val/`` ones) the other ``val/`` metrics, then every
    ``eval/`` metric that ``evaluate`` added to a run (``--samples`` and checkpoints alike)."""
    available = sorted({key for run in runs for key in run.metric_keys()})
    extra = [k for k in available if k.startswith("val/") and not k.endswith("_std") and k not in plotted]
    evaluated = [k for k in available if k.startswith("eval/") and not k.endswith("_std") and k not in plotted]
    return list(plotted) + (extra if any(key.startswith("val/") for key in plotted) else []) + evaluated


def _slug(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_")


def plot_curves(runs: Sequence[Run], key: str, path: Path) -> list[str]:
    """Draws ``key`` of every run on one plot (a colour per group, a line style per seed); returns the labels drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(run.group for run in runs))
    styles = ["-", "--", ":", "-."]
    seen_in_group: dict[str, int] = {}
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=110)
    # One x-axis for all runs: epochs only if every run logged the metric once per epoch.
    by_epoch = all(run.per_epoch(key) for run in runs if run.final(key) is not None)
    for run in runs:
        x, y, _ = run.series(key, by_epoch)
        if not y:
            continue
        index = seen_in_group.get(run.group, 0)
        seen_in_group[run.group] = index + 1
        color = plt.get_cmap("tab10")(groups.index(run.group) % 10)
        marker = "o" if len(y) <= 30 else None
        ax.plot(x, y, styles[index % 4], color=color, marker=marker, markersize=3, linewidth=1.4, label=run.name)
    labels = [str(line.get_label()) for line in ax.get_lines()]
    ax.set_title(key)
    ax.set_xlabel("epochs completed" if by_epoch else "step (training batches)")
    if by_epoch:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    if labels:
        outside = len(labels) > 6
        ax.legend(fontsize=8, loc="upper left" if outside else "best", bbox_to_anchor=(1.01, 1.0) if outside else None)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return labels


def format_number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}"


def final_rows(runs: Sequence[Run], keys: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the final-metrics table: one row per run."""
    header = ["run", "seed", "epochs", "steps", *keys]
    rows = []
    for run in runs:
        epoch, step = run.last("epoch"), run.last("step")
        rows.append(
            [
                run.name,
                "–" if run.seed is None else str(run.seed),
                "–" if epoch is None else str(epoch + 1),
                "–" if step is None else str(step + 1),
                *(format_number(run.final(key)) for key in keys),
            ]
        )
    return header, rows


def group_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs by group (name minus ``-s<seed>``), in order of first appearance."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    return groups


def seed_rows(runs: Sequence[Run], keys: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the seed table: per group, n seeds and each final metric as ``mean ± std``."""
    header = ["group", "seeds", *keys]
    rows = []
    for group, members in group_runs(runs).items():
        seeds = ", ".join("?" if run.seed is None else str(run.seed) for run in members)
        cells = []
        for key in keys:
            values = [v for v in (run.final(key) for run in members) if v is not None]
            if not values:
                cells.append("–")
                continue
            mean, std = mean_std(values)
            cells.append(format_number(mean) if std is None else f"{format_number(mean)} ± {std:.2g}")
            if len(values) < len(members):
                cells[-1] += f" (n={len(values)})"
        rows.append([group, f"{len(members)} ({seeds})", *cells])
    return header, rows


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): tree}


def config_differences(members: Sequence[Run]) -> list[str]:
    """Config keys (other than the seed) whose values differ between the runs of one group."""
    flats = [_flatten(run.config) for run in members if run.config]
    keys = sorted({key for flat in flats for key in flat} - set(SEED_KEYS))
    return [key for key in keys if len({repr(flat.get(key)) for flat in flats}) > 1]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table (``|`` in cells escaped)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in rows)])


def compose_samples(runs: Sequence[Run], path: Path, columns: int = 4) -> list[str]:
    """The latest sample grid of each run side by side in one PNG, titled by run; returns the runs shown."""
    grids = [(run.name, grid) for run in runs if (grid := run.sample_grid()) is not None]
    if not grids:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    cols = min(columns, len(grids))
    rows = math.ceil(len(grids) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.5 * rows), dpi=110, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, grid) in zip(axes.flat, grids, strict=False):
        image = mpimg.imread(grid)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
        ax.set_title(f"{name}\n{grid.stem}", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return [name for name, _ in grids]


def _link(target: Path, out: Path) -> str:
    relative = os.path.relpath(target.resolve(), out.resolve())
    return f"<{relative}>" if " " in relative else relative


def _figure_section(folder: FigureFolder, out: Path) -> list[str]:
    lines = [f"## {folder.path.name}", "", f"From `{folder.path}`.", ""]
    for page in folder.markdown:
        text = page.read_text(errors="replace").strip()
        # Nested under this section: the folder's own headings go one level down.
        lines += [re.sub(r"^(#+) ", r"#\1 ", text, flags=re.MULTILINE), ""]
    lines += [f"![{png.stem}]({_link(png, out)})\n" for png in folder.pngs]
    if folder.csvs:
        lines += ["Data: " + ", ".join(f"[{csv_path.name}]({_link(csv_path, out)})" for csv_path in folder.csvs), ""]
    return lines


def write_report(
    paths: Sequence[str | os.PathLike], out: str | os.PathLike, metrics: Sequence[str] | None = None
) -> Report:
    """Writes ``<out>/report.md`` and its PNGs for the runs found in ``paths``; returns what was written."""
    runs, figures = load_runs(paths)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [MARKER, "# Run report", ""]
    sources = ", ".join(f"`{p}`" for p in paths)
    lines += [f"{len(runs)} run(s) and {len(figures)} figure folder(s) from {sources}.", ""]
    plots: dict[str, Path] = {}
    labels: dict[str, list[str]] = {}
    samples = None
    if runs:
        keys = choose_metrics(runs, metrics)
        lines += ["## Curves", ""]
        for key in keys:
            plots[key] = out_dir / f"curves_{_slug(key)}.png"
            labels[key] = plot_curves(runs, key, plots[key])
            lines += [f"![{key}]({plots[key].name})", ""]
        columns = table_metrics(runs, keys)
        lines += ["## Final metrics", "", "Last logged value of each metric.", ""]
        lines += [markdown_table(*final_rows(runs, columns)), ""]
        lines += ["## Mean ± std over seeds", ""]
        lines += ["Runs are grouped by name minus the `-s<seed>` suffix; std is the sample std (n - 1).", ""]
        lines += [markdown_table(*seed_rows(runs, columns)), ""]
        for group, members in group_runs(runs).items():
            differing = config_differences(members) if len(members) > 1 else []
            if differing:
                lines += [f"Note: the runs of `{group}` differ in more than the seed: {', '.join(differing)}.", ""]
        samples = out_dir / "samples.png"
        shown = compose_samples(runs, samples)
        if shown:
            lines += ["## Samples", "", "The latest sample grid of each run.", "", "![samples](samples.png)", ""]
        else:
            samples = None
        image_lines = []
        for run in runs:
            latest = run.latest_images()
            if latest:
                links = ", ".join(f"[{kind}]({_link(png, out_dir)})" for kind, png in latest.items())
                image_lines.append(f"- `{run.name}`: {links}")
        if image_lines:
            lines += ["## Latest images", "", *image_lines, ""]
        lines += ["## Runs", "", *(f"- `{run.name}`: `{run.path}`" for run in runs), ""]
    for folder in figures:
        lines += _figure_section(folder, out_dir)
    page = out_dir / "report.md"
    page.write_text("\n".join(lines).rstrip() + "\n")
    return Report(page, runs, plots, labels, samples, figures)


def default_out(paths: Sequence[str | os.PathLike], root: str | None) -> Path:
    """``<root>/report`` for a root; for run folders, ``report`` in the folder that holds them (their common parent)."""
    if root is not None:
        return Path(root) / "report"
    holders = []
    for raw in paths:
        path = Path(raw).resolve()
        if (path / "metrics.csv").is_file():  # a version folder: its run folder's parent holds the runs
            holders.append(path.parent.parent if _version_number(path) >= 0 else path.parent)
        elif any((v / "metrics.csv").is_file() for v in path.glob("version_*")):  # a run folder
            holders.append(path.parent)
        else:  # a root of runs
            holders.append(path)
    out = Path(os.path.commonpath(holders)) / "report"
    relative = Path(os.path.relpath(out))
    return out if relative.parts[:1] == ("..",) else relative


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        fail(f"{message} (see python -m gan_lab report --help)")


def build_parser() -> argparse.ArgumentParser:
    description = "One page (report.md + PNGs) comparing runs, from their local CSV logs, configs and images."
    parser = _Parser(prog="python -m gan_lab report", description=description)
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run folders (runs/wgan-default-s0) or roots")
    parser.add_argument("--root", metavar="DIR", help="a folder that holds run folders (default runs/ if no RUN_DIR)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default <root>/report or report/ beside the runs)")
    parser.add_argument("--metrics", nargs="+", metavar="KEY", help="metric keys to plot (default FID/IS, val/, loss)")
    return parser


def main(args: list[str]) -> None:
    ns = build_parser().parse_args(args)
    root = ns.root if ns.root is not None or ns.runs else "runs"
    paths = [*ns.runs, *([root] if root is not None else [])]
    try:
        out = Path(ns.out) if ns.out else default_out(ns.runs, root)
        report = write_report(paths, out, ns.metrics)
    except LabError as err:
        fail(str(err))
        return
    counts = f"{len(report.runs)} runs, {len(report.plots)} plots, {len(report.figures)} figure folders"
    print(f"wrote {report.page} ({counts})")
