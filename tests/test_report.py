"""``python -m gan_lab report``: curves of several runs in one plot, final and mean ± std tables, grids, figure folders.

The unit tests write run folders in the exact CSVLogger layout (``<root>/<name>/version_N/metrics.csv`` with columns
epoch, step and namespaced keys, beside the CLI's ``config.yaml``); the slow test makes two real runs with the CLI.
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
from pathlib import Path

import matplotlib
import matplotlib.image
import pytest
import yaml
from conftest import CONFIGS, REPO, run_module

from lab.report import page as report

matplotlib.use("Agg")


def write_run(root, name, rows, seed=0, version=0, config=None):
    """A run folder as the CLI writes it: metrics.csv (CSVLogger columns) and config.yaml."""
    folder = root / name / f"version_{version}"
    folder.mkdir(parents=True)
    keys = sorted({key for row in rows for key in row} - {"epoch", "step"})
    with open(folder / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["epoch", "step", *keys])
        writer.writeheader()
        writer.writerows(rows)
    config = config or {
        "seed_everything": seed,
        "trainer": {"max_epochs": 2},
        "model": {"class_path": "gan_lab.gan.GAN"},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump({**config, "seed_everything": seed}))
    return folder


def gan_rows(fids, losses_per_epoch=3):
    """Train rows every step and one val row per epoch (as Lightning writes them: the last step of the epoch)."""
    rows, step = [], 0
    for epoch, fid in enumerate(fids):
        for _ in range(losses_per_epoch):
            rows.append({"epoch": epoch, "step": step, "train/d_loss": 1.0 / (step + 1), "train/g_loss": step})
            step += 1
        rows.append({"epoch": epoch, "step": step - 1, "val/fid": fid, "val/is": 2.0 + epoch, "val/is_std": 0.1})
    return rows


def test_seeds_aggregate_into_mean_and_std(tmp_path):
    """Runs that differ only in -s<seed> form one group whose cells are the mean ± sample std of final values."""
    finals = {0: 30.0, 1: 36.0, 2: 33.0}
    for seed, fid in finals.items():
        write_run(tmp_path, f"gan-default-s{seed}", gan_rows([90.0, fid]), seed=seed)
    write_run(tmp_path, "wgan-default-s0", gan_rows([80.0, 20.0]))
    runs, figures = report.load_runs([tmp_path])
    assert [run.name for run in runs] == ["gan-default-s0", "gan-default-s1", "gan-default-s2", "wgan-default-s0"]
    assert figures == []
    keys = report.choose_metrics(runs)
    assert keys == ["val/fid", "val/is"]  # FID/IS first; the *_std companions are not plotted
    header, rows = report.seed_rows(runs, keys)
    assert header == ["group", "seeds", "val/fid", "val/is"]
    assert rows[0][:2] == ["gan-default", "3 (0, 1, 2)"]
    mean, std = statistics.fmean(finals.values()), statistics.stdev(finals.values())
    assert rows[0][2] == f"{mean:.4g} ± {std:.2g}" == "33 ± 3"
    assert rows[1] == ["wgan-default", "1 (0)", "20", "3"]  # one seed: the value, no ± part
    header, rows = report.final_rows(runs, keys)
    assert [row[0] for row in rows] == [run.name for run in runs] and rows[1][4] == "36"
    assert rows[0][2:4] == ["2", "6"]  # epochs, steps


def test_the_tables_show_what_evaluate_wrote_back(tmp_path):
    """A run that `evaluate` added eval/ metrics to (a metrics.csv row of its own) shows them in the report's tables,
    after the val/ columns; a run without them gets an empty cell."""
    rows = gan_rows([90.0, 30.0])
    write_run(tmp_path, "gan-default-s0", [*rows, {"epoch": "", "step": 5, "eval/fid": 12.5, "eval/is": 7.25}])
    write_run(tmp_path, "wgan-default-s0", gan_rows([80.0, 20.0]))
    runs, _ = report.load_runs([tmp_path])
    keys = report.table_metrics(runs, report.choose_metrics(runs))
    assert keys == ["val/fid", "val/is", "eval/fid", "eval/is"]
    header, table = report.final_rows(runs, keys)
    assert table[0][header.index("eval/fid")] == "12.5" and table[0][header.index("eval/is")] == "7.25"
    assert table[1][header.index("eval/fid")] in ("", "–", "—")


def test_validation_metrics_use_epochs_and_losses_use_steps(tmp_path):
    """val/ metrics logged once per epoch are drawn against epochs completed; per-step losses against steps."""
    write_run(tmp_path, "gan-default-s0", gan_rows([50.0, 40.0, 30.0]))
    (run,), _ = report.load_runs([tmp_path / "gan-default-s0"])
    assert run.series("val/fid") == ([1.0, 2.0, 3.0], [50.0, 40.0, 30.0], "epoch")
    x, y, axis = run.series("train/d_loss")
    assert axis == "step" and x == [float(i) for i in range(9)] and y[0] == 1.0


def test_default_metrics_fall_back_to_val_then_losses(tmp_path):
    """Without FID/IS the plots show the val/ metrics, without those the train losses; unknown keys are refused."""
    write_run(tmp_path / "a", "rnn-lstm-s0", [{"epoch": 0, "step": 4, "val/acc": 0.9, "train/loss": 0.3}])
    write_run(tmp_path / "b", "gan-tiny-s0", [{"epoch": 0, "step": 0, "train/d_loss": 1.0, "train/d_real": 0.2}])
    assert report.choose_metrics(report.load_runs([tmp_path / "a"])[0]) == ["val/acc"]
    assert report.choose_metrics(report.load_runs([tmp_path / "b"])[0]) == ["train/d_loss"]
    with pytest.raises(report.LabError, match="val/fid was not logged by these runs; logged: train/d_loss"):
        report.choose_metrics(report.load_runs([tmp_path / "b"])[0], ["val/fid"])


def test_resumed_versions_are_joined_and_reruns_are_not(tmp_path):
    """A version that continues the step count of the one before it is joined to it; one restarting at 0 is not."""
    first = [{"epoch": 0, "step": s, "train/loss": 1.0} for s in range(5)]
    second = [{"epoch": 1, "step": s, "train/loss": 0.5} for s in range(5, 10)]
    write_run(tmp_path, "rnn-lstm-s0", first, version=0)
    write_run(tmp_path, "rnn-lstm-s0", second, version=1)
    (run,), _ = report.load_runs([tmp_path])
    assert [v.name for v in run.versions] == ["version_0", "version_1"] and len(run.rows) == 10
    write_run(tmp_path, "rnn-lstm-s0", first, version=2)
    (run,), _ = report.load_runs([tmp_path])
    assert [v.name for v in run.versions] == ["version_2"] and len(run.rows) == 5


def test_figure_folders_and_the_report_folder_itself(tmp_path):
    """Sweep / gradient-flow folders appear with their figures and tables; a previous report is not read as input."""
    import matplotlib.pyplot as plt

    write_run(tmp_path, "rnn-lstm-s0", [{"epoch": 0, "step": 4, "val/acc": 0.9}])
    sweep = tmp_path / "palindrome-sweep-20260101-000000"
    sweep.mkdir()
    plt.figure().savefig(sweep / "accuracy_vs_length.png")
    (sweep / "results.md").write_text("# Palindrome sweep\n\n| cell | length | acc |\n| --- | --- | --- |\n")
    (sweep / "results.csv").write_text("cell,length,seed,acc\nlstm,10,0,1.0\n")
    for _ in range(2):  # the second pass sees the first report under the root and must skip it
        written = report.write_report([tmp_path], tmp_path / "report")
        assert [f.path for f in written.figures] == [sweep] and len(written.runs) == 1
    page = written.page.read_text()
    assert "## palindrome-sweep-20260101-000000" in page and "## Palindrome sweep" in page  # demoted one level
    assert "](../palindrome-sweep-20260101-000000/accuracy_vs_length.png)" in page
    assert "[results.csv](../palindrome-sweep-20260101-000000/results.csv)" in page


def test_missing_or_empty_folders_fail_in_one_line(tmp_path, capsys):
    """A missing folder or one without runs exits 2 with one `error:` line naming it."""
    (tmp_path / "empty").mkdir()
    for folder, message in [(tmp_path / "nope", "does not exist"), (tmp_path / "empty", "no runs in")]:
        with pytest.raises(SystemExit) as exit_info:
            report.main([str(folder)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and message in err and str(folder) in err


@pytest.mark.slow
def test_report_on_two_real_tiny_runs(tmp_path, data_dir):
    """Two seeds made by the CLI: both curves in one PNG, a table row each, one mean ± std row, both grids."""
    root = tmp_path / "runs"
    fits = [
        subprocess.Popen(
            [sys.executable, "-m", "gan_lab", "fit", "--config", str(CONFIGS / "base.yaml")]
            + ["--config", str(CONFIGS / "gan" / "wgan.yaml"), "--config", str(CONFIGS / "tiny.yaml")]
            + ["--run.root", str(root), "--seed_everything", str(seed), "--model.init_args.metrics_every_n_epochs=0"],
            cwd=REPO,
            env={**os.environ, "LAB_DATA_DIR": data_dir},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (0, 1)
    ]
    for fit in fits:
        _, err = fit.communicate(timeout=600)
        assert fit.returncode == 0, err[-3000:]
    result = run_module("gan_lab", "report", "--root", str(root), "--metrics", "train/d_loss")
    assert result.returncode == 0, result.stderr[-3000:]
    page = (root / "report" / "report.md").read_text()

    finals = {}
    for seed in (0, 1):
        with open(root / f"wgan-tiny-s{seed}" / "version_0" / "metrics.csv", newline="") as handle:
            finals[seed] = [float(row["train/d_loss"]) for row in csv.DictReader(handle) if row["train/d_loss"]][-1]
        assert f"| wgan-tiny-s{seed} | {seed} | 1 | 3 | {finals[seed]:.4g} |" in page
    mean, std = statistics.fmean(finals.values()), statistics.stdev(finals.values())
    assert f"| wgan-tiny | 2 (0, 1) | {mean:.4g} ± {std:.2g} |" in page
    assert "![train/d_loss](curves_train_d_loss.png)" in page and "![samples](samples.png)" in page
    assert matplotlib.image.imread(root / "report" / "curves_train_d_loss.png").shape[0] > 100

    runs, _ = report.load_runs([root])
    labels = report.plot_curves(runs, "train/d_loss", tmp_path / "d_loss.png")
    assert labels == ["wgan-tiny-s0", "wgan-tiny-s1"]  # both curves drawn in one plot
    assert report.compose_samples(runs, tmp_path / "samples.png") == ["wgan-tiny-s0", "wgan-tiny-s1"]
    assert all(run.sample_grid().name == "epoch=000.png" for run in runs)


def test_default_output_folder_is_beside_the_runs(tmp_path, monkeypatch):
    """Without --out the page goes to report/ in the folder holding the runs, whichever way they were named."""
    for seed in (0, 1):
        write_run(tmp_path / "runs", f"gan-default-s{seed}", gan_rows([50.0]), seed=seed)
    monkeypatch.chdir(tmp_path)
    expected = Path("runs") / "report"
    assert report.default_out(["runs"], None) == expected
    assert report.default_out(["runs/gan-default-s0", "runs/gan-default-s1"], None) == expected
    assert report.default_out(["runs/gan-default-s0/version_0"], None) == expected
    assert report.default_out([], "runs") == expected
