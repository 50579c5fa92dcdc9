"""``make results``: RESULTS.md at the repository root, regenerated from real runs (a tool, not part of the library).

    python tools/build_results.py                      # every section, reusing runs whose config is unchanged
    python tools/build_results.py --sections families ablations --seeds 3 --epochs 3
    python tools/build_results.py --compose-only       # rebuild RESULTS.md from the section files, run nothing

Sections (each writes ``<out>/<section>/section.md`` and ``section.json`` with its command and wall time; RESULTS.md
is then composed from every section file present, so sections can be (re)run one at a time):

- ``sweep``: RNN vs LSTM over palindrome lengths (``python -m rnn_lab sweep``); ``ring`` / ``grid``: the
  mode-collapse tables of ``python -m gan_lab.experiments``, ``grid_long`` the grid at ``--long-epochs`` (400,000
  steps, the protocol's) for ``--long-families``; ``bench``: every ``bench/`` script's output verbatim;
- ``families`` / ``ablations``: FID / KID / IS / class coverage on MNIST of every ``configs/gan/*.yaml``, and of
  ``configs/gan/gan.yaml`` with each ``configs/ablations/*.yaml``, at equal generator steps, mean ± std over seeds.

Runs go through the real CLI and ``lab.runner`` (``--jobs`` workers of one torch thread each; a run whose resolved
config is unchanged is reused). Figures that RESULTS.md shows are copied to ``docs/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the section modules beside this file
import results_mnist  # noqa: E402
import results_modes  # noqa: E402
from results_mnist import _publish, describe_config, mnist_arms, mnist_table  # noqa: E402, F401 (API of this tool)

from gan_lab.experiments import families as mixture_families  # noqa: E402
from lab.errors import LabError, fail  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("sweep", "calibration", "families", "families_time", "ablations", "ring", "grid", "grid_long", "stacked")
SECTIONS += ("bench",)


def section_sweep(opts: argparse.Namespace, out: Path) -> str:
    """The sweep with the default config (orthogonal init, Adam 1e-3), the init ablation (both inits at Adam 2e-3,
    stopped right at the target: the sweep as it first ran) and the learning-rate search between them."""
    import lr_search

    from rnn_lab.sweep import sweep_main

    common = [
        "--lengths", *map(str, opts.sweep_lengths), "--seeds", *map(str, range(opts.sweep_seeds)),
        "--cells", "rnn", "lstm", "gru", "--max_steps", str(opts.sweep_steps), "--jobs", str(opts.jobs),
        *([] if opts.reuse else ["--rerun"]), "--wandb" if opts.wandb else "--no-wandb",
    ]  # fmt: skip
    ablation = ["--recurrent_init", "default", "orthogonal", "--lr", "2e-3", "--settle", "0"]
    main_text = _sweep_text(sweep_main([*common, "--root", str(out)]), common, "palindrome_sweep.png")
    ablation_dir = sweep_main([*common, *ablation, "--root", str(out / "ablation-lr2e-3")])
    ablation_text = _sweep_text(ablation_dir, [*common, *ablation], "palindrome_init_ablation.png")
    points, rates, search_root = lr_search.parse_points(lr_search.POINTS), lr_search.RATES, out / "lr-search"
    lr_search.run_search(points, rates, [0, 1], search_root, opts.jobs)  # runs already finished are reused
    folders = [search_root / f"lr{rate}" / "palindrome-sweep" for rate in rates] + [ablation_dir]
    table = lr_search.table(points, rates, [0, 1], folders)
    return (
        f"**Default config** (orthogonal recurrent init, Adam 1e-3 for every cell, 200 steps past the target):\n\n"
        f"{main_text}\n**Learning-rate search** (`python tools/lr_search.py`: 2 seeds per rate at the first length "
        f"each cell failed at Adam 2e-3; seeds that reached 99.5% validation, the rate being chosen on validation, and "
        f"their median steps to it):\n\n{table}\n"
        f"**Init ablation at Adam 2e-3** (default vs orthogonal recurrent init, the sweep as first run: every cell at "
        f"2e-3, a run stopped right at the target):\n\n{ablation_text}"
    )


def _sweep_text(run_dir: Path, args: list[str], figure_name: str) -> str:
    text = (run_dir / "results.md").read_text().split("\n\n", 1)[1]  # drop its own command line
    figure = _publish(run_dir / "accuracy_vs_length.png", figure_name)
    command = "python -m rnn_lab sweep " + " ".join(arg for arg in args if arg not in ("--no-wandb", "--wandb"))
    return f"`{command}`\n\n{text.strip()}\n\n![accuracy vs length]({figure})\n"


def mixture_folder(section: Path, opts: argparse.Namespace, long: bool) -> Path:
    """Where a mixture section's experiment writes (results.md, results.json, strips, runs): the section folder, or
    ``<section>/e<--long-epochs>`` for ``grid_long`` (one folder per budget)."""
    return section / f"e{opts.long_epochs}" if long else section


def section_mixture(experiment: str, opts: argparse.Namespace, out: Path, long: bool = False) -> str:
    """The table and seed-0 strips of ``python -m gan_lab.experiments <experiment>``; ``long``: the grid at
    ``--long-epochs`` for ``--long-families``, its runs in ``<out>/e<epochs>`` (one folder per budget) and its strips
    published as ``grid_long_<family>.png``."""
    from gan_lab.experiments import main as experiments_main

    epochs, families = (opts.long_epochs, opts.long_families) if long else (opts.mixture_epochs, opts.mixture_families)
    out = mixture_folder(out, opts, long)
    args = [experiment, "--seeds", str(opts.mixture_seeds), "--epochs", str(epochs), "--jobs", str(opts.jobs),
            "--out", str(out), "--families", *families]  # fmt: skip
    experiments_main([*args, *([] if opts.reuse else ["--rerun"]), "--wandb" if opts.wandb else "--no-wandb"])
    table = (out / "results.md").read_text().split("\n\n", 1)[1]
    strips = []
    for family in mixture_families():
        png = out / f"{experiment}_{family}.png"
        if family in families and png.is_file():
            name = f"grid_long_{family}.png" if long else png.name
            strips.append(f"**{family}** (seed 0)\n\n![{family}]({_publish(png, name)})")
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
TITLES = {
    "sweep": "Vanilla RNN vs LSTM on palindromes",
    "calibration": "What the MNIST metrics mean: real digits under known damage",
    "families": "MNIST: GAN families and the VAE (FID, KID, IS, class coverage)",
    "families_time": "MNIST: the families at equal wall time",
    "ablations": "Seed ablations of the MLP GAN on MNIST",
    "ring": "Mode collapse: 8-ring of Gaussians",
    "grid": "Mode collapse: 25-grid of Gaussians",
    "grid_long": "Mode collapse: 25-grid at a longer budget",
    "stacked": "Mode collapse: Stacked MNIST on CPU",
    "bench": "Benchmarks",
}


def section_cost(meta: dict) -> tuple[float, str]:
    """A section's time in seconds and in words. A mixture section records what its runs took (``run_seconds``, one
    thread each, ``jobs`` at a time), reused runs included, so a rebuild that reuses every run still states what
    training them cost: the runs' total over ``jobs``, when that is more than the rebuild's own wall time."""
    if "run_seconds" not in meta:
        return meta["seconds"], f"{meta['seconds'] / 60:.1f} min wall"
    seconds = max(meta["seconds"], meta["run_seconds"] / meta["jobs"])
    return seconds, f"{seconds / 60:.1f} min wall: runs of {meta['run_seconds'] / 60:.0f} min, {meta['jobs']} at a time"


def compose(out: Path, target: Path) -> str:
    """RESULTS.md from every ``<out>/<section>/section.md`` present (sections in ``SECTIONS`` order)."""
    blocks, total = [], 0.0
    for name in SECTIONS:
        meta_path = out / name / "section.json"
        if not meta_path.is_file():
            continue
        meta = json.loads(meta_path.read_text())
        seconds, cost = section_cost(meta)
        total += seconds
        body = (out / name / "section.md").read_text()
        blocks.append(
            f"## {TITLES[name]}\n\nRegenerate: `{meta['command']}` ({cost} on {meta['machine']}, {meta['date']})"
            f"\n\n{body}"
        )
    if not blocks:
        raise LabError(f"no finished section under {out}: run `python tools/build_results.py` first")
    text = (
        "# RESULTS\n\n"
        "Every number on this page comes from runs of this repository, regenerated by `make results` "
        f"(`python tools/build_results.py`; the sections below took {total / 60:.0f} min wall in all, each section's "
        "command and time beside it; finished runs are reused, so a re-run only trains what is missing). "
        "Budgets are small on purpose (2 CPU cores): they are stated with each table, and the tables compare runs "
        "under the same budget, not converged models. Published rows, where shown, are in italics with their own "
        "(much longer) budgets.\n\n" + "\n".join(blocks)
    )
    target.write_text(text)
    return text


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python tools/build_results.py", description=__doc__.split("\n\n")[0])
    parser.error = fail  # type: ignore[method-assign]
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), help=f"any of {', '.join(SECTIONS)}")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per MNIST arm (default 3)")
    parser.add_argument("--epochs", type=int, default=2, help="MNIST epochs per family and ablation run (default 2)")
    parser.add_argument("--family-seconds", type=float, default=150.0, help="wall time per run of families_time")
    parser.add_argument("--sweep-lengths", type=int, nargs="+", default=[10, 20, 30, 50, 75, 100, 150, 200])
    parser.add_argument("--sweep-seeds", type=int, default=5, help="seeds per sweep point (default 5)")
    parser.add_argument("--sweep-steps", type=int, default=20_000, help="step cap per sweep run (default 20000)")
    parser.add_argument("--mixture-seeds", type=int, default=5)
    parser.add_argument("--stacked-seeds", type=int, default=3, help="seeds per Stacked MNIST variant (default 3)")
    parser.add_argument("--stacked-unrolled", action="store_true",
                        help="also train the Stacked MNIST Unrolled k = 5 row (10x a DCGAN run on CPU)")  # fmt: skip
    parser.add_argument("--mixture-epochs", type=int, default=100, help="epochs of 100 generator steps")
    parser.add_argument("--mixture-families", nargs="+", default=["gan", "wgan", "unrolled.k10", "madgan"])
    parser.add_argument("--long-epochs", type=int, default=4000,
                        help="grid_long: epochs of 100 steps (default 4000: the protocol's 400,000 steps)")  # fmt: skip
    parser.add_argument("--long-families", nargs="+", default=["pacgan.m4"], help="grid_long's families")
    parser.add_argument("--wandb", action=argparse.BooleanOptionalAction, default=True,
                        help="log every run to W&B, grouped by section (offline without a key)")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one torch thread each (default 2)")
    parser.add_argument("--out", default="runs/results", help="where runs and section files go")
    parser.add_argument("--target", default="RESULTS.md", help="the page to write")
    parser.add_argument("--fresh", dest="reuse", action="store_false", help="retrain instead of reusing finished runs")
    parser.add_argument("--compose-only", action="store_true", help="only rebuild the page from the section files")
    opts = parser.parse_args(argv)
    unknown = sorted(set(opts.sections) - set(SECTIONS))
    if unknown:
        fail(f"unknown sections {unknown}: choose from {', '.join(SECTIONS)}")
    numbers = ("seeds", "epochs", "stacked_seeds", "sweep_seeds", "sweep_steps", "mixture_seeds", "mixture_epochs")
    numbers += ("jobs", "long_epochs")
    if min(getattr(opts, name) for name in numbers) < 1 or min(opts.sweep_lengths) < 2:
        fail(
            "--seeds, --epochs, --sweep-steps, --mixture-seeds, --mixture-epochs, --long-epochs and --jobs must be "
            ">= 1, lengths >= 2"
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
            run_seconds = None
            if name in ("ring", "grid", "grid_long"):
                long = name == "grid_long"
                body = section_mixture(name.removesuffix("_long"), opts, folder, long=long)
                results = mixture_folder(folder, opts, long) / "results.json"
                run_seconds = sum(run["seconds"] for run in json.loads(results.read_text()))
            else:
                module = results_modes if name == "stacked" else results_mnist
                section = getattr(module, f"section_{name}", None) or globals()[f"section_{name}"]
                body = section(opts, folder)
            seconds = time.perf_counter() - start
            (folder / "section.md").write_text(body)
            command = "python tools/build_results.py " + " ".join([*argv_without_sections(argv), "--sections", name])
            meta = {"command": command, "seconds": seconds, "machine": machine, "date": time.strftime("%Y-%m-%d")}
            if run_seconds is not None:  # what the runs took, reused ones included: the section's real cost
                meta.update(run_seconds=run_seconds, jobs=opts.jobs)
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
