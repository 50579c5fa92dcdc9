"""make results (tools/build_results.py): MNIST arms run through the real CLI and the shared runner, aggregate over
seeds, are found by globbing configs; RESULTS.md is composed from sections."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from gan_lab.experiments import make_jobs
from lab.runner import run_jobs

SPEC = importlib.util.spec_from_file_location("build_results", Path(__file__).parents[1] / "tools/build_results.py")
results = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(results)


@pytest.mark.slow
def test_mnist_arms_run_through_the_cli_and_aggregate_seeds(tmp_path, data_dir):
    """Two seeds of a tiny GAN arm: both finish, the table shows mean ± std, and a second call reuses the runs."""
    from conftest import CONFIGS

    arms = {"gan": [CONFIGS / "gan" / "gan.yaml", CONFIGS / "tiny.yaml"]}
    jobs = make_jobs("families", arms, seeds=2, epochs=1, extra=[], wandb=False, group="families")
    outcomes = run_jobs(jobs, tmp_path, workers=1)
    finals = [o.result for o in outcomes]
    assert not any(o.error for o in outcomes), [o.error for o in outcomes]
    assert len(finals) == 2 and all(0 <= f["val/classes_covered"] <= 10 and f["val/fid"] > 0 for f in finals)
    assert finals[0]["val/fid"] != finals[1]["val/fid"]  # two seeds, two models
    table = results.mnist_table(outcomes, {"gan": "tiny GAN"}, "family")
    assert "| tiny GAN | 2 | 1 |" in table and " ± " in table
    stamp = {p: p.stat().st_mtime for p in tmp_path.rglob("metrics.csv")}
    again = run_jobs(jobs, tmp_path, workers=1)
    assert all(o.reused for o in again) and [o.result for o in again] == finals
    assert {p: p.stat().st_mtime for p in tmp_path.rglob("metrics.csv")} == stamp


def test_arms_are_found_by_globbing_configs():
    """Every configs/gan/*.yaml is a family row and every configs/ablations/*.yaml an ablation row (no registry)."""
    from conftest import CONFIGS

    assert set(results.mnist_arms("families")) == {p.stem for p in (CONFIGS / "gan").glob("*.yaml")}
    ablations = results.mnist_arms("ablations")
    assert set(ablations) == {p.stem for p in (CONFIGS / "ablations").glob("*.yaml")} and len(ablations) >= 5
    assert all(files[0].name == "gan.yaml" for files in ablations.values())
    assert results.describe_config(ablations["gan_latent50"][-1]) == "latent dim 50 (vs 100)"


def test_compose_orders_sections_and_states_commands(tmp_path):
    """RESULTS.md has the sections present, in the fixed order, each with its command and wall time."""
    for name, seconds in (("bench", 60.0), ("sweep", 120.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "section.md").write_text(f"body of {name}\n")
        command = f"python tools/build_results.py --sections {name}"
        meta = {"command": command, "seconds": seconds, "machine": "2 CPU cores", "date": "2026-11-22"}
        (tmp_path / name / "section.json").write_text(json.dumps(meta))
    text = results.compose(tmp_path, tmp_path / "RESULTS.md")
    assert text.index("## Vanilla RNN vs LSTM") < text.index("## Benchmarks")
    assert "`python tools/build_results.py --sections bench` (1.0 min wall on 2 CPU cores" in text
    assert "took 3 min wall in all" in text and (tmp_path / "RESULTS.md").read_text() == text


def test_a_mixture_section_states_what_its_runs_took_even_when_reused(tmp_path, monkeypatch):
    """A rebuild that reuses every run takes seconds; the section still states the runs' own time (from the
    experiment's results.json) over --jobs, and the page's total counts that."""

    def fake_mixture(experiment, opts, folder, long=False):
        (folder / "results.json").write_text(json.dumps([{"family": "gan", "seconds": 600.0}] * 2))
        return "| grid table |\n"

    monkeypatch.setattr(results, "section_mixture", fake_mixture)
    results.main(["--sections", "grid", "--jobs", "2", "--out", str(tmp_path), "--target", str(tmp_path / "R.md")])
    meta = json.loads((tmp_path / "grid" / "section.json").read_text())
    assert meta["run_seconds"] == 1200.0 and meta["jobs"] == 2 and meta["seconds"] < 60
    text = (tmp_path / "R.md").read_text()
    assert "(10.0 min wall: runs of 20 min, 2 at a time on " in text and "took 10 min wall in all" in text


def test_no_sections_and_bad_arguments_fail_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        results.main(["--compose-only", "--out", str(tmp_path), "--target", str(tmp_path / "R.md")])
    assert info.value.code == 2 and "no finished section" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        results.main(["--sections", "pacgan"])
    assert info.value.code == 2 and "unknown sections ['pacgan']" in capsys.readouterr().err
    assert not (tmp_path / "R.md").exists()


def test_section_commands_name_only_their_section():
    argv = ["--seeds", "3", "--sections", "ring", "grid", "--jobs", "2"]
    assert results.argv_without_sections(argv) == ["--seeds", "3", "--jobs", "2"]


def test_stacked_section_tabulates_finished_runs_and_reuses_them(tmp_path, monkeypatch):
    """Finished Stacked MNIST runs (modes.json at the budget's last epoch) are reused, not retrained, and give mean ±
    std of modes and KL per variant, the seed-0 curve, the training seconds and the published rows."""
    import argparse
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))
    import results_modes

    monkeypatch.setattr(results_modes, "RUNS", tmp_path)
    for prefix in results_modes.VARIANTS.values():
        for seed, (modes, kl) in enumerate([(900, 0.8), (920, 0.9), (940, 1.0)]):
            folder = tmp_path / f"{prefix}-s{seed}" / "version_0"
            folder.mkdir(parents=True)
            history = [{"epoch": e, "modes": modes - 10 * (3 - e), "kl": kl} for e in range(4)]
            (folder / "modes.json").write_text(json.dumps({"final": history[-1], "history": history}))
            (folder / "metrics.csv").write_text("epoch,time/train_s,val/modes\n0,100.0,\n3,250.5,\n3,,940\n")
    monkeypatch.setattr(results_modes.subprocess, "Popen", None)  # training anything would fail here
    text = results_modes.section_stacked(argparse.Namespace(stacked_seeds=3, jobs=2, stacked_unrolled=False), tmp_path)
    assert "| DCGAN, D = 1/2 G | 3 | 920 ± 20 | 0.90 ± 0.10 | 870 → 880 → 890 → 900 | 250 |" in text
    assert "| PacDCGAN2, D = 1/2 G | 3 |" in text and "| *PacDCGAN2 (PacGAN paper)* | | *1000* | *0.06* | | |" in text
    assert "4,000 generator steps" in text
    assert "| Unrolled GAN k = 5, D = 1/2 G | 3 | 920 ± 20 |" in text
    # the slow Unrolled row is not trained without --stacked-unrolled (Popen is None): it says so
    shutil.rmtree(tmp_path / "unrolled-k5-s0")
    text = results_modes.section_stacked(argparse.Namespace(stacked_seeds=3, jobs=2, stacked_unrolled=False), tmp_path)
    assert "| Unrolled GAN k = 5, D = 1/2 G | 2 |" in text
    for seed in (1, 2):
        shutil.rmtree(tmp_path / f"unrolled-k5-s{seed}")
    text = results_modes.section_stacked(argparse.Namespace(stacked_seeds=3, jobs=2, stacked_unrolled=False), tmp_path)
    assert "| Unrolled GAN k = 5, D = 1/2 G | 0 | not run (`--stacked-unrolled`;" in text
    assert "stacked/unrolled.k5.yaml" in text


def test_sweep_section_has_the_default_config_the_lr_search_and_the_init_ablation(tmp_path, monkeypatch):
    """The sweep section runs the default-config sweep and the 2e-3 init ablation (each with its command and figure)
    and the learning-rate search table between them; the sweeps are stubbed here (their runs: test_rnn_sweep.py)."""
    import argparse

    import lr_search

    from rnn_lab import sweep

    calls = []

    def fake_sweep(args):
        calls.append(args)
        folder = Path(args[args.index("--root") + 1]) / "palindrome-sweep"
        (folder / "runs").mkdir(parents=True)
        (folder / "results.md").write_text(f"Command: x\n\ntable of {len(calls)}\n")
        (folder / "accuracy_vs_length.png").write_bytes(b"png")
        return folder

    monkeypatch.setattr(sweep, "sweep_main", fake_sweep)
    monkeypatch.setattr(lr_search, "run_search", lambda *args: calls.append(["search"]))
    monkeypatch.setattr(results, "_publish", lambda path, name: f"results/{name}")
    opts = argparse.Namespace(sweep_lengths=[10], sweep_seeds=5, sweep_steps=20000, jobs=2, reuse=True, wandb=False)
    text = results.section_sweep(opts, tmp_path)
    assert [call[-2:] for call in calls[:2]] == [
        ["--root", str(tmp_path)],
        ["--root", str(tmp_path / "ablation-lr2e-3")],
    ]
    assert calls[2] == ["search"]
    main, search, ablation = (
        text.index("table of 1"),
        text.index("| cell | length | Adam 5e-4"),
        text.index("table of 2"),
    )
    assert main < search < ablation
    assert (
        "`python -m rnn_lab sweep --lengths 10 --seeds 0 1 2 3 4 --cells rnn lstm gru --max_steps 20000 --jobs 2`"
        in text
    )
    assert "--recurrent_init default orthogonal --lr 2e-3 --settle 0`" in text
    assert "(results/palindrome_sweep.png)" in text and "(results/palindrome_init_ablation.png)" in text


def test_grid_long_section_runs_the_grid_at_its_own_budget_and_publishes_its_own_strips(tmp_path, monkeypatch):
    """``grid_long`` runs ``experiments grid`` with --long-epochs and --long-families (not the grid section's) and
    publishes its strips as grid_long_<family>.png, so they do not overwrite the 10,000-step grid's."""
    from gan_lab import experiments

    calls, published = [], []

    def fake_experiments(args):
        calls.append(args)
        out = Path(args[args.index("--out") + 1])
        out.mkdir(parents=True)
        (out / "results.md").write_text("Command: x\n\n| grid table |\n")
        (out / "grid_pacgan.m4.png").write_bytes(b"png")

    monkeypatch.setattr(experiments, "main", fake_experiments)
    monkeypatch.setattr(results, "_publish", lambda path, name: published.append(name) or f"results/{name}")
    opts = results.parse_args(["--sections", "grid_long", "--no-wandb"])
    text = results.section_mixture("grid", opts, tmp_path, long=True)
    (args,) = calls
    assert args[args.index("--epochs") + 1] == "4000" and args[args.index("--families") + 1 :][:1] == ["pacgan.m4"]
    assert args[args.index("--out") + 1] == str(tmp_path / "e4000")  # another --long-epochs gets another folder
    assert published == ["grid_long_pacgan.m4.png"] and "![pacgan.m4](results/grid_long_pacgan.m4.png)" in text
    assert text.startswith("| grid table |")
