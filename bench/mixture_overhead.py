"""The ring GAN under Lightning vs a plain PyTorch loop: whole processes side by side, one CPU thread each.

- **ours**: the real entry point, ``python -m gan_lab fit --config configs/base.yaml --config
  configs/mixtures/ring.yaml --config configs/mixtures/gan.yaml`` (the run ``make ring`` makes for the GAN), with only
  ``--trainer.max_epochs`` and the output folder set. It includes everything a user gets: CLI parsing, CSV logging, the
  divergence guard, mode evaluation and PNG every 2 epochs, the final strip, a checkpoint every epoch.
- **plain**: the textbook loop in a process that never imports Lightning: the same nets (configs/nets/mixture_*.yaml
  sizes, seed 0), losses (``gan_lab.losses``), optimisers (Adam 1e-3, betas (0.5, 0.999)), linear learning-rate decay
  over the second half, batch (128) and data source (``datamodules.mixture_stream``, the points the datamodule
  serves), one critic and one generator step per batch, the losses read every 50 steps as a logger would.

Runs come in pairs, one of each back to back (plain first in even pairs, ours first in odd ones), so that a pair
shares the machine's state: the headline is the median over pairs of each pair's ratio, which a host that speeds up
or slows down between pairs does not move; the best (least disturbed) run of each and the ratio of medians are
printed too. Two ratios, ours / plain:

- **whole process**: wall time from starting the process to its exit (interpreter, imports, set-up, training, and for
  ours the evaluations, plots and checkpoints);
- **whole process, CPU**: the same processes' CPU seconds (user + sys, ``getrusage`` of the finished child): what
  they computed, without the time the host gave to others (a shared host's steal and load move wall time by tens of
  percent from run to run);
- **training only**: the loop over the batches: for ours ``time/train_s`` (``callbacks.timing.TrainTime``: each
  epoch's start to its last batch, so evaluations and checkpoints are left out), for plain the loop itself.

- **import floor**: ``python -c "import pytorch_lightning"`` minus ``python -c "import torch._dynamo"``, the start-up
  that a Lightning process pays and the plain one does not (both import ``torch._dynamo``: the plain loop when it
  builds its first Adam, Lightning through torchmetrics and torchvision; Lightning also imports torchmetrics,
  torchvision and ``scipy.signal``), and the whole-process ratio without it.

    python bench/mixture_overhead.py [--epochs 100] [--repeats 5]    # 100 epochs = 10,000 generator steps
    python bench/mixture_overhead.py --ours_arg=--trainer.enable_progress_bar=false   # ablate one thing
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [REPO / "configs" / name for name in ("base.yaml", "mixtures/ring.yaml", "mixtures/gan.yaml")]
BATCH, BATCHES_PER_EPOCH, LATENT = 128, 100, 16  # as ring.yaml (12,800 points per epoch) and the mixture nets
ADAM = {"lr": 1e-3, "betas": (0.5, 0.999)}  # configs/optim/adam_mixture.yaml


def plain_loop(epochs: int) -> dict[str, float]:
    """Trains the plain loop for ``epochs`` x 100 batches; returns its seconds and generator steps."""
    import torch

    from datamodules.mixture_stream import MixtureStream, mixture_centres
    from gan_lab import losses
    from gan_lab.nets.mixture import MixtureDiscriminator, MixtureGenerator

    torch.set_num_threads(1)
    torch.manual_seed(0)
    generator, discriminator = MixtureGenerator(LATENT, 64, 2), MixtureDiscriminator(2, 64, 2)
    g_opt = torch.optim.Adam(generator.parameters(), **ADAM)
    d_opt = torch.optim.Adam(discriminator.parameters(), **ADAM)
    total = epochs * BATCHES_PER_EPOCH  # constant for the first half, then linearly to 0 (gan.yaml)
    decay = [torch.optim.lr_scheduler.LambdaLR(opt, lambda n: min(1.0, max(0.0, (total - n) / (total / 2))))
             for opt in (g_opt, d_opt)]  # fmt: skip
    stream = MixtureStream(mixture_centres("ring", 8, 1.0), 0.01, BATCH, BATCHES_PER_EPOCH, seed=0)
    steps, start = 0, time.perf_counter()
    for _ in range(epochs):
        for real, _modes in stream:
            with torch.no_grad():
                fake = generator(torch.randn(BATCH, LATENT))
            # maximize log(D(x)) + log(1 - D(G(z)))
            d_loss = losses.bce_discriminator_loss(discriminator(real), discriminator(fake))
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            for p in discriminator.parameters():
                p.requires_grad_(False)
            # maximize log(D(G(z)))
            g_loss = losses.nonsaturating_generator_loss(discriminator(generator(torch.randn(BATCH, LATENT))))
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
            for p in discriminator.parameters():
                p.requires_grad_(True)
            for scheduler in decay:
                scheduler.step()
            steps += 1
            if steps % 50 == 0:
                _ = (d_loss.item(), g_loss.item())  # what a logger would read
    return {"train_s": time.perf_counter() - start, "generator_steps": steps}


def timed(command: list[str]) -> tuple[str, float, float]:
    """Runs ``command`` in a fresh process (one torch thread); returns its stdout, wall seconds and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_plain(epochs: int) -> dict[str, float]:
    """Whole-process (wall and CPU) and training seconds of the plain loop in a fresh process (no Lightning)."""
    out, wall, cpu = timed([sys.executable, __file__, "--plain", "--epochs", str(epochs)])
    return {"process_s": wall, "process_cpu_s": cpu, **json.loads(out.strip().splitlines()[-1])}


