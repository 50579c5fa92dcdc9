"""Mode-collapse experiments: every family x several seeds on the 8-ring or the 25-grid, one results table.

    python -m gan_lab.experiments ring                 # `make ring`: 6 families x 5 seeds, 2 runs at a time
    python -m gan_lab.experiments grid --seeds 3 --epochs 10 --jobs 2

Each run is the real CLI entry (``python -m gan_lab fit --config configs/base.yaml --config configs/mixtures/<exp>.yaml
--config configs/mixtures/<family>.yaml``), run inside ``--jobs`` worker processes of one thread each (imports are paid
once per worker, not once per run). The ``MixtureModes`` callback writes
``modes.json`` and ``modes_strip.png`` in each run directory; this script gathers them into ``<out>/results.md``
(mean +- std over seeds, published rows beside ours) and ``<out>/<exp>_<family>.png`` (the strip of seed 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gan_lab.cli import LabError, fail

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class Family:
    """One row of the table: a label, a family config under configs/mixtures and extra CLI arguments."""

    label: str
    slug: str
    config: str
    args: tuple[str, ...] = ()
    epoch_factor: int = 1  # n_critic: epochs are multiplied so every family makes the same generator steps


FAMILIES = (
    Family("GAN", "gan", "gan.yaml"),
    Family("WGAN-GP", "wgan", "wgan.yaml", epoch_factor=5),
    Family("Unrolled k=0", "unrolled0", "unrolled.yaml", ("--model.init_args.unroll_steps=0",)),
    Family("Unrolled k=5", "unrolled5", "unrolled.yaml", ("--model.init_args.unroll_steps=5",)),
    Family("Unrolled k=10", "unrolled10", "unrolled.yaml", ("--model.init_args.unroll_steps=10",)),
    Family("MAD-GAN (16 G)", "madgan", "madgan.yaml"),
)

# Published rows (modes, HQ %, reverse KL); None where the paper gives no number.
PUBLISHED = {
    "ring": [
        ("GAN (PacGAN paper, 10 runs)", 6.3, 98.2, 0.45),
        ("PacGAN2 (PacGAN paper)", 7.9, 95.6, 0.07),
        ("Unrolled GAN (VEEGAN paper)", 7.6, 35.6, None),
        ("VEEGAN (VEEGAN paper)", 8.0, 52.9, None),
    ],
    "grid": [
        ("GAN (PacGAN paper, 10 runs)", 17.3, 94.8, 0.70),
        ("PacGAN4 (PacGAN paper)", 24.8, 93.6, 0.04),
    ],
}


@dataclass
class Run:
    family: Family
    seed: int
    name: str
    seconds: float = 0.0
    final: dict = field(default_factory=dict)
    error: str = ""


def _init_worker() -> None:
    import logging

    import torch

    torch.set_num_threads(1)
    for name in ("pytorch_lightning", "lightning_fabric"):  # run details go to each run's log, not the console
        logging.getLogger(name).setLevel(logging.WARNING)


def _finished(run_dir: Path, epochs: int) -> tuple[dict, float] | None:
    """The final metrics and seconds of a run in ``run_dir`` that reached ``epochs``, else None."""
    for path in sorted(run_dir.glob("version_*/modes.json"), reverse=True):
        saved = json.loads(path.read_text())
        if saved["final"]["epoch"] == epochs - 1:
            return saved["final"], float(saved.get("seconds", 0.0))
    return None


def _load_finished(run: Run, root: Path, epochs: int) -> bool:
    done = _finished(root / run.name, epochs * run.family.epoch_factor)
    if done is not None:
        run.final, run.seconds = done
    return done is not None


def run_one(run: Run, experiment: str, root: Path, epochs: int, extra: list[str], skip_done: bool = False) -> Run:
    """Trains one family/seed through the real CLI entry (in this worker process) and reads its ``modes.json``."""
    from gan_lab.__main__ import main as gan_main

    args = [
        "fit",
        "--config", str(CONFIGS / "base.yaml"),
        "--config", str(CONFIGS / "mixtures" / f"{experiment}.yaml"),
        "--config", str(CONFIGS / "mixtures" / run.family.config),
        f"--seed_everything={run.seed}", f"--run.root={root}", f"--run.name={run.name}",
        f"--trainer.max_epochs={epochs * run.family.epoch_factor}", "--trainer.enable_progress_bar=false",
        "--trainer.enable_checkpointing=false",
        *run.family.args, *extra,
    ]  # fmt: skip
    done = _finished(root / run.name, epochs * run.family.epoch_factor) if skip_done else None
    if done is not None:
        run.final, run.seconds = done
        return run
    start = time.perf_counter()
    with open(root / f"{run.name}.log", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            gan_main(args)
        except SystemExit as exit_:
            run.error = f"exit status {exit_.code}: see {root / run.name}.log"
        except Exception as err:  # noqa: BLE001 - one failed run must not stop the table
            run.error = f"{type(err).__name__}: {err}"
    run.seconds = time.perf_counter() - start
    versions = sorted((root / run.name).glob("version_*/modes.json"), key=lambda p: int(p.parent.name.split("_")[1]))
    if not run.error and not versions:
        run.error = "no modes.json written"
    if not run.error:
        saved = json.loads(versions[-1].read_text())
        run.final = saved["final"]
        versions[-1].write_text(json.dumps({**saved, "seconds": run.seconds}))  # for --skip-done
    return run


def mean_std(values: list[float]) -> str:
    """``mean ± std`` over seeds (std 0 for one seed); NaN values (no HQ sample) are left out and counted."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "n/a"
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    text = f"{statistics.mean(finite):.2f} ± {std:.2f}"
    return text + (f" ({len(values) - len(finite)} n/a)" if len(finite) < len(values) else "")


