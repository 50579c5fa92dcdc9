"""``python -m lab experiment run|table``: the experiment launcher (on Ray) and the table builder.

python -m lab experiment run experiments/ring.yaml --seeds 0 1 --set trainer.max_epochs=2
python -m lab experiment run experiments/grid.yaml --address ray://head:10001
python -m lab experiment table experiments/ring.yaml
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from lab.errors import LabError, check_output_folder, fail


def experiment_path(name: str) -> Path:
    """``experiments/<name>.yaml`` for a bare name (``make experiment E=ring``), else the path as given."""
    path = Path(name)
    return path if path.suffix in (".yaml", ".yml") or path.exists() else Path("experiments") / f"{name}.yaml"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m lab", description="Experiments as data, on Ray.")
    top.error = fail  # type: ignore[method-assign]
    sub = top.add_subparsers(dest="group", required=True, metavar="experiment|results")
    page = sub.add_parser("results", help="RESULTS.md from the run records of every experiment (make results)")
    page.error = fail  # type: ignore[method-assign]
    page.add_argument("--out", default="RESULTS.md", help="where to write the page (RESULTS.md)")
    page.add_argument("--check", action="store_true", help="exit 1 when the page differs from what it would be")
    exp = sub.add_parser("experiment", help="run an experiment or build its table")
    exp.error = fail  # type: ignore[method-assign]
    verbs = exp.add_subparsers(dest="verb", required=True, metavar="run|table")
    run = verbs.add_parser("run", help="run every variant x seed of an experiment on Ray (finished runs reused)")
    table = verbs.add_parser("table", help="the experiment's table (markdown, CSV, figure) from its run records")
    for p in (run, table):
        p.error = fail  # type: ignore[method-assign]
        p.add_argument("experiment", help="experiments/<name>.yaml, or just <name>")
        p.add_argument(
            "--set",
            nargs="+",
            default=[],
            metavar="KEY=VALUE",
            help="override for every run, as on the fit CLI without the dashes (trainer.max_epochs=2)",
        )
        p.add_argument("--results", default="results", help="folder of the run records and tables (results)")
    run.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds to run (default: the experiment's)")
    run.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="variants to run, or shell-style patterns such as 'lstm.*.L500' (default: all)",
    )
    run.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="an existing Ray cluster (default $RAY_ADDRESS; none: a private local instance)",
    )
    run.add_argument("--runs", default="runs", help="folder of the run folders and checkpoints (runs)")
    run.add_argument(
        "--cpus",
        type=positive_int,
        default=None,
        help="Ray CPUs and torch threads per run, in place of the experiment's cpus (1); not part of a run's config, "
        "so finished records are reused either way",
    )
    run.add_argument("--rerun-stale", action="store_true", help="run again the records made by other code")
    run.add_argument(
        "--leave-out",
        action="store_true",
        help="leave out the runs the experiment's leave_out rule allows: those beyond a length where their arm's "
        "success rate has a Wilson upper bound below its level (from the records, seed by seed)",
    )
    run.add_argument(
        "--wandb",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="W&B for every run (default: as each run's config says)",
    )
    return top


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


COMMANDS = """usage: python -m lab <command> ...
  experiment run EXPERIMENT     run every variant x seed of an experiment on Ray (finished runs reused)
  experiment table EXPERIMENT   the experiment's table (markdown, CSV, figure) from its run records
  results                       RESULTS.md from the run records of every experiment
