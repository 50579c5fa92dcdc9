"""The palindrome sweep's report (``python -m rnn_lab sweep`` writes it; ``--report CSV...`` redraws it).

Definitions, written into results.md as well:

- **test accuracy**: accuracy of a run's final model (when early stopping or the step cap ended it) on the held-out
  test palindromes, never seen in training or validation; mean ± std over seeds.
- **solved**: a run whose test accuracy is >= the target; a (cell, init, length) shows ``k/n``, k of its n seeds solved.
- **steps to target**: the first validation step at which validation accuracy was >= the target (a multiple of
  ``--val_every``); median and [min, max] over the seeds that got there.
- **breaking length** of a (cell, init): the longest length L that at least ``ceil(0.8 n)`` of the n seeds solve
  (4 of 5); a shorter length that fails is named beside it, as is "none" when no length is solved. The adaptive sweep
  trains no length above the first one that breaks: those rows say "not run".
- **ended**: how many runs stopped at the target, as stuck (no gain of a point for ``--patience`` steps), at the cap.

``n`` is the number of seeds in the results: a run that failed or is missing counts as not solved.
"""

from __future__ import annotations

import csv
import json
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.stats import format_mean_std
from rnn_lab.cells import CELLS, RECURRENT_INITS


@dataclass
class RunResult:
    cell: str
    recurrent_init: str
    seq_len: int
    seed: int
    test_acc: float  # the final model on the test split: the sweep's number
    best_val_acc: float
    final_val_acc: float
    steps: int
    steps_to_target: int | None  # first validation step with val acc >= target
    max_steps: int | None  # the step cap of the run (None: read from a CSV without it)
    seconds: float
    ended: str = ""  # what ended the run: target, plateau (stuck: no gain for --patience steps) or cap
    lr: float | None = None  # the Adam learning rate (None: read from a CSV without it)


def run_result(result: dict[str, Any], config: dict[str, Any]) -> RunResult:
    """A finished run's RunResult from its result and its settings (the runner's config): the learning rate is read
    from the settings, its one source, for the report, the CSV and the learning-rate search alike."""
    return RunResult(**{**result, "lr": float(config["lr"])})


