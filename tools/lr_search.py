"""The per-cell learning-rate search of the palindrome study (docs/rnn.md, "Learning-rate search").

The same effort for every cell: each ``cell:length`` (the first length that cell failed in the sweep at Adam 2e-3,
the rate every cell had then) is trained at every learning rate of ``--lrs`` on the same seeds, with the sweep's
settings otherwise (orthogonal recurrent init, at most 20,000 steps, stuck after 5,000 flat steps), except that a
run stops as soon as validation reaches the target (``--settle 0``: the question is whether a rate gets there). Each
rate is one sweep folder, ``<root>/lr<rate>/palindrome-sweep``, so finished runs are reused and a killed search
continues; runs at these points in the ``--also`` folders (the 2e-3 sweep) join the table. Prints one markdown
table: per cell and length, for each learning rate (read from each run's settings), the seeds that reached 99.5%
validation accuracy and their median steps to it. The rate is chosen on validation: the test split stays for the
sweep's numbers (a run stopped right at the target can score just under 99.5% on test).

    python tools/lr_search.py                 # rnn:75 gru:50 lstm:100 at 5e-4 1e-3 5e-3, seeds 0 1
    python tools/lr_search.py --table-only    # the table from the runs so far
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lab.errors import fail  # noqa: E402
from rnn_lab.sweep_report import RunResult, broken_already, read_results  # noqa: E402

POINTS = ["rnn:75", "gru:50", "lstm:100"]  # the first length each cell failed at Adam 2e-3 (the sweep's rate then)
RATES = ["5e-4", "1e-3", "5e-3"]  # besides 2e-3, read from the sweep at 2e-3


def parse_points(texts: list[str]) -> list[tuple[str, int]]:
    points = []
    for text in texts:
        cell, _, length = text.partition(":")
        if not length.isdigit() or int(length) < 2:
            fail(f"--points takes cell:length with a length >= 2, got {text!r}")
        points.append((cell, int(length)))
    return points


def run_search(points: list[tuple[str, int]], lrs: list[str], seeds: list[int], root: Path, jobs: int) -> None:
    from rnn_lab.sweep import sweep_main

    for lr in lrs:
        for cell, length in points:
            sweep_main(["--cells", cell, "--lengths", str(length), "--seeds", *map(str, seeds), "--lr", lr,
                        "--recurrent_init", "orthogonal", "--settle", "0", "--jobs", str(jobs), "--no-wandb",
                        "--root", str(root / f"lr{lr}")])  # fmt: skip


def cell_text(runs: list[RunResult], n_seeds: int) -> str:
    """``k/n, median steps`` (seeds that reached the validation target, their median steps to it) for the results of
    one (cell, length, lr); ``not run`` when there are none."""
    if not runs:
        return "not run"
    reached = [run.steps_to_target for run in runs if run.steps_to_target is not None]  # the target on validation
    solved = len(reached)
    steps = f", {statistics.median(reached):g} steps" if reached else ""
    failed_already = broken_already(len(runs) - solved, n_seeds)  # the sweep skips the rest of the seeds
    missing = f" ({n_seeds - len(runs)} not {'run: failed already' if failed_already else 'finished'})"
    missing = missing if len(runs) < n_seeds else ""
    return f"{solved}/{n_seeds}{steps}{missing}"


def table(points: list[tuple[str, int]], lrs: list[str], seeds: list[int], folders: list[Path]) -> str:
    """A column per learning rate (those asked for and any other the folders hold), a row per cell:length; the
    orthogonal-init runs of the sweep folders, each with the rate it was trained at."""
    runs = [r for r in read_results([str(f) for f in folders if f.is_dir()]) if r.recurrent_init == "orthogonal"]
    columns = sorted({float(lr) for lr in lrs} | {r.lr for r in runs})
    lines = [
        "| cell | length | " + " | ".join(f"Adam {lr:.0e}".replace("e-0", "e-") for lr in columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for cell, length in points:
        row = []
        for rate in columns:
            chosen = [r for r in runs if r.lr == rate and (r.cell, r.seq_len) == (cell, length) and r.seed in seeds]
            row.append(cell_text(chosen, len(seeds)))
        lines.append(f"| {cell} | {length} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", nargs="+", default=POINTS, help="cell:length ...")
    parser.add_argument("--lrs", nargs="+", default=RATES, help="Adam learning rates to try")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--root", type=Path, default=Path("runs/lr-search"))
    parser.add_argument("--also", type=Path, nargs="*", default=[Path("runs/ablation-lr2e-3/palindrome-sweep")],
                        help="other sweep folders whose runs at these points join the table")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--table-only", action="store_true", help="train nothing: the table from finished runs")
    opts = parser.parse_args(argv)
    points = parse_points(opts.points)
    for lr in opts.lrs:
        try:
            if float(lr) <= 0:
                raise ValueError
        except ValueError:
            fail(f"--lrs must be positive numbers, got {lr!r}")
    if not opts.table_only:
        run_search(points, opts.lrs, opts.seeds, opts.root, opts.jobs)
    folders = [opts.root / f"lr{lr}" / "palindrome-sweep" for lr in opts.lrs] + [f for f in opts.also if f.is_dir()]
    print(table(points, opts.lrs, opts.seeds, [f for f in folders if f.is_dir()]), end="")


if __name__ == "__main__":
    main()