(python -m lab <command> --help for its options)"""


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv == ["experiment"]:
        print(COMMANDS, file=sys.stderr)
        raise SystemExit(2)
    args = parser().parse_args(argv)
    if args.group == "results":
        from lab.experiment.results import write

        return write(Path(args.out), args.check)
    from lab.experiment import spec as specs
    from lab.experiment import table

    try:
        exp = specs.load(experiment_path(args.experiment))
        extra = specs.parse_sets(args.set)
        results = check_output_folder(args.results, "--results")
        if args.verb == "table":
            first = exp.runs(extra=extra)[0]
            text, folder = table.build(exp, results, first.instance, first.overrides)
            print(text + f"\nwrote {folder}/table.md, table.csv and {exp.name}.png")
            return
        if args.cpus and not args.address:
            from lab.experiment.launch import local_cpus

            if args.cpus > (usable := local_cpus()):
                raise LabError(f"--cpus {args.cpus}: this launcher may use {usable} CPUs")
        exp.cpus = args.cpus or exp.cpus
        runs = exp.runs(seeds=args.seeds, variants=args.variants, extra=extra)
        if args.leave_out and not exp.leave_out:
            raise LabError(f"--leave-out: experiment {exp.name} declares no leave_out rule "
                           "(experiments/palindrome.yaml does)")  # fmt: skip
        root = check_output_folder(args.runs, "--runs")
        if args.leave_out:  # seed by seed, each seed's runs chosen from the records of the seeds before it
            finished = [run_set(exp, kept, root, results, args) for seed in dict.fromkeys(r.seed for r in runs)
                        if (kept := leave_out(exp, [r for r in runs if r.seed == seed], results))]  # fmt: skip
            sys.exit(0 if all(finished) else 1)
        rungs = exp.rungs.get("seeds") if exp.rungs and args.seeds is None and args.variants is None else None
        for number, seeds in enumerate(rungs or [None]):
            if seeds is not None:  # a successive halving: this rung's seeds, for the variants promoted so far
                from lab.report.success import rung_variants

                found = (
                    table.rows(exp, table.load(exp, results, runs[0].instance), references=False) if number else []
                )  # rung 1 runs every variant: no records to read (each is hashed for its stale mark)
                runs = exp.runs(seeds=seeds, variants=rung_variants(exp, found, number), extra=extra)
                print(f"rung {number + 1} of {len(rungs)}: seeds {' '.join(map(str, seeds))}, "
                      f"{len({r.variant for r in runs})} variants", flush=True)  # fmt: skip
            if not run_set(exp, runs, root, results, args):
                sys.exit(1)  # a failed run: no promotion from an incomplete rung
    except LabError as err:
        fail(str(err), getattr(err, "code", 2))


def leave_out(exp: Any, runs: list, results: Path) -> list:
    """``runs`` without those the experiment's rule leaves out (lab.report.success.left_out), saying how many."""
    from lab.experiment import table
    from lab.report.success import left_out

    found = table.rows(exp, table.load(exp, results, runs[0].instance), references=False)
    skip = left_out(exp, found)
    kept = [run for run in runs if run.variant not in skip]
    rule = exp.leave_out
    print(f"{exp.name}: {len(runs) - len(kept)} of {len(runs)} runs left out by its rule (beyond a {rule['x']} "
          f"where their arm's upper bound is < {rule['below']:g}){'' if kept else '; nothing to run'}",
          flush=True)  # fmt: skip
    return kept


def run_set(exp: Any, runs: list, root: Path, results: Path, args: argparse.Namespace) -> bool:
    """Launches ``runs``, prints and writes the table (and sends it to the runs' W&B group); True when every run
    finished."""
    from lab.experiment import table
    from lab.experiment.launch import launch

    built: list = []
    found = launch(
        exp,
        runs,
        root,
        results,
        args.address or None,
        args.rerun_stale,
        args.wandb,
        then=lambda _: built.append(table.build(exp, results, runs[0].instance, runs[0].overrides)),
    )
    text, folder = built[0] if built else table.build(exp, results, runs[0].instance, runs[0].overrides)
    wandb_rows = [r for r in found if r.get("status") == "finished" and r.get("config")]
    print("\n" + text + f"\nwrote {folder}/table.md, table.csv and {exp.name}.png")
    if any(r.get("wandb") for r in wandb_rows):  # the experiment's table too, in the runs' W&B group
        from lab.loggers import log_group_table

        rows = [{"variant": r["variant"], "seed": r["seed"], **r["final"]} for r in wandb_rows]
        log_group_table(exp.name, root / runs[0].instance, rows)
    return all(r.get("status") == "finished" for r in found)


if __name__ == "__main__":
    main()
