"""Mode-collapse experiments: every family x several seeds on the 8-ring or the 25-grid, one results table.

    python -m gan_lab.experiments ring                 # `make ring`: every family x 5 seeds, 2 runs at a time
    python -m gan_lab.experiments grid --seeds 3 --epochs 10 --families gan wgan

Families are the YAML files of ``configs/mixtures/`` that define a model (the others, ``ring.yaml`` and
``grid.yaml``, are the data): ``<family>.yaml``, and ``<family>.<variant>.yaml`` composed after it (e.g.
``unrolled.k10.yaml``). A new family is one YAML there. Each run is the real CLI entry (``python -m gan_lab fit
--config configs/base.yaml --config configs/mixtures/<exp>.yaml --config configs/mixtures/<family>.yaml``) in
``lab.runner`` workers of one thread each; a run whose resolved config is unchanged is reused. Every family makes
the same number of generator steps: its epochs are multiplied by its ``n_critic``, read from its config.
The ``MixtureModes`` callback writes ``modes.json`` and ``modes_strip.png`` in each run directory; this script
gathers them into ``<out>/results.md`` (mean ± std over seeds, published rows beside ours) and
``<out>/<exp>_<family>.png`` (the strip of seed 0).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from lab.errors import LabError, fail
from lab.paths import config_dir
from lab.runner import Job, Outcome, resolved_config, run_jobs
from lab.stats import format_mean_std

EXPERIMENTS = {"ring": 8, "grid": 25}  # data config -> modes
DEFAULT_EPOCHS = 100  # epochs of 100 batches: 10,000 generator steps
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


def families(folder: Path | None = None) -> dict[str, list[Path]]:
    """Family name -> the config files that define it (``<base>.yaml`` then ``<base>.<variant>.yaml``)."""
    folder = folder or config_dir() / "mixtures"
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*.yaml")):
        if "model" not in (yaml.safe_load(path.read_text()) or {}) and "." not in path.stem:
            continue  # a data config (ring, grid)
        base = path.stem.split(".")[0]
        found[path.stem] = [folder / f"{base}.yaml", *([path] if path.stem != base else [])]
    return found


def fit_run(
    config: dict[str, Any], run_dir: Path, resume: bool = False, wandb: bool = False, group: str = ""
) -> dict[str, Any]:
    """Runner target: trains one run through the real CLI entry (``config["args"]`` after ``fit``), continuing from
    its ``last.ckpt`` when a killed attempt left one (``resume``); returns its final metrics: the last
    ``modes.json`` stats when the run wrote one, else the last ``val/`` row of ``metrics.csv``."""
    from gan_lab.__main__ import main as gan_main
    from lab.report.runs import load_run

    run = [f"--run.root={run_dir.parent}", f"--run.name={run_dir.name}", f"--run.wandb={str(wandb).lower()}"]
    if wandb:
        run += [f"--run.group={group}", f"--run.job_type={config['family']}", f"--run.tags=[{group}]"]
    if resume and list(run_dir.glob("version_*/checkpoints/last.ckpt")):
        run.append("--ckpt_path=last")  # the same version folder and W&B run, from the last epoch it finished
    gan_main(["fit", *config["args"], *run])
    versions = sorted(run_dir.glob("version_*/modes.json"), key=lambda p: int(p.parent.name.split("_")[1]))
    if versions:
        return json.loads(versions[-1].read_text())["final"]
    rows = [row for row in load_run(run_dir).rows if any(key.startswith("val/") for key in row)]
    if not rows:
        raise RuntimeError("the run logged no val/ metrics")
    keep = ("val/", "time/", "progress/")
    return {key: value for key, value in rows[-1].items() if key.startswith(keep) or key == "epoch"}


def make_jobs(
    prefix: str,
    arms: dict[str, list[Path]],
    seeds: int,
    epochs: int,
    extra: list[str],
    wandb: bool,
    group: str,
    tag: str = "",
) -> list[Job]:
    """One job per arm (a name and the config files composed after base.yaml) and seed, named
    ``<prefix>-<arm><tag>-s<seed>``, with the config as the CLI resolves it (the reuse key). Each arm trains
    ``epochs`` times its ``n_critic``: every arm makes the same number of generator steps."""
    from gan_lab.__main__ import main as gan_main

    base = config_dir() / "base.yaml"
    jobs = []
    for name, files in arms.items():
        args = [f"--config={path}" for path in (base, *files)] + ["--trainer.enable_progress_bar=false", *extra]
        n_critic = resolved_config(gan_main, args)["model"]["init_args"].get("n_critic", 1)
        for seed in range(seeds):
            run_args = [*args, f"--seed_everything={seed}", f"--trainer.max_epochs={epochs * n_critic}"]
            config = {"family": name, "args": run_args, "resolved": resolved_config(gan_main, run_args)}
            jobs.append(
                Job(run_name(prefix, name, seed, tag), "gan_lab.experiments:fit_run", config,
                    labels={"family": name, "seed": seed}, options={"wandb": wandb, "group": group})
            )  # fmt: skip
    return jobs


def results_table(experiment: str, outcomes: list[Outcome], budget: str) -> str:
    """The markdown table: ours (mean ± std over seeds) then the published rows."""
    n_modes = EXPERIMENTS[experiment]
    lines = [
        f"| {experiment} ({n_modes} modes), {budget} | seeds | modes captured | modes (strict) | high-quality % |"
        " reverse KL | all modes | s / run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family in dict.fromkeys(o.job.labels["family"] for o in outcomes):
        mine = [o for o in outcomes if o.job.labels["family"] == family and not o.error]
        failed = len([o for o in outcomes if o.job.labels["family"] == family]) - len(mine)
        if not mine:
            lines.append(f"| {family} | 0 | failed | | | | | |")
            continue
        full = sum(o.result["modes"] == n_modes for o in mine)
        keys = ("modes", "modes_strict", "hq_percent", "reverse_kl")  # modes_strict: "–" for runs made before it
        column = {key: format_mean_std([o.result.get(key, math.nan) for o in mine]) for key in keys}
        seconds = sum(o.seconds for o in mine) / len(mine)
        lines.append(
            f"| {family} | {len(mine)} | {column['modes']} | {column['modes_strict']} | {column['hq_percent']} "
            f"| {column['reverse_kl']} "
            f"| {full}/{len(mine)} seeds{f' ({failed} failed)' if failed else ''} | {seconds:.0f} |"
        )
    for label, modes, hq, rkl in PUBLISHED[experiment]:
        rkl_text = "—" if rkl is None else f"{rkl:.2f}"
        lines.append(f"| *{label}* | | *{modes}* | | *{hq}* | *{rkl_text}* | | |")
    return "\n".join(lines)


def budget_tag(epochs: int) -> str:
    """``""`` for the default budget, else ``-e<epochs>``: part of every run folder's name (``grid-gan-e1000-s0``),
    so runs of two budgets never share a folder, whatever ``--out`` says."""
    return "" if epochs == DEFAULT_EPOCHS else f"-e{epochs}"


def run_name(prefix: str, arm: str, seed: int, tag: str = "") -> str:
    """The run folder of one arm and seed: ``<prefix>-<arm><tag>-s<seed>`` (the tag: ``budget_tag``, or none)."""
    return f"{prefix}-{arm}{tag}-s{seed}"


def default_out(experiment: str, epochs: int) -> Path:
    """``runs/<experiment>``, or ``runs/<experiment>-e<epochs>`` for another budget than the default 100 epochs, so
    each budget has its own results.md and strips."""
    return Path("runs") / f"{experiment}{budget_tag(epochs)}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gan_lab.experiments", description=__doc__.split("\n\n")[0])
    parser.error = fail  # type: ignore[method-assign]  # one line, exit 2
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS), help="ring (8 Gaussians) or grid (25 Gaussians)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per family (default 5)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="epochs of 100 generator steps (100)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one CPU thread each (default 2)")
    parser.add_argument("--families", nargs="*", default=None, help="subset of the families in configs/mixtures/")
    parser.add_argument("--rerun", action="store_true", help="train again even runs whose config is unchanged")
    parser.add_argument("--wandb", action=argparse.BooleanOptionalAction, default=True,
                        help="log every run to W&B, grouped by experiment (offline without a key)")  # fmt: skip
    parser.add_argument("--out", default=None,
                        help="output folder (runs/<experiment>; runs/<experiment>-e<N> for --epochs N)")  # fmt: skip
    parser.add_argument("extra", nargs="*", help="after `--`: extra CLI arguments for every run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    try:
        if args.seeds < 1 or args.epochs < 1 or args.jobs < 1:
            raise LabError("--seeds, --epochs and --jobs must be >= 1")
        known = families()
        unknown = sorted(set(args.families or []) - set(known))
        if unknown:
            raise LabError(f"unknown families {unknown}: choose from {sorted(known)}")
    except LabError as err:
        fail(str(err))
    names = [name for name in known if args.families is None or name in args.families]
    out = Path(args.out or default_out(args.experiment, args.epochs))
    root = out / "runs"
    start = time.perf_counter()
    data = config_dir() / "mixtures" / f"{args.experiment}.yaml"
    arms = {name: [data, *known[name]] for name in names}
    tag = budget_tag(args.epochs)
    jobs = make_jobs(args.experiment, arms, args.seeds, args.epochs, extra, args.wandb, args.experiment, tag)
    # seed by seed (a set stopped part-way has every family at the same seeds), the slowest first within a seed
    jobs.sort(key=lambda job: (job.labels["seed"], -job.config["resolved"]["trainer"]["max_epochs"]))
    print(f"{len(jobs)} runs ({len(names)} families x {args.seeds} seeds), {args.jobs} at a time -> {out}/")

    def describe(result: dict) -> str:
        return f"{result['modes']} modes, {result['hq_percent']:.1f}% HQ, reverse KL {result['reverse_kl']:.2f}"

    outcomes = run_jobs(jobs, root, workers=args.jobs, describe=describe, reuse=not args.rerun)
    outcomes.sort(key=lambda o: (names.index(o.job.labels["family"]), o.job.labels["seed"]))
    table = results_table(args.experiment, outcomes, f"{args.epochs * 100} generator steps")
    command = "python -m gan_lab.experiments " + " ".join(argv)
    wall = time.perf_counter() - start
    (out / "results.md").write_text(f"`{command}` ({wall / 60:.1f} min wall, {args.jobs} jobs)\n\n{table}\n")
    (out / "results.json").write_text(json.dumps([{**o.job.labels, **o.result, "seconds": o.seconds,
                                                   "error": o.error} for o in outcomes], indent=1))  # fmt: skip
    for name in names:
        strip = root / run_name(args.experiment, name, 0, tag)
        strip = next(iter(sorted(strip.glob("version_*/modes_strip.png"))), None)
        if strip is not None:
            shutil.copy(strip, out / f"{args.experiment}_{name}.png")
    if args.wandb:
        from lab.loggers import log_group_table

        log_group_table(args.experiment, out, [{**o.job.labels, **o.result} for o in outcomes if not o.error])
    print(table)
    print(f"\nwrote {out}/results.md and {out}/{args.experiment}_<family>.png ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
