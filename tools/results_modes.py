"""The Stacked MNIST section of RESULTS.md (``tools/build_results.py --sections stacked``).

Each run is the documented command of docs/modes.md ("Stacked MNIST on CPU"), one per variant and seed:

    python -m gan_lab fit --config configs/base.yaml --config configs/stacked/dcgan.yaml \
        --config configs/stacked/dcgan.<variant>.yaml --config configs/stacked/cpu.yaml --seed_everything=<seed>

writing ``runs/stacked_cpu/<family>-<variant>-s<seed>/version_*/modes.json``. A run whose ``modes.json`` reaches the
budget's last epoch is reused (so the shell loop of docs/modes.md and this section share their runs); a missing or
unfinished one is trained, ``--jobs`` at a time with one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

from lab.report.runs import read_metrics
from lab.stats import format_mean_std

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "runs" / "stacked_cpu"  # configs/stacked/cpu.yaml's run.root, relative to the repository
VARIANTS = {  # variant -> run name prefix
    "dhalf": "dcgan-dhalf",
    "pac2": "pacdcgan-m2",
    "dquarter": "dcgan-dquarter",
    "k5": "unrolled-k5",
}
LABELS = {
    "dhalf": "DCGAN, D = 1/2 G",
    "pac2": "PacDCGAN2, D = 1/2 G",
    "dquarter": "DCGAN, D = 1/4 G",
    "k5": "Unrolled GAN k = 5, D = 1/2 G",
}
FAMILY = {"k5": "unrolled"}  # the family config a variant composes after (default dcgan)
SLOW = {"k5"}  # trained only with --stacked-unrolled (about 10x a DCGAN run on CPU); tabulated once finished
PUBLISHED = [  # (row, modes of 1,000, KL to uniform): GPU budgets of hundreds of thousands of batches
    ("DCGAN, D = 1/2 G (Metz et al., Unrolled GAN paper)", 628, 2.58),
    ("Unrolled GAN k = 10, D = 1/2 G (Metz et al.)", 817, 1.43),
    ("DCGAN (VEEGAN paper)", 99, 3.4),
    ("PacDCGAN2 (PacGAN paper)", 1000, 0.06),
]


def command(variant: str, seed: int) -> list[str]:
    family = FAMILY.get(variant, "dcgan")
    configs = ["base.yaml", f"stacked/{family}.yaml", f"stacked/{family}.{variant}.yaml", "stacked/cpu.yaml"]
    files = [arg for name in configs for arg in ("--config", f"configs/{name}")]
    return [sys.executable, "-m", "gan_lab", "fit", *files, f"--seed_everything={seed}"]


def finished(variant: str, seed: int, epochs: int) -> dict | None:
    """The ``modes.json`` of a run that reached the budget's last epoch, else None."""
    for path in sorted(RUNS.glob(f"{VARIANTS[variant]}-s{seed}/version_*/modes.json")):
        record = json.loads(path.read_text())
        if record["final"]["epoch"] == epochs - 1:
            return {**record, "folder": path.parent}
    return None


def train_missing(runs: list[tuple[str, int]], epochs: int, jobs: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    todo = [run for run in runs if finished(*run, epochs) is None]
    running: list[subprocess.Popen] = []
    while todo or running:
        while todo and len(running) < jobs:
            variant, seed = todo.pop(0)
            print(f"  training {VARIANTS[variant]}-s{seed}", flush=True)
            running.append(subprocess.Popen(command(variant, seed), cwd=REPO, env=env, stdout=subprocess.DEVNULL))
        running[0].wait()
        running = [p for p in running if p.poll() is None]


def train_seconds(folder: Path) -> float:
    """The run's training time (``time/train_s`` of its last epoch) from its ``metrics.csv``."""
    return max(row["time/train_s"] for row in read_metrics(folder / "metrics.csv") if "time/train_s" in row)


def section_stacked(opts: argparse.Namespace, out: Path) -> str:
    cpu = yaml.safe_load((REPO / "configs" / "stacked" / "cpu.yaml").read_text())["trainer"]
    epochs, batches = cpu["max_epochs"], cpu["limit_train_batches"]
    seeds, variants = range(opts.stacked_seeds), list(VARIANTS)
    trained = [v for v in variants if v not in SLOW or opts.stacked_unrolled]
    train_missing([(v, s) for v in trained for s in seeds], epochs, opts.jobs)
    lines = [
        f"| Stacked MNIST (1,000 modes), {epochs * batches:,} generator steps of 64 | seeds | modes of 1,000 | "
        "KL(modes ‖ uniform) | modes after each epoch (seed 0) | training s / run |",
        "|---|---|---|---|---|---|",
    ]
    for variant in variants:
        runs = [r for r in (finished(variant, s, epochs) for s in seeds) if r is not None]
        if not runs:
            why = " (`--stacked-unrolled`; a GPU command is in docs/modes.md)" if variant in SLOW else ""
            lines.append(f"| {LABELS[variant]} | 0 | not run{why} | | | |")
            continue
        modes = [r["final"]["modes"] for r in runs]
        kls = [r["final"]["kl"] for r in runs]
        curve = " → ".join(str(h["modes"]) for h in runs[0]["history"])
        seconds = statistics.fmean(train_seconds(r["folder"]) for r in runs)
        lines.append(
            f"| {LABELS[variant]} | {len(runs)} | {format_mean_std(modes, 0)} | {format_mean_std(kls, 2)} | {curve} "
            f"| {seconds:.0f} |"
        )
    for row, modes, kl in PUBLISHED:
        lines.append(f"| *{row}* | | *{modes}* | *{kl}* | | |")
    loop = " ".join(command("<variant>", 0)[1:]).replace("=0", "=<seed>")
    return (
        f"Budget: {epochs} epochs × {batches:,} batches of 64 = {epochs * batches:,} generator steps per run "
        "(`configs/stacked/cpu.yaml`), CPU, one torch thread, modes and KL over the protocol's 26,000 samples, each "
        "channel classified by the project's MNIST classifier. Each run: `python " + loop + "` (variants dhalf, "
        "pac2, dquarter; Unrolled k = 5: `stacked/unrolled.yaml` then `stacked/unrolled.k5.yaml` in place of the "
        "dcgan pair, trained by `--stacked-unrolled`; docs/modes.md has the loop). The published rows trained "
        "hundreds of thousands of batches on a GPU with their own nets: they are the papers' orders of magnitude, "
        "not the same budget.\n\n" + "\n".join(lines) + "\n"
    )
