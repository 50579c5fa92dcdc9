"""The length sweep: its runs, its report (tables, breaking length, plot) and its refusals of bad input."""

import csv
import subprocess
import sys
from dataclasses import asdict, fields

import pytest
from conftest import REPO, run_module

from rnn_lab.sweep import sweep_main
from rnn_lab.sweep_report import RunResult, breaking_length, read_results, seeds_needed, write_report


@pytest.mark.slow
def test_sweep_writes_csv_markdown_png_and_learns_short_palindromes(tmp_path, capsys):
    """Two tiny lengths, one seed, two inits: a CSV row per run with its test accuracy, run folders named
    cell-init-L<length>-s<seed>, the tables, a PNG, accuracy far above chance; a second call reuses every run."""
    args = ["--lengths", "3", "4", "--seeds", "0", "--max_steps", "150", "--val_every", "50", "--num_samples", "2000",
            "--cells", "rnn", "lstm", "--recurrent_init", "default", "orthogonal", "--hidden_dim", "32", "--jobs", "1",
            "--all_lengths", "--no-wandb", "--root", str(tmp_path)]  # fmt: skip
    run_dir = sweep_main(args)
    rows = list(csv.DictReader(open(run_dir / "results.csv")))
    assert {(r["cell"], r["recurrent_init"], r["seq_len"]) for r in rows} == {
        (cell, init, length) for cell in ("rnn", "lstm") for init in ("default", "orthogonal") for length in ("3", "4")
    }
    assert all(float(r["test_acc"]) > 0.5 for r in rows)  # chance is 0.1: no "stuck at 10%" evaluation bug
    assert all(r["max_steps"] == "150" and r["best_val_acc"] and r["final_val_acc"] for r in rows)
    assert all(float(r["lr"]) == 1e-3 for r in rows)  # each run's rate, from its settings
    assert (run_dir / "runs" / "lstm-orthogonal-L4-s0" / "run.json").is_file()
    table = (run_dir / "results.md").read_text()
    assert "| lstm | orthogonal | 4 |" in table and "| rnn | default |" in table and "at most 150 steps" in table
    assert (run_dir / "accuracy_vs_length.png").stat().st_size > 1000
    assert capsys.readouterr().out.count("] ") >= 8  # one line per finished run
    sweep_main(args)
    assert capsys.readouterr().out.count("(reused)") == 8  # the RunSpec is the identity: nothing changed, nothing ran


def test_the_sweep_climbs_lengths_only_while_its_seeds_solve_them(tmp_path, capsys):
    """Adaptive by default: every seed solving (a target of 2%) climbs to the longest length; one step (chance, target
    99%) breaks at the shortest, and the longer lengths are reported as not run."""
    common = ["--lengths", "6", "7", "8", "--seeds", "0", "--cells", "rnn", "--hidden_dim", "8", "--num_samples",
              "1000", "--val_every", "1", "--jobs", "1", "--no-wandb"]  # fmt: skip
    climbed = sweep_main([*common, "--max_steps", "2", "--target", "0.02", "--root", str(tmp_path / "a")])
    assert [r["seq_len"] for r in csv.DictReader(open(climbed / "results.csv"))] == ["6", "7", "8"]
    broke = sweep_main([*common, "--max_steps", "1", "--target", "0.99", "--root", str(tmp_path / "b")])
    rows = list(csv.DictReader(open(broke / "results.csv")))
    assert [(r["seq_len"], r["ended"]) for r in rows] == [("6", "cap")]
    table = (broke / "results.md").read_text()
    assert "| rnn | orthogonal | 7 | not run: a shorter length broke |" in table
    assert "| rnn | orthogonal | none | – | none: already 6 fails |" in table
    assert "each (cell, init) stops at the first length fewer than 1 seeds solve" in capsys.readouterr().out


def test_a_length_stops_once_too_many_seeds_failed_for_it_to_count(tmp_path):
    """5 seeds need 4 solving: once 2 failed, the break is decided and the 3 other seeds of that length never run."""
    args = ["--lengths", "6", "7", "--seeds", "0", "1", "2", "3", "4", "--cells", "rnn", "--hidden_dim", "8",
            "--num_samples", "1000", "--val_every", "1", "--jobs", "1", "--no-wandb", "--max_steps", "1",
            "--target", "0.99", "--root", str(tmp_path)]  # fmt: skip
    rows = list(csv.DictReader(open(sweep_main(args) / "results.csv")))
    assert [(r["seq_len"], r["seed"]) for r in rows] == [("6", "0"), ("6", "1")]
    table = (tmp_path / "palindrome-sweep" / "results.md").read_text()
    assert "| 0/5 | never (0/5) | 0 / 0 / 2; 3 not run: broken already |" in table


