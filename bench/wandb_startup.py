"""What W&B costs a short run: the same short `fit` with W&B on (offline) and off, alternated, wall time per process.

    python bench/wandb_startup.py [--repeats 3] [--epochs 5]

The run is the 8-ring GAN (configs/mixtures/ring.yaml + gan.yaml) for ``--epochs`` epochs of 100 batches, one torch
thread, each in a fresh process as `make ring` workers start their runs. Prints the median wall time of each and
their difference: the price of W&B per run (start-up of its background process, the config, the run's files).
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

REPO = Path(__file__).resolve().parents[1]


def one_run(wandb: bool, epochs: int, root: str) -> float:
    configs = [
        f"--config={REPO / 'configs' / name}" for name in ("base.yaml", "mixtures/ring.yaml", "mixtures/gan.yaml")
    ]
    args = [sys.executable, "-m", "gan_lab", "fit", *configs, f"--trainer.max_epochs={epochs}", f"--run.root={root}",
            f"--run.wandb={str(wandb).lower()}", "--trainer.enable_progress_bar=false"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run(args, cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    opts = parser.parse_args()
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as root:
        for _ in range(opts.repeats):
            for wandb in (False, True):
                times[wandb].append(one_run(wandb, opts.epochs, root))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(
        f"ring GAN, {opts.epochs * 100} batches, median of {opts.repeats}: W&B off {off:.1f} s, on (offline) {on:.1f} s"
    )
    print(f"W&B costs {on - off:+.1f} s per run ({on / off:.2f}x)")


if __name__ == "__main__":
    main()
