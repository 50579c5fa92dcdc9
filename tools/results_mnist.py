"""The MNIST sections of ``make results`` (``tools/build_results.py``): the families at equal generator steps and at
equal wall time, the ablations and the metric calibration, each through the real CLI and the shared runner."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

from gan_lab.experiments import make_jobs
from lab.paths import config_dir
from lab.report.page import markdown_table
from lab.runner import Outcome, run_jobs
from lab.stats import format_mean_std

REPO = Path(__file__).resolve().parents[1]
FIGURES = Path("docs") / "results"  # relative to the repository root (RESULTS.md links them)
MNIST_KEYS = ("val/fid", "val/kid", "val/is", "val/classes_covered", "val/class_kl")


def describe_config(path: Path) -> str:
    """A config's own one-line description: its first comment line, after the colon when there is one."""
    first = path.read_text().splitlines()[0].lstrip("# ").rstrip(".")
    return first.split(": ", 1)[1] if ": " in first else first


def mnist_arms(kind: str) -> dict[str, list[Path]]:
    """``families``: every ``configs/gan/*.yaml``; ``ablations``: ``configs/gan/gan.yaml`` then each
    ``configs/ablations/*.yaml``. A new family or ablation is one YAML: no list to edit."""
    configs = config_dir()
    if kind == "families":
        return {path.stem: [path] for path in sorted((configs / "gan").glob("*.yaml"))}
    return {path.stem: [configs / "gan" / "gan.yaml", path] for path in sorted((configs / "ablations").glob("*.yaml"))}


def run_arms(kind: str, opts: argparse.Namespace, root: Path, seconds: float | None = None) -> list[Outcome]:
    """Every arm x seed through the shared runner (runs with an unchanged config are reused): ``opts.epochs``
    epochs' worth of generator steps, or ``seconds`` of wall time each (``--trainer.max_time``). Metrics once, after
    the last epoch (10,000 samples cost seconds per evaluation, which would eat into a time budget)."""
    extra = ["--trainer.accelerator=cpu", "--model.init_args.metrics_every_n_epochs=1000",
             f"--model.init_args.sample_every_n_epochs={opts.epochs}"]  # fmt: skip
    epochs = opts.epochs
    if seconds is not None:
        minutes, secs = divmod(int(seconds), 60)
        extra += [f"--trainer.max_time=00:00:{minutes:02d}:{secs:02d}", "--model.init_args.sample_every_n_epochs=1000"]
        epochs = 1000
    jobs = make_jobs(kind if seconds is None else f"{kind}_time", mnist_arms(kind), opts.seeds, epochs, extra,
                     opts.wandb, kind)  # fmt: skip

    def describe(result: dict) -> str:
        fid, kid, score = (result.get(key, math.nan) for key in ("val/fid", "val/kid", "val/is"))
        return f"FID {fid:.2f}, KID {kid:.4f}, IS {score:.2f}"

    return run_jobs(jobs, root, workers=opts.jobs, describe=describe, reuse=opts.reuse)


def _epochs(values: list[float]) -> str:
    """The epochs every seed ran: one integer when they agree (a step budget), else mean ± std (a time budget)."""
    return str(int(values[0])) if values and len(set(values)) == 1 else format_mean_std(values, 1)


def mnist_table(outcomes: list[Outcome], labels: dict[str, str], first: str) -> str:
    """Mean ± std over seeds of the final metrics of every arm, with its budget (epochs run, generator steps) and
    wall time."""
    header = [first, "seeds", "epochs", "generator steps", "FID ↓ (classifier)", "KID ↓ (classifier)", "IS ↑ (of 10)",
              "classes covered", "KL(classes ‖ U) ↓", "s / run"]  # fmt: skip
    rows = []
    for arm in dict.fromkeys(o.job.labels["family"] for o in outcomes):
        mine = [o for o in outcomes if o.job.labels["family"] == arm and not o.error]

        def column(key: str, mine: list[Outcome] = mine) -> list[float]:
            return [o.result.get(key, math.nan) for o in mine]

        rows.append([
            labels.get(arm, arm), str(len(mine)), _epochs([e + 1 for e in column("epoch")]),
            format_mean_std(column("progress/generator_steps"), 0), format_mean_std(column("val/fid")),
            format_mean_std(column("val/kid"), 4), format_mean_std(column("val/is")),
            format_mean_std(column("val/classes_covered"), 1), format_mean_std(column("val/class_kl"), 3),
            f"{sum(o.seconds for o in mine) / max(len(mine), 1):.0f}",
        ])  # fmt: skip
    return markdown_table(header, rows)


