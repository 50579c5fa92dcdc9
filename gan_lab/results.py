"""``make results``: RESULTS.md at the repository root, regenerated from real runs.

    python -m gan_lab.results                          # every section, reusing runs that already finished
    python -m gan_lab.results --sections families ablations --seeds 3 --epochs 3
    python -m gan_lab.results --compose-only           # rebuild RESULTS.md from the section files, run nothing

Sections (each writes ``<out>/<section>/section.md`` and ``section.json`` with its command and wall time; RESULTS.md
is then composed from every section file present, so sections can be (re)run one at a time):

- ``sweep``: the palindrome sweep, vanilla RNN vs LSTM over lengths (``python -m rnn_lab sweep``).
- ``families``: FID / IS / class coverage of GAN, DCGAN, WGAN (clipping), WGAN-GP and the VAE on MNIST after the same
  number of epochs, mean ± std over seeds (the classifier backbone of ``callbacks.metrics``).
- ``ablations``: the seed GAN's ablations (output tanh vs sigmoid with matching data scaling, latent 100 vs 50,
  one-sided label smoothing, generator batch norm, instance noise) against the ``families`` GAN runs (same budget,
  same seeds).
- ``ring`` / ``grid``: the mode-collapse tables of ``python -m gan_lab.experiments`` with the published rows.
- ``bench``: every script in ``bench/``, its printed ratios kept verbatim.

Runs go through the real CLI (``python -m gan_lab fit --config ...``), ``--jobs`` at a time in worker processes of
one torch thread each (2 cores: 2 jobs). Figures that RESULTS.md shows are copied to ``docs/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gan_lab.cli import LabError, fail

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SECTIONS = ("sweep", "families", "ablations", "ring", "grid", "bench")
FIGURES = Path("docs") / "results"  # relative to the repository root (RESULTS.md links them)
MNIST_KEYS = ("val/fid", "val/is", "val/classes_covered", "val/class_kl")


@dataclass(frozen=True)
class Arm:
    """One row of an MNIST table: a label, the family config under configs/gan and extra CLI arguments."""

    label: str
    slug: str
    config: str
    args: tuple[str, ...] = ()


FAMILIES = (
    Arm("GAN (MLP)", "gan", "gan.yaml"),
    Arm("DCGAN", "dcgan", "dcgan.yaml"),
    Arm("WGAN (clipping)", "wgan_clip", "wgan_clip.yaml"),
    Arm("WGAN-GP", "wgan_gp", "wgan.yaml"),
    Arm("VAE", "vae", "vae.yaml"),
)
GEN = "--model.init_args.generator.init_args"
ABLATIONS = (
    Arm("output sigmoid, data in [0, 1] (vs tanh, [-1, 1])", "gan_sigmoid", "gan.yaml",
        (f"{GEN}.output_activation=sigmoid", "--data.init_args.value_range=sigmoid")),
    Arm("latent dim 50 (vs 100)", "gan_latent50", "gan.yaml", (f"{GEN}.latent_dim=50",)),
    Arm("one-sided label smoothing 0.9 (vs 1.0)", "gan_smooth", "gan.yaml", ("--model.init_args.real_label=0.9",)),
    Arm("no generator batch norm (vs batch norm)", "gan_nobn", "gan.yaml", (f"{GEN}.batch_norm=false",)),
    Arm("instance noise σ 0.1 annealed (vs none)", "gan_noise", "gan.yaml",
        ("--model.init_args.instance_noise=0.1",)),
)  # fmt: skip


def _init_worker() -> None:
    import logging

    import torch

    torch.set_num_threads(1)
    for name in ("pytorch_lightning", "lightning_fabric"):  # run details go to each run's log, not the console
        logging.getLogger(name).setLevel(logging.WARNING)


def finished_mnist(run_dir: Path, epochs: int) -> dict[str, float] | None:
    """The final metrics of a run folder whose metrics reached epoch ``epochs - 1``, else None."""
    from gan_lab.report import load_run

    versions = sorted(run_dir.glob("version_*/metrics.csv"))
    if not versions:
        return None
    run = load_run(run_dir)
    rows = [row for row in run.rows if "val/fid" in row]
    if not rows or int(rows[-1].get("epoch", -1)) != epochs - 1:
        return None
    final = {key: rows[-1][key] for key in MNIST_KEYS if key in rows[-1]}
    meta = run.path / "seconds.json"
    final["seconds"] = json.loads(meta.read_text())["seconds"] if meta.is_file() else math.nan
    return final


def run_mnist(arm: Arm, seed: int, root: Path, epochs: int) -> tuple[Arm, int, dict[str, float] | str]:
    """Trains one arm/seed through the real CLI entry in this worker and returns its final metrics (or an error)."""
    from gan_lab.__main__ import main as gan_main

    name = f"{arm.slug}-s{seed}"
    done = finished_mnist(root / name, epochs)
    if done is not None:
        return arm, seed, done
    args = [
        "fit", "--config", str(CONFIGS / "base.yaml"), "--config", str(CONFIGS / "gan" / arm.config),
        f"--seed_everything={seed}", f"--run.root={root}", f"--run.name={name}", "--run.wandb=false",
        f"--trainer.max_epochs={epochs}", "--trainer.enable_progress_bar=false", "--trainer.accelerator=cpu",
        "--model.init_args.sample_every_n_epochs=" + str(epochs), *arm.args,
    ]  # fmt: skip
    start = time.perf_counter()
    with open(root / f"{name}.log", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            gan_main(args)
        except SystemExit as exit_:
            if exit_.code:
                return arm, seed, f"exit status {exit_.code}: see {root / name}.log"
        except Exception as err:  # noqa: BLE001 - one failed run must not stop the table
            return arm, seed, f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    versions = sorted((root / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    if versions:
        (versions[-1] / "seconds.json").write_text(json.dumps({"seconds": seconds}))
    done = finished_mnist(root / name, epochs)
    return arm, seed, done if done is not None else f"no val/fid at epoch {epochs - 1}: see {root / name}.log"


def run_arms(arms: tuple[Arm, ...], seeds: int, epochs: int, root: Path, jobs: int) -> dict[Arm, list[dict]]:
    """Runs every arm x seed (finished runs are reused); returns the final metrics per arm, seeds in order."""
    root.mkdir(parents=True, exist_ok=True)
    results: dict[Arm, list[dict]] = {arm: [] for arm in arms}
    specs = [(arm, seed) for seed in range(seeds) for arm in arms]
    with ProcessPoolExecutor(jobs, initializer=_init_worker) as pool:
        futures = [pool.submit(run_mnist, arm, seed, root, epochs) for arm, seed in specs]
        for future in futures:
            arm, seed, outcome = future.result()
            if isinstance(outcome, str):
                print(f"  {arm.slug} seed {seed}: FAILED {outcome}", flush=True)
                continue
            results[arm].append(outcome)
            print(
                f"  {arm.slug} seed {seed}: FID {outcome.get('val/fid', math.nan):.2f}, "
                f"IS {outcome.get('val/is', math.nan):.2f} ({outcome['seconds']:.0f} s)",
                flush=True,
            )
    return results


def mean_std(values: list[float], digits: int = 2) -> str:
    """``mean ± std`` (sample std; none for one value); NaN values are left out."""
    import statistics

    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def mnist_table(results: dict[Arm, list[dict]], first: str = "run") -> str:
    from gan_lab.report import markdown_table

    header = [first, "seeds", "FID ↓ (classifier)", "IS ↑ (classifier, of 10)", "classes covered", "KL(classes ‖ U) ↓",
              "s / run"]  # fmt: skip
    rows = []
    for arm, finals in results.items():

        def column(key: str, finals: list[dict] = finals) -> list[float]:
            return [f.get(key, math.nan) for f in finals]

        rows.append([
            arm.label, str(len(finals)), mean_std(column("val/fid")), mean_std(column("val/is")),
            mean_std(column("val/classes_covered"), 1), mean_std(column("val/class_kl"), 3),
            mean_std(column("seconds"), 0).split(" ")[0],
        ])  # fmt: skip
    return markdown_table(header, rows)


# ---- sections --------------------------------------------------------------------------------------------------------
def section_families(opts: argparse.Namespace, out: Path) -> str:
    results = run_arms(FAMILIES, opts.seeds, opts.epochs, out / "runs", opts.jobs)
    grid_of = {arm.slug: _latest_sample_grid(out / "runs" / f"{arm.slug}-s0") for arm in FAMILIES}
    figures = [_publish(path, f"families_{slug}.png") for slug, path in grid_of.items() if path is not None]
    pictures = " ".join(f"![{Path(p).stem}]({p})" for p in figures)
    return (
        f"Budget: **{opts.epochs} epochs of the 55,000 MNIST training images** for every family (batch 64, the VAE "
        f"128; WGAN and WGAN-GP take a generator step every 5th batch), each family's default config in "
        f"`configs/gan/`, CPU, one torch thread per run, {opts.jobs} runs at a time. Metrics after the last epoch: "
        "10,000 samples vs 10,000 real test images, MNIST-classifier backbone (real-vs-real FID floor 7.20 at 10k, "
        "real test IS 9.81: see the bench section). Not comparable with Inception FIDs of papers.\n\n"
        f"{mnist_table(results, 'family')}\n\nSeed-0 samples after the budget (GAN, DCGAN, WGAN, WGAN-GP, VAE):\n\n"
        f"{pictures}\n"
    )


def section_ablations(opts: argparse.Namespace, out: Path) -> str:
    baseline = run_arms(FAMILIES[:1], opts.seeds, opts.epochs, out.parent / "families" / "runs", opts.jobs)
    results = run_arms(ABLATIONS, opts.seeds, opts.epochs, out / "runs", opts.jobs)
    base_arm = Arm("baseline: configs/gan/gan.yaml (tanh, latent 100, labels 1.0, BN, no noise)", "gan", "gan.yaml")
    table = mnist_table({base_arm: baseline[FAMILIES[0]], **results}, "GAN (MLP) variant")
    return (
        f"The seed GAN (`configs/gan/gan.yaml`) with one change per row, {opts.epochs} epochs, seeds "
        f"0-{opts.seeds - 1}, the same metrics as the families table (the baseline row *is* its GAN row). Each "
        "row's change is one CLI override (see `ABLATIONS` in `gan_lab/results.py`).\n\n" + table + "\n"
    )


def section_sweep(opts: argparse.Namespace, out: Path) -> str:
    from rnn_lab.sweep import sweep_main

    args = [
        "--lengths", *map(str, opts.sweep_lengths), "--seeds", *map(str, range(opts.seeds)),
        "--cells", "rnn", "lstm", "--max_steps", str(opts.sweep_steps), "--jobs", str(opts.jobs),
        "--root", str(out),
    ]  # fmt: skip
    previous = sorted(out.glob("palindrome-sweep-*/results.md"))
    command = "python -m rnn_lab sweep " + " ".join(args[:-2]) + " --root <out>"
    if previous and opts.reuse and (previous[-1].parent / "args.json").is_file():
        if json.loads((previous[-1].parent / "args.json").read_text()) == args[:-2]:
            run_dir = previous[-1].parent
            return _sweep_text(run_dir, command)
    run_dir = sweep_main(args)
    (run_dir / "args.json").write_text(json.dumps(args[:-2]))
    return _sweep_text(run_dir, command)


def _sweep_text(run_dir: Path, command: str) -> str:
    text = (run_dir / "results.md").read_text().split("\n\n", 1)[1]  # drop its own command line
    figure = _publish(run_dir / "accuracy_vs_length.png", "palindrome_sweep.png")
    return f"`{command}`\n\n{text.strip()}\n\n![accuracy vs length]({figure})\n"


def section_mixture(experiment: str, opts: argparse.Namespace, out: Path) -> str:
    from gan_lab.experiments import FAMILIES as MIX_FAMILIES
    from gan_lab.experiments import main as experiments_main

    args = [experiment, "--seeds", str(opts.mixture_seeds), "--epochs", str(opts.mixture_epochs), "--jobs",
            str(opts.jobs), "--out", str(out), "--families", *opts.mixture_families]  # fmt: skip
    experiments_main([*args, "--skip-done"] if opts.reuse else args)
    table = (out / "results.md").read_text().split("\n\n", 1)[1]
    strips = []
    for family in MIX_FAMILIES:
        png = out / f"{experiment}_{family.slug}.png"
        if family.slug in opts.mixture_families and png.is_file():
            strips.append(f"**{family.label}** (seed 0)\n\n![{family.label}]({_publish(png, png.name)})")
    return table.strip() + "\n\n" + "\n\n".join(strips) + "\n"


BENCHES = (  # (script, arguments, torch threads): 2 threads (both cores) unless the row says otherwise
    ("bench/fid.py", (), 2),
    ("bench/gan_throughput.py", ("--batches", "150", "--repeats", "5"), 1),
    ("bench/gan_throughput.py", ("--batches", "150", "--repeats", "5"), 2),
    ("bench/mnist_pipeline.py", (), 2),
    ("bench/palindrome_gen.py", (), 2),
    ("bench/rnn_cells.py", (), 2),
    ("bench/ddp_overhead.py", (), 2),
)


def section_bench(opts: argparse.Namespace, out: Path) -> str:
    parts = []
    for script, args, threads in BENCHES:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        command = " ".join([f"OMP_NUM_THREADS={threads}", "python", script, *args])
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, script, *args], cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        output = proc.stdout.strip() if proc.returncode == 0 else f"FAILED (exit {proc.returncode}):\n{proc.stderr}"
        lines = [line for line in output.splitlines() if "Warning" not in line and "warn(" not in line]
        parts.append(f"`{command}` ({wall:.0f} s)\n\n```\n" + "\n".join(lines) + "\n```")
        print(f"  {command}: {wall:.0f} s", flush=True)
    return "\n\n".join(parts) + "\n"


# ---- helpers ---------------------------------------------------------------------------------------------------------
def _latest_sample_grid(run_dir: Path) -> Path | None:
    from gan_lab.report import load_run

    if not list(run_dir.glob("version_*")):
        return None
    return load_run(run_dir).sample_grid()


def _publish(path: Path, name: str) -> str:
    """Copies a figure to docs/results/ and returns its path relative to the repository root (as RESULTS.md links)."""
    target = REPO / FIGURES / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, target)
    return str(FIGURES / name)


TITLES = {
    "sweep": "Vanilla RNN vs LSTM on palindromes",
    "families": "MNIST: GAN families and the VAE (FID, IS, class coverage)",
    "ablations": "Seed ablations of the MLP GAN on MNIST",
    "ring": "Mode collapse: 8-ring of Gaussians",
    "grid": "Mode collapse: 25-grid of Gaussians",
    "bench": "Benchmarks",
}


def compose(out: Path, target: Path) -> str:
    """RESULTS.md from every ``<out>/<section>/section.md`` present (sections in ``SECTIONS`` order)."""
    blocks, total = [], 0.0
    for name in SECTIONS:
        meta_path = out / name / "section.json"
        if not meta_path.is_file():
            continue
        meta = json.loads(meta_path.read_text())
        total += meta["seconds"]
        body = (out / name / "section.md").read_text()
        blocks.append(
            f"## {TITLES[name]}\n\nRegenerate: `{meta['command']}` ({meta['seconds'] / 60:.1f} min wall on "
            f"{meta['machine']}, {meta['date']})\n\n{body}"
        )
    if not blocks:
        raise LabError(f"no finished section under {out}: run `python -m gan_lab.results` first")
    text = (
        "# RESULTS\n\n"
        "Every number on this page comes from runs of this repository, regenerated by `make results` "
        f"(`python -m gan_lab.results`; the sections below took {total / 60:.0f} min wall in all, each section's "
        "command and time beside it; finished runs are reused, so a re-run only trains what is missing). "
        "Budgets are small on purpose (2 CPU cores): they are stated with each table, and the tables compare runs "
        "under the same budget, not converged models. Published rows, where shown, are in italics with their own "
        "(much longer) budgets.\n\n" + "\n".join(blocks)
    )
    target.write_text(text)
    return text


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gan_lab.results", description=__doc__.split("\n\n")[0])
    parser.error = fail  # type: ignore[method-assign]
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), help=f"any of {', '.join(SECTIONS)}")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per MNIST arm and per sweep point (default 3)")
    parser.add_argument("--epochs", type=int, default=2, help="MNIST epochs per family and ablation run (default 2)")
    parser.add_argument("--sweep-lengths", type=int, nargs="+", default=[10, 20, 30, 50, 100])
    parser.add_argument("--sweep-steps", type=int, default=3000, help="step budget per sweep run (default 3000)")
    parser.add_argument("--mixture-seeds", type=int, default=5)
    parser.add_argument("--mixture-epochs", type=int, default=100, help="epochs of 100 generator steps")
    parser.add_argument("--mixture-families", nargs="+", default=["gan", "wgan", "unrolled10", "madgan"])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one torch thread each (default 2)")
    parser.add_argument("--out", default="runs/results", help="where runs and section files go")
    parser.add_argument("--target", default="RESULTS.md", help="the page to write")
    parser.add_argument("--fresh", dest="reuse", action="store_false", help="retrain instead of reusing finished runs")
    parser.add_argument("--compose-only", action="store_true", help="only rebuild the page from the section files")
    opts = parser.parse_args(argv)
    unknown = sorted(set(opts.sections) - set(SECTIONS))
    if unknown:
        fail(f"unknown sections {unknown}: choose from {', '.join(SECTIONS)}")
    numbers = ("seeds", "epochs", "sweep_steps", "mixture_seeds", "mixture_epochs", "jobs")
    if min(getattr(opts, name) for name in numbers) < 1 or min(opts.sweep_lengths) < 2:
        fail(
            "--seeds, --epochs, --sweep-steps, --mixture-seeds, --mixture-epochs and --jobs must be >= 1, lengths >= 2"
        )
    return opts


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = parse_args(argv)
    out = Path(opts.out)
    if not opts.compose_only:
        import platform

        machine = f"{os.cpu_count()} CPU cores ({platform.machine()})"
        for name in [s for s in SECTIONS if s in opts.sections]:
            print(f"== {name}: {TITLES[name]}", flush=True)
            start = time.perf_counter()
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            if name in ("ring", "grid"):
                body = section_mixture(name, opts, folder)
            else:
                body = globals()[f"section_{name}"](opts, folder)
            seconds = time.perf_counter() - start
            (folder / "section.md").write_text(body)
            command = "python -m gan_lab.results " + " ".join([*argv_without_sections(argv), "--sections", name])
            meta = {"command": command, "seconds": seconds, "machine": machine, "date": time.strftime("%Y-%m-%d")}
            (folder / "section.json").write_text(json.dumps(meta))
    try:
        compose(out, Path(opts.target))
    except LabError as err:
        fail(str(err))
    print(f"wrote {opts.target}")


def argv_without_sections(argv: list[str]) -> list[str]:
    """``argv`` without ``--sections a b ...`` (each section file names only its own section)."""
    kept, skipping = [], False
    for arg in argv:
        if arg == "--sections":
            skipping = True
            continue
        if skipping and not arg.startswith("--"):
            continue
        skipping = False
        kept.append(arg)
    return kept


if __name__ == "__main__":
    main()
