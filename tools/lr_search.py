"""The per-cell learning-rate search of the palindrome study (docs/rnn.md, "Learning-rate search").

The same effort for every cell: each ``cell:length`` (the first length its sweep at the default learning rate failed)
is trained at every learning rate of ``--lrs`` on the same seeds, with the sweep's settings otherwise (orthogonal
recurrent init, at most 20,000 steps, stuck after 5,000 flat steps). Each learning rate is one sweep folder,
``<root>/lr<text>/palindrome-sweep``, so finished runs are reused and a killed search continues; the default rate's
runs are read from the main sweep (``--baseline``). Prints one markdown table: per cell and length, for each learning
rate, the seeds solved (test accuracy >= 99.5%) and the median steps to 99.5% validation accuracy.

    python tools/lr_search.py                                   # rnn:75 gru:50 lstm:150, 5e-4 1e-3 5e-3, seeds 0 1
    python tools/lr_search.py --table-only                      # the table from the runs so far
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lab.errors import fail  # noqa: E402
from rnn_lab.sweep_report import RunResult, read_results  # noqa: E402

DEFAULT_LR = "2e-3"  # the sweep's default (python -m rnn_lab sweep --lr)


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
                        "--recurrent_init", "orthogonal", "--jobs", str(jobs), "--no-wandb",
                        "--root", str(root / f"lr{lr}")])  # fmt: skip


def cell_text(runs: list[RunResult], n_seeds: int) -> str:
    """``k/n solved, steps median`` for the runs of one (cell, length, lr); ``not run`` when there are none."""
    if not runs:
        return "not run"
    solved = sum(run.test_acc >= 0.995 for run in runs)
    reached = [run.steps_to_target for run in runs if run.steps_to_target is not None]
    steps = f", {statistics.median(reached):g} steps" if reached else ""
    missing = f" ({n_seeds - len(runs)} not finished)" if len(runs) < n_seeds else ""
    return f"{solved}/{n_seeds}{steps}{missing}"


def table(points: list[tuple[str, int]], lrs: list[str], seeds: list[int], root: Path, baseline: Path) -> str:
    folders = {lr: root / f"lr{lr}" / "palindrome-sweep" for lr in lrs} | {DEFAULT_LR: baseline}
    columns = sorted(folders, key=float)
    results = {lr: read_results([str(folder)]) if folder.is_dir() else [] for lr, folder in folders.items()}
    head = "| cell | length | " + " | ".join(f"Adam {lr}" + (" (sweep)" if lr == DEFAULT_LR else "") for lr in columns)
    lines = [head + " |", "|---|---:|" + "---:|" * len(columns)]
    for cell, length in points:
        row = []
        for lr in columns:
            runs = [r for r in results[lr] if (r.cell, r.recurrent_init, r.seq_len) == (cell, "orthogonal", length)]
            row.append(cell_text([r for r in runs if r.seed in seeds], len(seeds)))
        lines.append(f"| {cell} | {length} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", nargs="+", default=["rnn:75", "gru:50", "lstm:150"], help="cell:length ...")
    parser.add_argument("--lrs", nargs="+", default=["5e-4", "1e-3", "5e-3"], help="Adam learning rates to try")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--root", type=Path, default=Path("runs/lr-search"))
    parser.add_argument("--baseline", type=Path, default=Path("runs/palindrome-sweep"), help="the main sweep folder")
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
    print(table(points, opts.lrs, opts.seeds, opts.root, opts.baseline), end="")


if __name__ == "__main__":
    main()