def real_reference(data_dir: str | None = None) -> dict[str, float]:
    """The real-data reference values of the classifier backbone at n = 10,000: train-vs-test FID/KID floor and
    the IS / classes of the test images (what a perfect generator would score)."""
    from datamodules.mnist import floor_draw, mnist_images
    from lab.metrics.image import ImageMetrics

    metrics = ImageMetrics("classifier")
    metrics.update(mnist_images("test", 10000, data_dir).float() / 255, real=True)
    metrics.update(floor_draw(10000, seed=0, data_dir=data_dir)[0].float() / 255, real=False)  # as gan_lab.evaluate
    floor = metrics.compute(seed=0)
    metrics.reset()
    metrics.update(mnist_images("test", 10000, data_dir).float() / 255, real=False)
    real = metrics.compute(seed=0)
    return {"fid_floor": floor["fid"], "kid_floor": floor["kid"], "is_real": real["is"]}


# ---- sections --------------------------------------------------------------------------------------------------------
def section_families(opts: argparse.Namespace, out: Path) -> str:
    outcomes = run_arms("families", opts, out / "runs")
    arms = mnist_arms("families")
    grids = {arm: _latest_sample_grid(out / "runs" / f"families-{arm}-s0") for arm in arms}
    figures = [_publish(path, f"families_{arm}.png") for arm, path in grids.items() if path is not None]
    pictures = " ".join(f"![{Path(p).stem}]({p})" for p in figures)
    ref = real_reference()
    return (
        f"Budget: **{opts.epochs} epochs' worth of generator steps** for every family (an epoch is 859 batches of "
        f"64; families with n_critic critic batches per generator step train n_critic times the epochs, see the "
        f"epochs column), each family's config in `configs/gan/`, CPU, one torch thread per run, {opts.jobs} runs at "
        "a time. Metrics after the last epoch: 10,000 samples vs 10,000 real test images, MNIST-classifier backbone. "
        f"Real-data references at the same n (computed by this section): train-vs-test FID floor "
        f"{ref['fid_floor']:.2f}, KID floor {ref['kid_floor']:.4f}, real test IS {ref['is_real']:.2f}. Not comparable "
        "with Inception FIDs of papers.\n\n"
        f"{mnist_table(outcomes, {}, 'family')}\n\nSeed-0 samples after the budget:\n\n{pictures}\n"
    )


def section_calibration(opts: argparse.Namespace, out: Path) -> str:
    out_text = subprocess.run(
        [sys.executable, str(REPO / "tools" / "calibrate_metrics.py"), "--n", "10000"],
        capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    ).stdout  # fmt: skip
    lines = out_text.strip().splitlines()
    return (
        "FID, KID and IS (classifier backbone) of 10,000 real training digits, damaged as each row says, against the "
        "10,000 test digits (`python tools/calibrate_metrics.py --n 10000`): the undamaged row is the real-vs-real "
        "floor, and each row says what a value of a generator means. "
        + lines[-2].replace("monotone:", "Monotone with the damage (FID, KID up, IS down):")
        + ".\n\n"
        + "\n".join(line for line in lines if line.startswith("|"))
        + "\n"
    )


def section_families_time(opts: argparse.Namespace, out: Path) -> str:
    outcomes = run_arms("families", opts, out / "runs", seconds=opts.family_seconds)
    return (
        f"Budget: **{opts.family_seconds:.0f} s of wall time** per run (`--trainer.max_time`, start-up, data loading "
        f"and checkpoints included; the metrics after it are not), one torch thread per run, {opts.jobs} runs at a "
        "time on 2 CPU cores, each family's config in `configs/gan/`. The epochs and generator-steps columns say how "
        "far each family got; the metrics are those of the equal-steps table.\n\n"
        f"{mnist_table(outcomes, {}, 'family')}\n"
    )


def section_ablations(opts: argparse.Namespace, out: Path) -> str:
    baseline = run_arms("families", opts, out.parent / "families" / "runs")
    base = [o for o in baseline if o.job.labels["family"] == "gan"]
    outcomes = run_arms("ablations", opts, out / "runs")
    labels = {"gan": "baseline: configs/gan/gan.yaml (tanh, latent 100, labels 1.0, BN, no noise)"}
    labels |= {arm: describe_config(files[-1]) for arm, files in mnist_arms("ablations").items()}
    return (
        f"The seed GAN (`configs/gan/gan.yaml`) with one change per row, {opts.epochs} epochs, seeds "
        f"0-{opts.seeds - 1}, the same metrics as the families table (the baseline row *is* its GAN row). Each "
        "row is one YAML fragment in `configs/ablations/`, composed after the GAN's.\n\n"
        + mnist_table(base + outcomes, labels, "GAN (MLP) variant")
        + "\n"
    )


def _latest_sample_grid(run_dir: Path) -> Path | None:
    from lab.report.runs import load_run

    if not list(run_dir.glob("version_*")):
        return None
    return load_run(run_dir).sample_grid()


def _publish(path: Path, name: str) -> str:
    """Copies a figure to docs/results/ and returns its path relative to the repository root (as RESULTS.md links)."""
    target = REPO / FIGURES / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, target)
    return str(FIGURES / name)