def _result(cell: str, init: str, length: int, seed: int, test_acc: float, steps_to_target: int | None) -> RunResult:
    return RunResult(cell, init, length, seed, test_acc, test_acc, test_acc, 500, steps_to_target, 20_000, 1.0)


def test_report_tables_and_breaking_length_from_known_results(tmp_path):
    """Known per-seed results give the exact rows: mean ± std, solved k/n, steps median [min, max] and the breaking
    length (the longest length solved by >= 4 of 5 seeds, a failed shorter length named); the CSV reads back equal."""
    solved = {10: 5, 20: 3, 30: 4, 50: 1}  # seeds (of 5) whose test accuracy reaches the target, per length
    results = [
        _result("rnn", "orthogonal", length, seed, 1.0 if seed < k else 0.5, 100 * (seed + 1) if seed < k else None)
        for length, k in solved.items()
        for seed in range(5)
    ]
    results += [_result("lstm", "default", length, seed, 0.1, None) for length in solved for seed in range(5)]
    text = write_report(results, tmp_path, "python -m rnn_lab sweep", 0.995)
    assert "| rnn | orthogonal | 30 | 0.900 ± 0.224 | 4/5 | 250 [100, 400] (4/5) |" in text
    assert "| rnn | orthogonal | 10 | 1.000 ± 0.000 | 5/5 | 300 [100, 500] (5/5) |" in text
    assert "| rnn | orthogonal | 30 | 10, 30 | shorter lengths failed: 20; 50 fails |" in text
    assert "| lstm | default | none | – | none: already 10 fails |" in text
    assert "such that >= 4/5 seeds solve L" in text and "at most 20000 steps per run" in text
    assert text.index("| rnn | orthogonal |") < text.index("| lstm | default |")  # cells in the order of CELLS
    assert (tmp_path / "results.md").read_text().startswith("Command: `python -m rnn_lab sweep`")
    assert (tmp_path / "accuracy_vs_length.png").stat().st_size > 1000
    with open(tmp_path / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(RunResult)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in results)
    assert read_results([str(tmp_path / "results.csv")]) == results


@pytest.mark.parametrize(("n_seeds", "needed"), [(1, 1), (3, 3), (5, 4), (10, 8), (6, 5)])
def test_breaking_length_needs_ceil_of_four_fifths_of_the_seeds(n_seeds, needed):
    """ceil(0.8 n) seeds, computed without floating point."""
    assert seeds_needed(n_seeds) == needed
    assert breaking_length({10: needed, 20: needed - 1}, seeds_needed(n_seeds)) == (10, "20 fails")
    assert breaking_length({10: needed}, needed) == (10, "the longest tested: no break seen")


SWEEP_REFUSALS = [
    (["--lengths", "1", "5"], "error: --lengths must be >= 2; got 1"),
    (["--seeds"], "error: --seeds needs at least one seed"),
    (["--cells", "rnn", "lstn"], "error: --cells must be one of rnn, lstm, gru, got 'lstn'"),
    (
        ["--recurrent_init", "default", "xavier"],
        "error: --recurrent_init must be one of default, orthogonal, identity, got 'xavier'",
    ),
    (["--max_steps", "0"], "error: --max_steps must be positive; got 0"),
    (
        ["--lr", "gru=-1"],
        "error: --lr takes positive rates, for every cell or as cell=rate (cells rnn, lstm, gru); got 'gru=-1'",
    ),
]


