"""``python -m rnn_lab sweep``: test accuracy vs palindrome length for several cells, recurrent inits and seeds.

Each run trains a fresh SequenceClassifier with the Lightning Trainer for at most ``--max_steps`` steps on the train
split (80% of ``--num_samples``), validates every ``--val_every`` steps on the validation split (10%) and stops
``--settle`` steps after validation accuracy first reaches ``--target``, or as stuck once ``--patience`` steps pass
without validation accuracy rising by a point (0.01) over its best; the final model is then evaluated once on the
held-out test split (10%, never seen in training or validation): that test accuracy is the sweep's number.
``--recurrent_init`` takes one or more inits, so one command gives the init ablation (cell x init x length x seed).
The sweep is adaptive: each (cell, init) starts at the shortest length and goes on to the next one only while its
seeds keep solving, so a length solved by fewer than ceil(0.8 n) seeds (the break) ends that cell's climb and no run
is spent above its breaking length; a length's seeds go ``--jobs`` at a time, and once too many failed for it to
count as solved its other seeds are not run (``--all_lengths`` trains every length and seed anyway). Runs go through
the shared runner (``lab.runner``): ``--jobs`` worker processes, one line per finished run, and a run whose settings
(its RunSpec) are unchanged is reused from
``<root>/palindrome-sweep/runs/<cell>-<init>-L<length>-s<seed>/run.json``. The sweep folder
``<root>/palindrome-sweep/`` gets ``results.csv`` (one row per run), ``results.md`` (per cell, init and length; the
breaking length per cell and init; definitions in rnn_lab.sweep_report) and ``accuracy_vs_length.png``.
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import asdict, fields
from pathlib import Path

from lab.errors import fail, one_of
from lab.runner import Job, Outcome, run_jobs
from rnn_lab.cells import CELLS, IMPLEMENTATIONS, RECURRENT_INITS
from rnn_lab.sweep_report import RunResult, broken_already, read_results, run_result, seeds_needed, write_report
from rnn_lab.sweep_run import GROUP, RunSpec, settings

DEFAULT_LR = 1e-3  # Adam, every cell: the best of the learning-rate search (docs/rnn.md)


def learning_rates(entries: list[str]) -> dict[str, float]:
    """``--lr`` entries (a rate for every cell, ``cell=rate`` for one; later entries win) -> rate per cell."""
    rates = dict.fromkeys(CELLS, DEFAULT_LR)
    for entry in entries:
        cell, _, text = entry.rpartition("=")
        try:
            rate = float(text)
            if rate <= 0 or (cell and cell not in CELLS):
                raise ValueError
        except ValueError:
            fail(f"--lr takes positive rates, for every cell or as cell=rate (cells {', '.join(CELLS)}); got {entry!r}")
        rates.update({cell: rate} if cell else dict.fromkeys(CELLS, rate))
    return rates


def parse_args(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rnn_lab sweep", description=__doc__.split("\n\n")[0])
    # Lists take nargs="*" and are checked below, so an empty or misspelt one is one clear line, not argparse's usage.
    parser.add_argument("--lengths", type=int, nargs="*", default=[10, 20, 30, 50, 75, 100, 150, 200],
                        help="palindrome lengths (>= 2)")  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="*", help="seeds (data and weights; default 0 1 2 3 4)")
    parser.add_argument("--cells", nargs="*", default=list(CELLS), help=f"one or more of {', '.join(CELLS)}")
    parser.add_argument("--recurrent_init", nargs="*", default=["orthogonal"],
                        help=f"recurrent weights' init, one or more of {', '.join(RECURRENT_INITS)}: several give the "
                        "init ablation (every cell, length and seed with each init)")  # fmt: skip
    parser.add_argument("--max_steps", type=int, default=20_000, help="step cap of each run (early stopping ends most)")
    parser.add_argument("--patience", type=int, default=5000,
                        help="stop a run as stuck after this many steps without validation accuracy rising by 0.01 "
                        "over its best")  # fmt: skip
    parser.add_argument("--val_every", type=int, default=100, help="validate every N steps")
    parser.add_argument("--target", type=float, default=0.995, help="solved: test accuracy >= this")
    parser.add_argument("--settle", type=int, default=200,
                        help="steps trained on after validation accuracy first reaches --target, then stop (a margin: "
                        "a run stopped right at it can end just below it on the test split)")  # fmt: skip
    parser.add_argument("--hidden_dim", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--num_samples", type=int, default=50_000,
                        help="samples per run (80%% train, 10%% validation, 10%% test, disjoint)")  # fmt: skip
    parser.add_argument("--lr", nargs="*", default=[str(DEFAULT_LR)],
                        help="Adam learning rate (gradient clipping at norm 10): one rate for every cell, and/or "
                        "cell=rate for one cell, e.g. 2e-3 gru=1e-3")  # fmt: skip
    parser.add_argument("--implementation", default="torch", choices=IMPLEMENTATIONS)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel, each in its own process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--root", default="runs", help="the sweep writes <root>/palindrome-sweep/")
    parser.add_argument("--all_lengths", action="store_true",
                        help="also train the lengths above a (cell, init)'s break")  # fmt: skip
    parser.add_argument("--rerun", action="store_true", help="train again even runs whose settings are unchanged")
    parser.add_argument("--wandb", action=argparse.BooleanOptionalAction, default=True,
                        help="log every run to W&B in the group palindrome-sweep (offline without a key)")  # fmt: skip
    parser.add_argument(
        "--report",
        nargs="+",
        metavar="PATH",
        help="train nothing: redraw the table and plot from results.csv files, or from the finished runs of sweep "
        "folders (<root>/palindrome-sweep, also while a sweep is still running)",
    )
    parser.error = lambda message: fail(message)  # type: ignore[method-assign]
    opts = parser.parse_args(args)
    opts.given_seeds, opts.seeds = opts.seeds, [0, 1, 2, 3, 4] if opts.seeds is None else opts.seeds
    for name, what in (("lengths", "length"), ("seeds", "seed"), ("cells", "cell"), ("recurrent_init", "init")):
        if not getattr(opts, name):
            fail(f"--{name} needs at least one {what}")
    if min(opts.lengths) < 2:
        fail(f"--lengths must be >= 2; got {min(opts.lengths)}")
    try:
        for cell in opts.cells:
            one_of("--cells", cell, CELLS)
        for init in opts.recurrent_init:
            one_of("--recurrent_init", init, RECURRENT_INITS)
    except ValueError as err:
        fail(str(err))
    positive = ("max_steps", "patience", "val_every", "hidden_dim", "batch_size", "num_samples", "jobs", "threads")
    for name in positive:
        if getattr(opts, name) < 1:
            fail(f"--{name} must be positive; got {getattr(opts, name)}")
    if not 0.0 < opts.target <= 1.0 or opts.settle < 0:
        fail(f"--target must be in (0, 1] and --settle >= 0; got {opts.target} and {opts.settle}")
    opts.lr = learning_rates(opts.lr)
    if Path(opts.root).exists() and not Path(opts.root).is_dir():
        fail(f"--root {opts.root} is a file, not a folder")
    for path in opts.report or []:
        if not Path(path).is_file() and not (Path(path) / "runs").is_dir():
            fail(f"--report: {path} is neither a results.csv nor a sweep folder (with runs/)")
    return opts


def sweep_main(args: list[str]) -> Path:
    """Runs the sweep described by ``args`` and returns its folder."""
    opts = parse_args(args)
    lengths, cells = sorted(set(opts.lengths)), list(dict.fromkeys(opts.cells))
    seeds, inits = list(dict.fromkeys(opts.seeds)), list(dict.fromkeys(opts.recurrent_init))
    run_dir = Path(opts.root) / GROUP
    run_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m rnn_lab sweep " + " ".join(args)
    if opts.report:
        print(write_report(read_results(opts.report), run_dir, command, opts.target, seeds=opts.given_seeds))
        print(f"Report written: {run_dir}/results.md, accuracy_vs_length.png")
        return run_dir
    common = {k: getattr(opts, k) for k in ("max_steps", "patience", "val_every", "target", "hidden_dim", "settle")}
    common |= {k: getattr(opts, k) for k in ("batch_size", "num_samples", "implementation")}

    def length_jobs(cell: str, init: str, length: int, some: list[int] | None = None) -> list[Job]:
        """The seeds (``some`` of them, else all) of one (cell, init, length); the RunSpec is the job's identity."""
        return [
            Job(f"{cell}-{init}-L{length}-s{seed}", "rnn_lab.sweep_run:train_one",
                settings(RunSpec(cell=cell, seq_len=length, seed=seed, recurrent_init=init, lr=opts.lr[cell],
                                 **common)),
                options={"wandb": opts.wandb})
            for seed in (seeds if some is None else some)
        ]  # fmt: skip

    needed = seeds_needed(len(seeds))
    pending: dict[tuple[str, str, int], list[bool]] = {}  # seeds of a (cell, init, length) finished so far: solved?
    queued: dict[tuple[str, str, int], int] = {}  # seeds of a (cell, init, length) queued so far
    in_flight = min(opts.jobs, len(seeds))  # seeds of one (cell, init, length) queued at a time

    def next_seeds(cell: str, init: str, length: int, count: int) -> list[Job]:
        start = queued.get((cell, init, length), 0)
        queued[(cell, init, length)] = min(len(seeds), start + count)
        return length_jobs(cell, init, length, seeds[start : start + count])

    def length_key(job: Job) -> tuple[str, str, int]:
        return job.config["cell"], job.config["recurrent_init"], job.config["seq_len"]

    def climb(outcome: Outcome) -> list[Job]:
        """A (cell, init, length)'s seeds go a few at a time: the next seed once one finishes, none once too many
        failed for the length to count as solved (its break is decided; the other seeds are not run), and the next
        length once every seed finished and enough of them solved this one."""
        key = length_key(outcome.job)
        solved = not outcome.error and outcome.result["test_acc"] >= opts.target
        pending.setdefault(key, []).append(solved)
        done, failed = len(pending[key]), pending[key].count(False)
        if broken_already(failed, len(seeds)):
            return []
        if done < len(seeds):
            return next_seeds(*key, 1) if queued.get(key, 0) < len(seeds) else []
        longer = [length for length in lengths if length > key[2]]
        return next_seeds(key[0], key[1], longer[0], in_flight) if longer else []

    def still_needed(job: Job) -> bool:
        """False for a seed queued before the outcomes that decided its length (replayed from finished runs, the
        outcomes arrive one by one and the next seed is queued before the last of them is read)."""
        return not broken_already(pending.get(length_key(job), []).count(False), len(seeds))

    if opts.all_lengths:  # longest first, so the slow runs do not all end up at the tail of the pool
        jobs = [job for length in reversed(lengths) for cell in cells for init in inits
                for job in length_jobs(cell, init, length)]  # fmt: skip
    else:
        jobs = [job for cell in cells for init in inits for job in next_seeds(cell, init, lengths[0], in_flight)]
    shape = f"{len(cells)} cells x {len(inits)} inits x {len(lengths)} lengths x {len(seeds)} seeds"
    climbing = f"; each (cell, init) stops at the first length fewer than {needed} seeds solve (decided early)"
    climbing = "" if opts.all_lengths else climbing
    print(
        f"Sweep: up to {len(cells) * len(inits) * len(lengths) * len(seeds)} runs ({shape}), at most {opts.max_steps} "
        f"steps each, stuck after {opts.patience} steps without a gain{climbing}; Adam "
        + ", ".join(f"{cell} {opts.lr[cell]:g}" for cell in cells)
        + f" -> {run_dir}"
    )

    def describe(result: dict) -> str:
        reached = "never" if result["steps_to_target"] is None else f"step {result['steps_to_target']}"
        accuracy = f"test acc {result['test_acc']:.4f} (best val {result['best_val_acc']:.4f})"
        return f"{accuracy}, val {100 * opts.target:g}% reached {reached}, {result['steps']} steps ({result['ended']})"

    start = time.perf_counter()
    outcomes = run_jobs(
        jobs, run_dir / "runs", opts.jobs, opts.threads, describe, reuse=not opts.rerun,
        then=None if opts.all_lengths else climb, keep=None if opts.all_lengths else still_needed,
    )  # fmt: skip
    results = sorted(
        (run_result(o.result, o.job.config) for o in outcomes if not o.error),
        key=lambda r: (r.cell, r.recurrent_init, r.seq_len, r.seed),
    )
    with open(run_dir / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(RunResult)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in results)
    print(write_report(results, run_dir, command, opts.target, lengths, seeds))
    if opts.wandb:
        from lab.loggers import log_group_table

        log_group_table(GROUP, run_dir, [asdict(r) for r in results])
    failed = [o.job.name for o in outcomes if o.error]
    files = f"{run_dir}/results.csv, results.md, accuracy_vs_length.png"
    print(
        f"Sweep done in {time.perf_counter() - start:.0f} s: {files}"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return run_dir