def seeds_needed(n_seeds: int) -> int:
    """Seeds that must solve a length for it to count in the breaking length: ceil(0.8 n), 4 of 5."""
    return -(-4 * n_seeds // 5)


def broken_already(failed: int, n_seeds: int) -> bool:
    """True once ``failed`` seeds of a length's ``n_seeds`` leave fewer than ``seeds_needed`` able to solve it: the
    length breaks whatever the other seeds do (the sweep skips them)."""
    return failed > n_seeds - seeds_needed(n_seeds)


def _groups(results: list[RunResult]) -> list[tuple[str, str]]:
    """(cell, init) pairs present, in the order of CELLS and RECURRENT_INITS (unknown names last)."""
    order = {name: i for i, name in enumerate((*CELLS, *RECURRENT_INITS))}
    pairs = {(r.cell, r.recurrent_init) for r in results}
    return sorted(pairs, key=lambda p: (order.get(p[0], 99), p[0], order.get(p[1], 99), p[1]))


def _solved(run: RunResult, target: float) -> bool:
    return not math.isnan(run.test_acc) and run.test_acc >= target


def _steps_text(runs: list[RunResult], n_seeds: int) -> str:
    reached = sorted(r.steps_to_target for r in runs if r.steps_to_target is not None)
    if not reached:
        return f"never (0/{n_seeds})"
    return f"{statistics.median(reached):g} [{reached[0]}, {reached[-1]}] ({len(reached)}/{n_seeds})"


def breaking_length(solved_by_length: dict[int, int], needed: int) -> tuple[int | None, str]:
    """The longest length with at least ``needed`` solving seeds, and a note: shorter lengths that failed, or that
    the longest tested length was solved (no break seen)."""
    lengths = sorted(solved_by_length)
    passed = [length for length in lengths if solved_by_length[length] >= needed]
    if not passed:
        return None, f"none: already {lengths[0]} fails" if lengths else "none"
    best = passed[-1]
    notes = []
    failed_below = [length for length in lengths if length < best and length not in passed]
    if failed_below:
        notes.append("shorter lengths failed: " + ", ".join(map(str, failed_below)))
    above = [length for length in lengths if length > best]
    notes.append(f"{above[0]} fails" if above else "the longest tested: no break seen")
    return best, "; ".join(notes)


def summarise(
    results: list[RunResult], target: float, lengths: list[int] | None = None, n_seeds: int | None = None
) -> tuple[str, str]:
    """Markdown tables: per (cell, init, length), and the breaking length per (cell, init); ``lengths`` (default:
    those in the results) may name lengths the adaptive sweep never reached, ``n_seeds`` (default: the seeds in the
    results) seeds it never ran at a length whose break was decided early."""
    lengths = sorted({r.seq_len for r in results} | set(lengths or []))
    n_seeds = max(n_seeds or 0, len({r.seed for r in results}))
    needed = seeds_needed(n_seeds)
    per_length = [
        f"| cell | init | length | test accuracy | solved (test >= {100 * target:g}%) | steps to {100 * target:g}% "
        "(val): median [min, max] (reached) | ended: target / stuck / cap |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    breaking = [
        f"| cell | init | breaking length | lengths solved by >= {needed}/{n_seeds} seeds | note |",
        "|---|---|---:|---|---|",
    ]
    for cell, init in _groups(results):
        solved_by_length = {}
        for length in lengths:
            runs = [r for r in results if (r.cell, r.recurrent_init, r.seq_len) == (cell, init, length)]
            if not runs:
                per_length.append(f"| {cell} | {init} | {length} | not run: a shorter length broke | | | |")
                continue
            solved_by_length[length] = sum(_solved(r, target) for r in runs)
            accuracy = format_mean_std([r.test_acc for r in runs], digits=3)
            ended = " / ".join(str(sum(r.ended == e for r in runs)) for e in ("target", "plateau", "cap"))
            if len(runs) < n_seeds:  # seeds skipped once the length had failed, or still running (--report)
                broken = broken_already(len(runs) - solved_by_length[length], n_seeds)
                ended += f"; {n_seeds - len(runs)} " + ("not run: broken already" if broken else "not finished")
            per_length.append(
                f"| {cell} | {init} | {length} | {accuracy} | {solved_by_length[length]}/{n_seeds} | "
                f"{_steps_text(runs, n_seeds)} | {ended} |"
            )
        best, note = breaking_length(solved_by_length, needed)
        passed = ", ".join(str(length) for length in solved_by_length if solved_by_length[length] >= needed) or "–"
        breaking.append(f"| {cell} | {init} | {best if best is not None else 'none'} | {passed} | {note} |")
    return "\n".join(per_length) + "\n", "\n".join(breaking) + "\n"


def plot(results: list[RunResult], path: Path, target: float) -> None:
    """Test accuracy vs length: a colour per cell, a line style per init, every seed as a jittered point, the mean
    over seeds as a line; chance and the target dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jitter = random.Random(0)  # the same picture from the same results
    styles = dict(zip(RECURRENT_INITS, ("-", "--", ":", "-."), strict=False))
    markers = dict(zip(RECURRENT_INITS, ("o", "^", "s", "D"), strict=False))
    lengths = sorted({r.seq_len for r in results})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    groups = _groups(results)
    for index, (cell, init) in enumerate(groups):
        shift = 0.05 * (2 * index / max(len(groups) - 1, 1) - 1)  # each (cell, init) cloud a little apart, log-x
        color = f"C{CELLS.index(cell)}" if cell in CELLS else None
        runs = [r for r in results if (r.cell, r.recurrent_init) == (cell, init) and not math.isnan(r.test_acc)]
        xs = sorted({r.seq_len for r in runs})
        means = [statistics.fmean(r.test_acc for r in runs if r.seq_len == x) for x in xs]
        (line,) = ax.plot(xs, means, linestyle=styles.get(init, "-"), color=color, label=f"{cell} {init} (mean)")
        ax.scatter(
            [r.seq_len * math.exp(shift + jitter.uniform(-0.012, 0.012)) for r in runs],
            [r.test_acc for r in runs],
            s=14,
            alpha=0.5,
            color=line.get_color(),
            marker=markers.get(init, "o"),
        )
    ax.axhline(0.1, color="grey", linestyle=":", linewidth=1, label="chance (10%)")
    ax.axhline(target, color="black", linestyle="--", linewidth=0.8, label=f"target ({100 * target:g}%)")
    ax.set_xscale("log")
    ax.set_xticks(lengths, [str(length) for length in lengths])
    ax.minorticks_off()
    ax.set_xlabel("palindrome length (points: seeds, jittered sideways)")
    ax.set_ylabel("test accuracy (final model)")
    ax.set_ylim(0, 1.05)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def read_results(paths: list[str]) -> list[RunResult]:
    """Rows of one or more results.csv files (one written before the test split reads with NaN test accuracy and
    the default init), or the finished runs (``runs/*/run.json`` without an error) of sweep folders."""
    results = []
    for folder in (Path(path) for path in paths if Path(path).is_dir()):
        for record in sorted(folder.glob("runs/*/run.json")):
            saved = json.loads(record.read_text())
            if saved.get("result") and not saved.get("error"):
                results.append(run_result(saved["result"], saved["config"]))
    paths = [path for path in paths if not Path(path).is_dir()]

    def optional_int(text: str | None) -> int | None:
        return int(text) if text else None

    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                results.append(
                    RunResult(
                        cell=row["cell"],
                        recurrent_init=row.get("recurrent_init") or "default",
                        seq_len=int(row["seq_len"]),
                        seed=int(row["seed"]),
                        test_acc=float(row.get("test_acc") or "nan"),
                        best_val_acc=float(row["best_val_acc"]),
                        final_val_acc=float(row["final_val_acc"]),
                        steps=int(row["steps"]),
                        steps_to_target=optional_int(row["steps_to_target"]),
                        max_steps=optional_int(row.get("max_steps")),
                        seconds=float(row["seconds"]),
                        ended=row.get("ended") or "",
                        lr=float(row["lr"]) if row.get("lr") else None,
                    )
                )
    return results


def write_report(
    results: list[RunResult],
    run_dir: Path,
    command: str,
    target: float,
    lengths: list[int] | None = None,
    seeds: list[int] | None = None,
) -> str:
    """results.md and accuracy_vs_length.png in ``run_dir``; returns the markdown below the command line. ``seeds``:
    the sweep's seeds (default: those in the results)."""
    seeds = sorted({r.seed for r in results} | set(seeds or []))
    n, needed, pct = len(seeds), seeds_needed(len(seeds)), f"{100 * target:g}%"
    caps = sorted({r.max_steps for r in results if r.max_steps is not None})
    cap = f"at most {', '.join(map(str, caps))} steps per run" if caps else "step cap not recorded in the CSV"
    per_length, breaking = summarise(results, target, lengths, n)
    groups = ", ".join(f"{cell} {init}" for cell, init in _groups(results))
    lengths = sorted({r.seq_len for r in results} | set(lengths or []))
    text = (
        f"Palindrome sweep: {groups}; lengths {lengths}; seeds {seeds} (n = {n}); {cap}, "
        f"early stopping once validation accuracy >= {pct}, or as stuck once it stops rising (see ended).\n\n"
        f"- **test accuracy**: the final model of each run (when early stopping or the step cap ended it) on the "
        f"held-out test palindromes, never seen in training or validation; mean ± std over the seeds.\n"
        f"- **solved**: a seed whose test accuracy is >= {pct}; `k/{n}` = k of the {n} seeds (a failed run counts "
        f"as not solved).\n"
        f"- **steps to {pct}**: the first validation step with validation accuracy >= {pct}; median and [min, max] "
        f"over the seeds that got there (how many did in brackets).\n"
        f"- **breaking length**: the longest length L such that >= {needed}/{n} seeds solve L (ceil(0.8 n)); "
        f"the note names any shorter length that failed, and the next length, which fails.\n\n"
        f"### Per cell, init and length\n\n{per_length}\n### Breaking length\n\n{breaking}"
    )
    (run_dir / "results.md").write_text(f"Command: `{command.strip()}`\n\n{text}")
    plot(results, run_dir / "accuracy_vs_length.png", target)
    return text
