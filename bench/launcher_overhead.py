"""The experiment launcher (Ray) against the same four ``fit`` commands started by hand two at a time.

A four-run experiment (the ring GAN, 2 variants x 2 seeds, ``--epochs`` epochs each) is run twice in one go, from
empty folders each time:

- **by hand**: the four ``python -m gan_lab fit ...`` command lines the launcher would run (the same config files,
  overrides, run folders and ``OMP_NUM_THREADS=1``), two processes at a time, the next started as soon as one ends;
- **launcher**: ``python -m lab experiment run <the experiment>``: its private Ray instance, config resolution, the
  same four runs two at a time, the records and the table.

Pairs alternate which goes first; printed: each wall time, each pair's ratio launcher / by hand, and the median.

    python bench/launcher_overhead.py [--epochs 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.experiment import spec as specs  # noqa: E402


def experiment(folder: Path, epochs: int) -> Path:
    data = {
        "name": "bench", "lab": "gan_lab", "configs": ["configs/base.yaml", "configs/mixtures/ring.yaml"],
        "budget": f"{epochs} epochs", "seeds": [0, 1], "set": {"trainer.max_epochs": epochs},
        "variants": {"gan": {"configs": ["configs/mixtures/gan.yaml"]},
                     "pacgan": {"configs": ["configs/mixtures/pacgan.yaml"]}},
        "metrics": [{"key": "val/modes", "label": "modes"}],
    }  # fmt: skip
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def timeline(start: float, spans: list[tuple[float, float]], end: float) -> str:
    """Where the wall time went: the first run's start and the last one's end (seconds from the start), the mean run,
    and the time after the last run ended."""
    first, last = min(s for s, _ in spans) - start, max(e for _, e in spans) - start
    mean = statistics.fmean(e - s for s, e in spans)
    return f"first run at +{first:.1f} s, mean run {mean:.1f} s, last ended +{last:.1f} s, exit +{end - start:.1f} s"


def by_hand(path: Path, root: Path) -> tuple[float, str]:
    exp = specs.load(path, REPO)
    commands = [[sys.executable, "-m", run.lab, "fit", *run.args, f"--run.root={root / run.instance}",
                 f"--run.name={run.name}", "--run.wandb=false", "--trainer.enable_progress_bar=false"]
                for run in exp.runs()]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.time()
    running: dict[subprocess.Popen, float] = {}
    spans = []
    while commands or running:
        while commands and len(running) < 2:
            running[subprocess.Popen(commands.pop(0), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)] = time.time()  # fmt: skip
        time.sleep(0.05)
        for process in [p for p in running if p.poll() is not None]:
            if process.returncode:
                raise SystemExit(f"a hand-started run failed: {process.args}")
            spans.append((running.pop(process), time.time()))
    end = time.time()
    return end - start, timeline(start, spans, end)


def launcher(path: Path, root: Path) -> tuple[float, str]:
    start = time.time()
    subprocess.run([sys.executable, "-m", "lab", "experiment", "run", str(path), "--runs", str(root / "runs"),
                    "--results", str(root / "results"), "--no-wandb"], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    end = time.time()
    # each attempt of a run leaves attempt-<start in ns>.s holding its wall time (lab/experiment/runone.py)
    spans = []
    for attempt in (root / "runs").glob("*/*/attempt-*.s"):
        begun = int(attempt.stem.split("-")[1]) / 1e9
        spans.append((begun, begun + float(attempt.read_text())))
    return end - start, timeline(start, spans, end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs of 100 batches a run (100: the ring's)")
    parser.add_argument("--repeats", type=int, default=2, help="pairs of (by hand, launcher) (2)")
    args = parser.parse_args()
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        path = experiment(Path(tmp), args.epochs)
        for pair in range(args.repeats):
            times, lines = {}, {}
            for side in ("hand", "launcher") if pair % 2 == 0 else ("launcher", "hand"):
                folder = Path(tmp) / f"{side}{pair}"
                times[side], lines[side] = (by_hand if side == "hand" else launcher)(path, folder)
            ratios.append(times["launcher"] / times["hand"])
            print(f"pair {pair}: by hand {times['hand']:.1f} s, launcher {times['launcher']:.1f} s, "
                  f"ratio {ratios[-1]:.3f}\n  by hand: {lines['hand']}\n  launcher: {lines['launcher']}",
                  flush=True)  # fmt: skip
    print(
        f"launcher / by hand, 4 runs of {args.epochs} epochs, 2 at a time: median ratio "
        f"{statistics.median(ratios):.3f} over {len(ratios)} pairs (goal <= 1.15)"
    )


if __name__ == "__main__":
    main()
