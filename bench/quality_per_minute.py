"""Quality per minute: the flagship recipe against three peers' recipes, each trained for the same wall time.

Runs ``experiments/quality_per_minute.yaml`` through the experiment launcher (finished runs are reused: the same
command continues a killed set), then prints, from the run records only, every recipe's IS, FID, precision and
recall after 60, 150, 300 and 600 s of training (mean and 95% interval over seeds) and the ratio of our IS to each
peer's at each budget, and draws the curves to ``results/quality_per_minute/curve.png``.

    python bench/quality_per_minute.py [--seeds 0 1 2] [--address ADDRESS]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab import stats  # noqa: E402
from lab.experiment import records as runs  # noqa: E402
from lab.experiment import spec as specs  # noqa: E402
from lab.experiment import table  # noqa: E402

BUDGETS = (60, 150, 300, 600)
SHOWN = (("is", "IS", True), ("fid", "FID", False), ("precision", "precision", True), ("recall", "recall", True))


def values(row: dict, records: list[dict], key: str) -> list[float]:
    found = [r["final"].get(key) for r in records if r["variant"] == row["variant"] and runs.finished(r)]
    return [v for v in found if v is not None and not math.isnan(v)]


def curve(exp: specs.Experiment, rows: list[dict], records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, (name, label, _) in zip(axes, SHOWN[:2], strict=True):
        for row in rows:
            points = [(b, *stats.interval(v)) for b in BUDGETS if (v := values(row, records, f"eval/{name}_{b}s"))]
            if points:
                xs, means, halves = zip(*points, strict=True)
                ax.errorbar(xs, means, yerr=[h or 0 for h in halves], marker="o", capsize=3, label=row["label"])
        ax.set_xscale("log")
        ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
        ax.minorticks_off()
        ax.set_xlabel("training wall time (s), 1 thread")
        ax.set_ylabel(label)
    axes[0].axhline(9.81, color="grey", linestyle="--", linewidth=1, label="real test digits (9.81)")
    axes[0].legend(fontsize=6)
    fig.suptitle("MNIST quality per minute (mean, 95% interval over seeds)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default: the experiment's)")
    parser.add_argument("--address", default=None, help="a Ray cluster (default: a private local instance)")
    parser.add_argument("--no-run", action="store_true", help="only read the records (print and draw)")
    parser.add_argument("--results", default="results", help="folder of the run records (results)")
    args = parser.parse_args()
    path = REPO / "experiments" / "quality_per_minute.yaml"
    if not args.no_run:
        command = [sys.executable, "-m", "lab", "experiment", "run", str(path)]
        command += ["--seeds", *map(str, args.seeds)] if args.seeds else []
        command += ["--address", args.address] if args.address else []
        command += ["--results", args.results]
        subprocess.run(command, cwd=REPO, check=True)
    exp = specs.load(path, REPO)
    results = REPO / args.results
    records = table.load(exp, results)
    rows = [row for row in table.rows(exp, records) if row["variant"] in exp.variants]
    if not rows:
        raise SystemExit("no records yet: run without --no-run")
    print(f"\n{'recipe':48s}" + "".join(f"{b:>17d} s" for b in BUDGETS))
    for name, label, _ in SHOWN:
        print(label)
        for row in rows:
            cells = []
            for b in BUDGETS:
                found = values(row, records, f"eval/{name}_{b}s")
                mean, half = stats.interval(found) if found else (math.nan, None)
                cells.append(f"{mean:9.3f} ± {half or 0:5.3f}" if found else f"{'–':>17s}")
            print(f"  {row['label'][:46]:46s} " + " ".join(f"{c:>18s}" for c in cells) + f"  (n = {row['n']})")
    ours = next(row for row in rows if row["variant"] == "flagship")
    for row in rows:
        if row is ours:
            continue
        ratios = []
        for b in BUDGETS:
            mine, theirs = values(ours, records, f"eval/is_{b}s"), values(row, records, f"eval/is_{b}s")
            ratios.append(f"{sum(mine) / len(mine) / (sum(theirs) / len(theirs)):.2f}x" if mine and theirs else "–")
        pairs = ", ".join(f"{b} s {r}" for b, r in zip(BUDGETS, ratios, strict=True))
        print(f"IS ours / {row['label'][:40]}: {pairs}")
    out = results / "quality_per_minute" / "curve.png"
    curve(exp, rows, records, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
