"""An experiment's table from its run records only: per variant the mean and 95% interval over seeds of each metric,
n, runs failed, wall time per run; the published rows with their source beside; stale rows marked."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

from lab.experiment import records
from lab.experiment.spec import Experiment, Metric
from lab.stats import finite, interval, successes, wilson

STALE = "†"


def cell(metric: Metric, values: list[Any]) -> tuple[str, list[Any]]:
    """A metric's markdown cell and CSV numbers over one variant's runs: mean ± t-interval; for ``success``: k/n
    reaching it with the Wilson interval; for ``reach``: the median step [min, max] over the runs that got there."""
    if metric.success is not None:
        k, n = successes(values, metric.success, metric.higher)
        if not n:
            return "–", [0, 0, "", ""]
        low, high = wilson(k, n)
        return f"{k}/{n} [{low:.2f}, {high:.2f}]", [k, n, low, high]
    if metric.reach is not None:
        steps = sorted(finite(values))
        if not steps:
            return f"– (0/{len(values)})", ["", "", "", 0]
        median = statistics.median(steps)
        return f"{median:.0f} [{steps[0]:.0f}, {steps[-1]:.0f}] ({len(steps)}/{len(values)})", \
            [median, steps[0], steps[-1], len(steps)]  # fmt: skip
    finals = finite(values)
    if not finals:
        return "–", ["", ""]
    mean, half = interval(finals)
    shown = f"{mean:.{metric.digits}f}" + ("" if half is None else f" ± {half:.{metric.digits}f}")
    return shown, [mean, "" if half is None else half]


CSV_COLUMNS = {"success": ("_k", "_n", "_wilson_low", "_wilson_high"), "reach": ("_median", "_min", "_max", "_reached"),
               "mean": ("_mean", "_ci95")}  # fmt: skip


def kind(metric: Metric) -> str:
    return "success" if metric.success is not None else "reach" if metric.reach is not None else "mean"


def load(exp: Experiment, results: Path, instance: str | None = None) -> list[dict[str, Any]]:
    """The records of the experiment's variants under ``results/<instance>/`` (the latest variants and seeds of the
    YAML only), in variant order then seed."""
    folder = results / (instance or exp.name)
    found = [r for r in (records.read(p) for p in sorted(folder.glob("*.json"))) if r and r.get("variant")]
    order = {name: i for i, name in enumerate(exp.variants)}
    found = [r for r in found if r["variant"] in order]
    return sorted(found, key=lambda r: (order[r["variant"]], r["seed"]))


def rows(exp: Experiment, found: list[dict[str, Any]], folder: Path | None = None,
         references: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """One dict per variant: label, n, failed, stale, per metric the finished values, seconds per run; then, with
    ``references``, the baseline rows (kept in ``folder``/baselines.json, when given, while their function and
    arguments stay the same)."""
    out = []
    for variant in exp.variants:
        mine = [r for r in found if r["variant"] == variant]
        if not mine:
            continue
        done = [r for r in mine if records.finished(r)]
        out.append({
            "variant": variant, "label": exp.label(variant), "n": len(done), "failed": len(mine) - len(done),
            "stale": any(records.is_stale(r) for r in done), "seeds": [r["seed"] for r in done],
            "values": {m.slot: [m.of(r) for r in done] for m in exp.metrics},
            "seconds": statistics.fmean(r["seconds"] for r in done) if done else math.nan,
            "finals": [r["final"] for r in done],  # every final value, for an experiment's own figure
        })  # fmt: skip
    for key in reversed(exp.rank):  # best first by the first rank key, ties by the next
        metric = next(m for m in exp.metrics if m.key == key)
        out.sort(key=lambda row: _order(row["values"][metric.slot], metric.higher))
    return out + (baseline_rows(exp, folder) if references else [])


def _order(values: list[Any], higher: bool) -> float:
    """Sort key of a row by one metric: its mean, best first; rows without a value last."""
    kept = finite(values)
    return (-1 if higher else 1) * statistics.fmean(kept) if kept else math.inf


def baseline_rows(exp: Experiment, folder: Path | None = None) -> list[dict[str, Any]]:
    """The reference rows that ``baselines: {function, args}`` computes for the experiment's seeds (real samples,
    trivial generators), scored by the same code as the runs; shown in italics below the variants. With ``folder``,
    the rows are kept in its ``baselines.json`` under a key of the function, its source file, arguments and seeds."""
    if not exp.baselines:
        return []
    import hashlib
    import inspect

    function = named(exp.baselines)
    source = Path(inspect.getsourcefile(function)).read_bytes()
    key = hashlib.sha256(json.dumps([exp.baselines, exp.seeds], sort_keys=True).encode() + source).hexdigest()[:12]
    saved = records.read(folder / "baselines.json") if folder else None
    if saved and saved.get("key") == key:
        made = saved["rows"]
    else:
        made = function(seeds=exp.seeds, **exp.baselines.get("args", {}))
        if folder:
            records.write(folder / "baselines.json", {"key": key, "rows": made})
    return [{"variant": "baseline", "label": f"*{row['label']}*", "n": len(row["runs"]), "failed": 0, "stale": False,
             "seeds": exp.seeds, "seconds": math.nan,
             "values": {m.slot: [None if m.reach is not None else run.get(m.key, math.nan) for run in row["runs"]]
                        for m in exp.metrics}}
            for row in made]  # fmt: skip


def named(hook: dict[str, Any]) -> Any:
    """The function a ``{function: module.name, args}`` field names."""
    import importlib

    module, _, name = hook["function"].rpartition(".")
    return getattr(importlib.import_module(module), name)


def markdown(exp: Experiment, table: list[dict[str, Any]], overrides: list[str] = ()) -> str:
    heads = " | ".join(m.label for m in exp.metrics)
    budget = exp.budget + (f", overridden: {' '.join(overrides)}" if overrides else "")
    lines = [f"| {exp.name}: {budget} | n | {heads} | s / run |", "|---" * (len(exp.metrics) + 3) + "|"]
    for row in table:
        cells = " | ".join(cell(m, row["values"][m.slot])[0] for m in exp.metrics)
        label = row["label"] + (f" {STALE}" if row["stale"] else "")
        n = f"{row['n']}" + (f" ({row['failed']} failed)" if row["failed"] else "")
        seconds = "" if math.isnan(row["seconds"]) else f"{row['seconds']:.0f}"
        lines.append(f"| {label} | {n} | {cells} | {seconds} |")
    for pub in exp.published:
        cells = " | ".join(_published(pub.get("values", {}).get(m.key)) for m in exp.metrics)
        lines.append(f"| *{pub['label']}* ({pub['source']}) | {pub.get('n', '')} | {cells} | |")
    notes = [
        "Mean ± half-width of the 95% Student-t interval over n seeds; *italic* rows are references: baselines"
        " scored by the same code on as many seeds, then published figures."
    ]
    if any(row["stale"] for row in table):
        notes.append(f"{STALE}: made by other code than the current one (`--rerun-stale` runs them again).")
    after = named(exp.analysis)(exp, table, **exp.analysis.get("args", {})) if exp.analysis else ""
    return "\n".join(lines) + "\n\n" + " ".join(notes) + "\n" + (f"\n{after}" if after else "")


def _published(value: Any) -> str:
    if value is None:
        return "—"
    return f"*{value}*"


def csv_text(exp: Experiment, table: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    columns = [f"{m.key}{suffix}" for m in exp.metrics for suffix in CSV_COLUMNS[kind(m)]]
    writer.writerow(["variant", "label", "n", "failed", "stale", *columns, "seconds_per_run"])
    for row in table:
        numbers = [x for m in exp.metrics for x in cell(m, row["values"][m.slot])[1]]
        writer.writerow([row["variant"], row["label"], row["n"], row["failed"], row["stale"], *numbers,
                         row["seconds"]])  # fmt: skip
    for pub in exp.published:
        values = pub.get("values", {})
        numbers = [x for m in exp.metrics for x in [values.get(m.key, "")] + [""] * (len(CSV_COLUMNS[kind(m)]) - 1)]
        writer.writerow(["published", f"{pub['label']} ({pub['source']})", pub.get("n", ""), "", "", *numbers, ""])
    return out.getvalue()


def build(exp: Experiment, results: Path, instance: str | None = None, overrides: list[str] = ()) -> tuple[str, Path]:
    """Writes ``results/<instance>/table.md``, ``table.csv`` and ``<name>.png``; returns the markdown and folder."""
    instance = instance or exp.name
    folder = results / instance
    table = rows(exp, load(exp, results, instance), folder)
    text = markdown(exp, table, list(overrides))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "table.md").write_text(text)
    (folder / "table.csv").write_text(csv_text(exp, table))
    if table:
        from lab.report.figures import experiment_figure

        experiment_figure(exp, table, folder / f"{exp.name}.png")
    return text, folder