@pytest.mark.parametrize(
    ("args", "line"), SWEEP_REFUSALS, ids=["length 1", "no seeds", "cell", "init", "max_steps", "lr"]
)
def test_sweep_refuses_bad_input_in_one_line_before_writing(args, line, tmp_path):
    """`python -m rnn_lab sweep` with a bad value: exactly one stderr line, exit 2, no folder created."""
    root = tmp_path / "out"
    result = run_module("rnn_lab", "sweep", *args, "--no-wandb", "--root", str(root), timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [line]
    assert not root.exists()


def test_report_reads_the_finished_runs_of_a_sweep_folder(tmp_path):
    """--report on a sweep folder (also while it runs) reads every finished run.json, with the learning rate of its
    settings, and skips failed runs."""
    import json

    folder = tmp_path / "palindrome-sweep"
    for seed, error in ((0, ""), (1, ""), (2, "ValueError: boom")):
        result = asdict(_result("lstm", "orthogonal", 50, seed, 1.0, 300)) if not error else {}
        (folder / "runs" / f"lstm-orthogonal-L50-s{seed}").mkdir(parents=True)
        (folder / "runs" / f"lstm-orthogonal-L50-s{seed}" / "run.json").write_text(
            json.dumps({"key": "k", "config": {"lr": 1e-3}, "result": result, "error": error})
        )
    assert [(r.seed, r.lr) for r in read_results([str(folder)])] == [(0, 1e-3), (1, 1e-3)]
    out = tmp_path / "out"
    sweep_main(["--report", str(folder), "--root", str(out), "--no-wandb"])
    assert "| lstm | orthogonal | 50 | 1.000 ± 0.000 | 2/2 |" in (out / "palindrome-sweep" / "results.md").read_text()


def run_script(path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, path, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_lr_search_table_reads_the_rate_of_each_finished_run(tmp_path):
    """tools/lr_search.py --table-only: a column per learning rate (read from each run's settings, also from the
    --also folders), seeds that reached the validation target and their median steps per cell and length; a rate
    not trained yet says so; a bad point is one line."""
    import json

    def write(folder, cell, length, seed, lr, acc, steps):
        run = folder / "runs" / f"{cell}-orthogonal-L{length}-s{seed}"
        run.mkdir(parents=True)
        result = asdict(_result(cell, "orthogonal", length, seed, acc, steps))
        config = {"lr": lr, "recurrent_init": "orthogonal"}
        (run / "run.json").write_text(json.dumps({"key": "k", "config": config, "result": result, "error": ""}))

    write(tmp_path / "sweep", "gru", 50, 0, 2e-3, 0.10, None)
    write(tmp_path / "sweep", "gru", 50, 1, 2e-3, 0.10, None)
    write(tmp_path / "search" / "lr1e-3" / "palindrome-sweep", "gru", 50, 0, 1e-3, 1.0, 2200)
    write(tmp_path / "search" / "lr1e-3" / "palindrome-sweep", "gru", 50, 1, 1e-3, 1.0, 3200)
    # reached 99.5% on validation, just under it on test: the rate is chosen on validation, so it counts
    write(tmp_path / "search" / "lr5e-3" / "palindrome-sweep", "gru", 50, 0, 5e-3, 0.994, 800)
    args = ["--points", "gru:50", "--lrs", "1e-3", "5e-3", "1e-2", "--root", str(tmp_path / "search"), "--also",
            str(tmp_path / "sweep"), "--table-only"]  # fmt: skip
    result = run_script("tools/lr_search.py", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == [
        "| cell | length | Adam 1e-3 | Adam 2e-3 | Adam 5e-3 | Adam 1e-2 |",
        "|---|---:|---:|---:|---:|---:|",
        "| gru | 50 | 2/2, 2700 steps | 0/2 | 1/2, 800 steps (1 not finished) | not run |",
    ]
    bad = run_script("tools/lr_search.py", "--points", "gru50", "--table-only")
    assert (bad.returncode, bad.stderr.strip()) == (
        2,
        "error: --points takes cell:length with a length >= 2, got 'gru50'",
    )


def test_lr_takes_one_rate_for_every_cell_and_cell_rates_on_top():
    from rnn_lab.sweep import learning_rates

    assert learning_rates(["2e-3"]) == {"rnn": 2e-3, "lstm": 2e-3, "gru": 2e-3}
    assert learning_rates(["2e-3", "gru=1e-3", "rnn=5e-4"]) == {"rnn": 5e-4, "lstm": 2e-3, "gru": 1e-3}


def test_a_run_trains_settle_steps_past_the_target_then_stops(tmp_path):
    """--settle 3 with validation every step: the target (2%) is first reached at step 1, the run stops at step 4."""
    args = ["--lengths", "6", "--seeds", "0", "--cells", "rnn", "--hidden_dim", "8", "--num_samples", "1000",
            "--val_every", "1", "--jobs", "1", "--no-wandb", "--max_steps", "50", "--target", "0.02", "--settle", "3",
            "--root", str(tmp_path)]  # fmt: skip
    (row,) = csv.DictReader(open(sweep_main(args) / "results.csv"))
    assert (row["steps_to_target"], row["steps"], row["ended"]) == ("1", "4", "target")