def results_table(experiment: str, runs: list[Run], n_modes: int, budget: str) -> str:
    """The markdown table: ours (mean ± std over seeds) then the published rows."""
    lines = [
        f"| {experiment} ({n_modes} modes), {budget} | seeds | modes captured | high-quality % | reverse KL |"
        " all modes | s / run |",
        "|---|---|---|---|---|---|---|",
    ]
    for family in dict.fromkeys(r.family for r in runs):
        mine = [r for r in runs if r.family == family and not r.error]
        failed = len([r for r in runs if r.family == family]) - len(mine)
        if not mine:
            lines.append(f"| {family.label} | 0 | failed | | | | |")
            continue
        full = sum(r.final["modes"] == n_modes for r in mine)
        lines.append(
            f"| {family.label} | {len(mine)} | {mean_std([r.final['modes'] for r in mine])} "
            f"| {mean_std([r.final['hq_percent'] for r in mine])} | {mean_std([r.final['reverse_kl'] for r in mine])} "
            f"| {full}/{len(mine)} seeds{f' ({failed} failed)' if failed else ''} "
            f"| {statistics.mean(r.seconds for r in mine):.0f} |"
        )
    for label, modes, hq, rkl in PUBLISHED[experiment]:
        rkl_text = "—" if rkl is None else f"{rkl:.2f}"
        lines.append(f"| *{label}* | | *{modes}* | *{hq}* | *{rkl_text}* | | |")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gan_lab.experiments", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=sorted(PUBLISHED), help="ring (8 Gaussians) or grid (25 Gaussians)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per family (default 5)")
    parser.add_argument("--epochs", type=int, default=100, help="epochs of 100 generator steps (default 100)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one CPU thread each (default 2)")
    parser.add_argument("--families", nargs="*", default=None, help=f"subset of {[f.slug for f in FAMILIES]}")
    parser.add_argument("--report-only", action="store_true", help="only rebuild results.md from finished runs")
    parser.add_argument("--skip-done", action="store_true", help="reuse runs in --out that already finished")
    parser.add_argument("--out", default=None, help="output folder (default runs/<experiment>)")
    parser.add_argument("extra", nargs="*", help="after `--`: extra CLI arguments for every run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    try:
        if args.seeds < 1 or args.epochs < 1 or args.jobs < 1:
            raise LabError("--seeds, --epochs and --jobs must be >= 1")
        slugs = {f.slug for f in FAMILIES}
        unknown = set(args.families or []) - slugs
        if unknown:
            raise LabError(f"unknown families {sorted(unknown)}: choose from {sorted(slugs)}")
    except LabError as err:
        fail(str(err))
    families = [f for f in FAMILIES if args.families is None or f.slug in args.families]
    out = Path(args.out or Path("runs") / args.experiment)
    root = out / "runs"
    root.mkdir(parents=True, exist_ok=True)
    runs = [Run(f, s, f"{args.experiment}-{f.slug}-s{s}") for s in range(args.seeds) for f in families]
    # the slowest first, so that the pool ends together
    runs.sort(key=lambda r: -{"unrolled10": 10, "unrolled5": 5, "wgan": 3}.get(r.family.slug, 1))
    print(f"{len(runs)} runs ({len(families)} families x {args.seeds} seeds), {args.jobs} at a time -> {out}/")
    start = time.perf_counter()
    if args.report_only:  # rebuild the table from the finished runs in --out, run nothing
        runs = [r for r in runs if _load_finished(r, root, args.epochs)]
    with ProcessPoolExecutor(args.jobs, initializer=_init_worker) as pool:
        skip = args.skip_done or args.report_only
        jobs = [pool.submit(run_one, r, args.experiment, root, args.epochs, extra, skip) for r in runs]
        runs = []
        for job in jobs:
            run = job.result()
            runs.append(run)
            status = run.error or f"{run.final['modes']} modes, {run.final['hq_percent']:.1f}% HQ"
            print(f"  {run.name}: {status} ({run.seconds:.0f} s)", flush=True)
    runs.sort(key=lambda r: (families.index(r.family), r.seed))
    n_modes = 8 if args.experiment == "ring" else 25
    budget = f"{args.epochs * 100} generator steps"
    table = results_table(args.experiment, runs, n_modes, budget)
    command = "python -m gan_lab.experiments " + " ".join(argv)
    wall = time.perf_counter() - start
    (out / "results.md").write_text(f"`{command}` ({wall / 60:.1f} min wall, {args.jobs} jobs)\n\n{table}\n")
    for family in families:
        strip = next(
            iter(sorted((root / f"{args.experiment}-{family.slug}-s0").glob("version_*/modes_strip.png"))), None
        )
        if strip is not None:
            shutil.copy(strip, out / f"{args.experiment}_{family.slug}.png")
    print(table)
    print(f"\nwrote {out}/results.md and {out}/{args.experiment}_<family>.png ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