def run_ours(epochs: int, extra: list[str]) -> dict[str, float]:
    """Whole-process seconds of ``python -m gan_lab fit`` on the ring GAN, with its logged train time and steps."""
    with tempfile.TemporaryDirectory() as root:
        args = [arg for path in CONFIGS for arg in ("--config", str(path))]
        _, seconds, cpu = timed(
            [sys.executable, "-m", "gan_lab", "fit", *args, f"--trainer.max_epochs={epochs}", f"--run.root={root}",
             *extra]
        )  # fmt: skip
        (metrics,) = Path(root).glob("*/version_*/metrics.csv")
        with open(metrics) as file:
            rows = list(csv.DictReader(file))
    last = {key: float(row[key]) for row in rows for key in ("time/train_s", "progress/generator_steps") if row[key]}
    return {"process_s": seconds, "process_cpu_s": cpu, "train_s": last["time/train_s"],
            "generator_steps": last["progress/generator_steps"]}  # fmt: skip


def run_import(module: str) -> float:
    """Seconds for a fresh interpreter to import ``module`` and exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, env=ENV, check=True)
    return time.perf_counter() - start


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs of 100 batches (100: 10,000 generator steps)")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of runs (one of each)")
    parser.add_argument("--ours_arg", action="append", default=[],
                        help="one more CLI argument for ours (to ablate what costs); repeatable")  # fmt: skip
    parser.add_argument("--plain", action="store_true", help="(internal) run the plain loop here and print JSON")
    args = parser.parse_args()
    if args.plain:
        print(json.dumps(plain_loop(args.epochs)))
        return
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "ours": []}
    imports: dict[str, list[float]] = {"torch._dynamo": [], "pytorch_lightning": []}
    for pair in range(args.repeats):
        order = ("plain", "ours") if pair % 2 == 0 else ("ours", "plain")
        for name in order:
            runs[name].append(run_plain(args.epochs) if name == "plain" else run_ours(args.epochs, args.ours_arg))
        for module in imports:
            imports[module].append(run_import(module))
    steps = {name: {r["generator_steps"] for r in rs} for name, rs in runs.items()}
    print(f"ring GAN, batch {BATCH}, {args.epochs} epochs, generator steps {steps}, 1 thread, {args.repeats} pairs")
    for key, what in (("process_s", "whole process"), ("process_cpu_s", "whole, CPU"), ("train_s", "training only")):
        pairs = [ours[key] / plain[key] for plain, ours in zip(runs["plain"], runs["ours"], strict=True)]
        best = {name: min(r[key] for r in rs) for name, rs in runs.items()}
        median = {name: statistics.median(r[key] for r in rs) for name, rs in runs.items()}
        times = {name: ", ".join(f"{r[key]:.1f}" for r in rs) for name, rs in runs.items()}
        print(f"{what:13s}: runs plain {times['plain']} s; ours {times['ours']} s")
        print(f"{'':13s}  ratio ours/plain = {statistics.median(pairs):.2f} median of {len(pairs)} pairs "
              f"({', '.join(f'{r:.2f}' for r in pairs)}; goal <= 1.3); best-of-{args.repeats} "
              f"{best['ours'] / best['plain']:.2f}, medians {median['ours'] / median['plain']:.2f}")  # fmt: skip
    # The fixed floor: what importing Lightning adds to the torch._dynamo that both processes import
    floor = min(imports["pytorch_lightning"]) - min(imports["torch._dynamo"])
    best = {name: min(r["process_s"] for r in rs) for name, rs in runs.items()}
    print(f"import floor : python -c 'import pytorch_lightning' {min(imports['pytorch_lightning']):.1f}s vs "
          f"'import torch._dynamo' {min(imports['torch._dynamo']):.1f}s: +{floor:.1f}s that any Lightning run pays; "
          f"whole process without it: {(best['ours'] - floor) / best['plain']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
