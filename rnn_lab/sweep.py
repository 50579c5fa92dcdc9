"""``python -m rnn_lab sweep``: validation accuracy vs palindrome length for several cells and seeds.

Each run trains a fresh SequenceClassifier with the Lightning Trainer for at most ``--max_steps`` steps, validates
every ``--val_every`` steps and stops early once validation accuracy reaches ``--target``. Results go to a run
directory ``<root>/palindrome-sweep-<time>/``: ``results.csv`` (one row per run), ``results.md`` (mean ± std per
length and cell) and ``accuracy_vs_length.png``. Runs execute in ``--jobs`` worker processes, one line per run.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import torch

from rnn_lab.cells import CELLS, IMPLEMENTATIONS


@dataclass(frozen=True)
class RunSpec:
    """One training run of the sweep."""

    cell: str
    seq_len: int
    seed: int
    max_steps: int
    val_every: int
    target: float
    hidden_dim: int
    batch_size: int
    num_samples: int
    lr: float
    implementation: str
    threads: int


@dataclass
class RunResult:
    cell: str
    seq_len: int
    seed: int
    best_val_acc: float
    final_val_acc: float
    steps: int
    steps_to_target: int | None
    seconds: float


def train_one(spec: RunSpec) -> RunResult:
    """Trains one classifier as the sweep specifies and returns its validation accuracies."""
    from pytorch_lightning import Callback, Trainer, seed_everything
    from pytorch_lightning.callbacks import EarlyStopping

    from datamodules.palindrome import PalindromeDataModule
    from rnn_lab.classifier import SequenceClassifier

    torch.set_num_threads(spec.threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*(num_workers|LeafSpec|val_check_interval).*")
    start = time.perf_counter()
    history: list[tuple[int, float]] = []

    class Record(Callback):
        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                history.append((trainer.global_step, float(trainer.callback_metrics["val/acc"])))

    seed_everything(spec.seed, verbose=False)
    data = PalindromeDataModule(
        seq_len=spec.seq_len,
        num_samples=spec.num_samples,
        batch_size=spec.batch_size,
        train_fraction=0.9,
        seed=spec.seed,
    )
    model = SequenceClassifier(
        cell=spec.cell,
        implementation=spec.implementation,
        hidden_dim=spec.hidden_dim,
        one_hot=True,
        optimizer=partial(torch.optim.Adam, lr=spec.lr),
    )
    stop = EarlyStopping(monitor="val/acc", mode="max", stopping_threshold=spec.target, patience=10**9)
    trainer = Trainer(
        accelerator="cpu",
        max_steps=spec.max_steps,
        max_epochs=-1,
        val_check_interval=spec.val_every,
        check_val_every_n_epoch=None,
        gradient_clip_val=10.0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[stop, Record()],
    )
    trainer.fit(model, datamodule=data)
    if not history or history[-1][0] != trainer.global_step:  # the budget ended between two validations
        trainer.validate(model, datamodule=data, verbose=False)
        history.append((trainer.global_step, float(trainer.callback_metrics["val/acc"])))
    reached = [step for step, acc in history if acc >= spec.target]
    return RunResult(
        cell=spec.cell,
        seq_len=spec.seq_len,
        seed=spec.seed,
        best_val_acc=max(acc for _, acc in history),
        final_val_acc=history[-1][1],
        steps=trainer.global_step,
        steps_to_target=reached[0] if reached else None,
        seconds=round(time.perf_counter() - start, 1),
    )


def summarise(results: list[RunResult], cells: list[str], lengths: list[int], target: float) -> str:
    """Markdown: best validation accuracy (mean ± std over seeds) and median steps to reach the target."""

    def cell_text(cell: str, length: int) -> tuple[str, str]:
        runs = [r for r in results if r.cell == cell and r.seq_len == length]
        if not runs:
            return "-", "-"
        acc = torch.tensor([r.best_val_acc for r in runs])
        std = acc.std().item() if len(runs) > 1 else 0.0
        solved = [r.steps_to_target for r in runs if r.steps_to_target is not None]
        steps = (
            f"{int(torch.tensor(solved).float().median().item())} ({len(solved)}/{len(runs)})" if solved else "never"
        )
        return f"{acc.mean().item():.3f} ± {std:.3f}", steps

    header = "| length | " + " | ".join(f"{c} accuracy" for c in cells) + " | "
    header += " | ".join(f"{c} steps to {100 * target:g}%" for c in cells) + " |"
    lines = [header, "|---:|" + "---:|" * (2 * len(cells))]
    for length in lengths:
        texts = [cell_text(cell, length) for cell in cells]
        lines.append(
            f"| {length} | " + " | ".join(t[0] for t in texts) + " | " + " | ".join(t[1] for t in texts) + " |"
        )
    return "\n".join(lines) + "\n"


def plot(results: list[RunResult], cells: list[str], lengths: list[int], path: Path) -> None:
    """Best validation accuracy vs length: mean ± std over seeds per cell, each run as a dot, chance dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for cell in cells:
        xs, means, stds = [], [], []
        for length in lengths:
            acc = torch.tensor([r.best_val_acc for r in results if r.cell == cell and r.seq_len == length])
            if acc.numel():
                xs.append(length)
                means.append(acc.mean().item())
                stds.append(acc.std().item() if acc.numel() > 1 else 0.0)
        line = ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=cell)
        runs = [r for r in results if r.cell == cell]
        ax.scatter(
            [r.seq_len for r in runs], [r.best_val_acc for r in runs], s=12, alpha=0.4, color=line[0].get_color()
        )
    ax.axhline(0.1, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlabel("palindrome length")
    ax.set_ylabel("best validation accuracy")
    ax.set_ylim(0, 1.05)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(args: list[str]) -> argparse.Namespace:
    from gan_lab.cli import fail

    parser = argparse.ArgumentParser(prog="python -m rnn_lab sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 30, 50, 100], help="palindrome lengths")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (data and weights)")
    parser.add_argument("--cells", nargs="+", default=["rnn", "lstm"], choices=CELLS)
    parser.add_argument("--max_steps", type=int, default=3000, help="step budget of each run")
    parser.add_argument("--val_every", type=int, default=100, help="validate every N steps")
    parser.add_argument("--target", type=float, default=0.995, help="stop a run once val accuracy reaches this")
    parser.add_argument("--hidden_dim", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--num_samples", type=int, default=50_000, help="samples per run (90%% train, 10%% val)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (gradient clipping at norm 10)")
    parser.add_argument("--implementation", default="torch", choices=IMPLEMENTATIONS)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel, each in its own process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--root", default="runs", help="the sweep writes <root>/palindrome-sweep-<time>/")
    parser.add_argument(
        "--report", nargs="+", metavar="CSV", help="train nothing: redraw the table and plot from results.csv files"
    )
    parser.error = lambda message: fail(message)  # type: ignore[method-assign]
    opts = parser.parse_args(args)
    if min(opts.lengths) < 2:
        fail(f"--lengths must be >= 2; got {min(opts.lengths)}")
    positive = ("max_steps", "val_every", "hidden_dim", "batch_size", "num_samples", "jobs", "threads")
    for name in positive:
        if getattr(opts, name) < 1:
            fail(f"--{name} must be positive; got {getattr(opts, name)}")
    if not 0.0 < opts.target <= 1.0 or opts.lr <= 0:
        fail(f"--target must be in (0, 1] and --lr positive; got {opts.target} and {opts.lr}")
    if Path(opts.root).exists() and not Path(opts.root).is_dir():
        fail(f"--root {opts.root} is a file, not a folder")
    for path in opts.report or []:
        if not Path(path).is_file():
            fail(f"--report: no such file {path}")
    return opts


def read_results(paths: list[str]) -> list[RunResult]:
    """Rows of one or more results.csv files."""
    results = []
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                results.append(
                    RunResult(
                        cell=row["cell"],
                        seq_len=int(row["seq_len"]),
                        seed=int(row["seed"]),
                        best_val_acc=float(row["best_val_acc"]),
                        final_val_acc=float(row["final_val_acc"]),
                        steps=int(row["steps"]),
                        steps_to_target=int(row["steps_to_target"]) if row["steps_to_target"] else None,
                        seconds=float(row["seconds"]),
                    )
                )
    return results


def write_report(results: list[RunResult], run_dir: Path, command: str, target: float) -> str:
    """results.md and accuracy_vs_length.png in ``run_dir``; returns the markdown table."""
    cells = [cell for cell in CELLS if any(r.cell == cell for r in results)]
    lengths = sorted({r.seq_len for r in results})
    seeds = sorted({r.seed for r in results})
    table = summarise(results, cells, lengths, target)
    (run_dir / "results.md").write_text(
        f"Command: `{command.strip()}`\n\nBest validation accuracy over seeds {seeds} (mean ± std); steps to "
        f"{100 * target:g}%: median over the seeds that got there (how many did; the lower middle value for an "
        f"even count).\n\n{table}"
    )
    plot(results, cells, lengths, run_dir / "accuracy_vs_length.png")
    return table


def sweep_main(args: list[str]) -> Path:
    """Runs the sweep described by ``args`` and returns its run directory."""
    opts = parse_args(args)
    lengths, cells = sorted(set(opts.lengths)), list(dict.fromkeys(opts.cells))
    run_dir = Path(opts.root) / f"palindrome-sweep-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir.mkdir(parents=True, exist_ok=False)
    command = "python -m rnn_lab sweep " + " ".join(args)
    if opts.report:
        print(write_report(read_results(opts.report), run_dir, command, opts.target))
        print(f"Report written: {run_dir}/results.md, accuracy_vs_length.png")
        return run_dir
    common = {k: getattr(opts, k) for k in ("max_steps", "val_every", "target", "hidden_dim", "batch_size")}
    common |= {k: getattr(opts, k) for k in ("num_samples", "lr", "implementation", "threads")}
    # Longest first, so the slow runs do not all end up at the tail of the pool.
    specs = [
        RunSpec(cell=cell, seq_len=length, seed=seed, **common)
        for length in reversed(lengths)
        for seed in opts.seeds
        for cell in cells
    ]
    print(
        f"Sweep: {len(specs)} runs ({len(cells)} cells x {len(lengths)} lengths x {len(opts.seeds)} seeds) -> {run_dir}"
    )
    results: list[RunResult] = []
    start = time.perf_counter()
    handle = open(run_dir / "results.csv", "w", newline="")  # rows are written as runs finish
    writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(RunResult)])
    writer.writeheader()
    if opts.jobs == 1:
        finished = (train_one(spec) for spec in specs)
    else:
        pool = ProcessPoolExecutor(max_workers=opts.jobs, mp_context=get_context("spawn"))
        finished = (future.result() for future in as_completed([pool.submit(train_one, spec) for spec in specs]))
    for done, result in enumerate(finished, start=1):
        results.append(result)
        writer.writerow(asdict(result))
        handle.flush()
        reached = "never" if result.steps_to_target is None else f"step {result.steps_to_target}"
        print(
            f"[{done}/{len(specs)}] {result.cell} length {result.seq_len} seed {result.seed}: best val acc "
            f"{result.best_val_acc:.4f}, {100 * opts.target:g}% reached {reached}, {result.steps} steps, "
            f"{result.seconds:.0f} s",
            flush=True,
        )
    if opts.jobs > 1:
        pool.shutdown()
    handle.close()
    results.sort(key=lambda r: (r.cell, r.seq_len, r.seed))
    print(write_report(results, run_dir, command, opts.target))
    print(
        f"Sweep done in {time.perf_counter() - start:.0f} s: {run_dir}/results.csv, results.md, accuracy_vs_length.png"
    )
    return run_dir
