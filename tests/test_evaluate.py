"""`python -m gan_lab evaluate` and the GenerativeMetrics callback, on a real tiny GAN run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, run_module
from pytorch_lightning import Trainer

from callbacks.metrics import GenerativeMetrics
from gan_lab.checkpoint import load_module
from gan_lab.evaluate import main
from lab.metrics.backbones import load_classifier
from lab.metrics.functional import class_pair_endpoints

# module-scoped fixtures: keep this file on one test worker
pytestmark = pytest.mark.xdist_group("test_evaluate")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir) -> Path:
    """A 3-batch GAN run with GenerativeMetrics (200 samples) added from the command line; returns its directory."""
    root = tmp_path_factory.mktemp("runs")
    result = run_module(
        "gan_lab",
        "fit",
        "--config", str(CONFIGS / "base.yaml"),
        "--config", str(CONFIGS / "gan" / "gan.yaml"),
        "--config", str(CONFIGS / "tiny.yaml"),
        "--run.root", str(root),
        "--data.init_args.subset=512",
        "--trainer.callbacks+=callbacks.metrics.GenerativeMetrics",
        "--trainer.callbacks.n_samples=200",
        "--trainer.callbacks.n_real=200",
        env={"LAB_DATA_DIR": data_dir},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = root.glob("*/version_0")
    return run_dir


@pytest.fixture(scope="module")
def checkpoint(tiny_run) -> Path:
    ckpt = tiny_run / "checkpoints" / "last.ckpt"
    return ckpt


@pytest.mark.slow
def test_callback_logs_its_keys_in_a_tiny_fit(tiny_run):
    """Inside `fit`, GenerativeMetrics logs val/fid, val/is, val/precision, val/coverage, val/classes_covered,
    val/class_kl and saves its plot."""
    with open(tiny_run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = {key: float(row[key]) for row in rows for key in row if key.startswith("val/") and row[key]}
    assert {"val/fid", "val/is", "val/classes_covered", "val/class_kl", "val/precision", "val/coverage"} <= set(logged)
    assert logged["val/fid"] > 0 and 1 <= logged["val/is"] <= 10 and 1 <= logged["val/classes_covered"] <= 10
    assert (tiny_run / "class_coverage" / "epoch=000.png").stat().st_size > 1000


@pytest.mark.slow
def test_evaluate_cli_prints_and_writes_json(checkpoint, tmp_path, data_dir):
    """`python -m gan_lab evaluate --ckpt` prints the table and writes fid, is, coverage and the real-data floors."""
    out = tmp_path / "eval.json"
    args = ["evaluate", "--ckpt", str(checkpoint), "--n", "300", "--out", str(out)]
    result = run_module("gan_lab", *args, env={"LAB_DATA_DIR": data_dir})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FID" in result.stdout and str(out) in result.stdout
    values = json.loads(out.read_text())
    keys = "fid kid is classes_covered class_kl fid_floor kid_floor is_real"
    keys += " precision recall density coverage precision_real recall_real"
    for key in keys.split():
        assert key in values, key
    assert 0 < values["fid_floor"] < values["fid"]  # an untrained generator is further from MNIST than MNIST itself
    assert values["kid_floor"] < values["kid"]
    # written back to the run the checkpoint belongs to: report reads the eval/ numbers from its metrics.csv
    from lab.report.runs import load_run

    run = load_run(checkpoint.parent.parent.parent)
    assert run.final("eval/fid") == pytest.approx(values["fid"]) and "added to the run" in result.stdout
    # real digits on the trained classifier; 10 splits of 30 images bias IS down (about 9.8 with n = 10,000)
    assert values["is_real"] > 7.5 and values["classes_covered_real"] == 10


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ckpt", "missing.ckpt"], "does not exist"),
        (["--ckpt", "{ckpt}", "--n", "0"], "--n must be between"),
        (["--ckpt", "{ckpt}", "--backbone", "resnet"], "--backbone must be one of"),
        (["--ckpt", "{ckpt}", "--n", "100", "--kid-subset-size", "101"], "--kid-subset-size must be between 2 and --n"),
        (["--ckpt", "{ckpt}", "--backbone", "inception", "--inception-weights", "none.pth"], "not found"),
        (["--n", "10"], "give either --ckpt (a checkpoint) or --samples"),
    ],
)
def test_evaluate_refuses_bad_input_in_one_line(args, message, tmp_path, capsys):
    """Missing checkpoint, n <= 0, unknown backbone, missing Inception weights: one `error:` line and exit 2."""
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"")  # existence is checked first; these inputs fail before the file is read
    with pytest.raises(SystemExit) as err:
        main([a.format(ckpt=ckpt) for a in args])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines


@pytest.mark.slow
def test_callback_memory_is_bounded_across_evaluations(checkpoint, data_dir):
    """Repeated evaluations keep no generated features (IS buffer empty, FID fake count 0) and give equal values."""
    module = load_module(checkpoint)
    callback = GenerativeMetrics(n_samples=300, n_real=300, batch_size=100, data_dir=data_dir, plot=False)
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    callback.on_fit_start(trainer, module)
    first = callback.evaluate(trainer, module)
    for _ in range(2):
        assert callback.evaluate(trainer, module)["fid"] == pytest.approx(first["fid"], rel=1e-5)  # fixed noise
        assert len(callback.metrics.inception_score.features) == 0
        assert int(callback.metrics.fid.fake_features_num_samples) == 0
        assert int(callback.metrics.fid.real_features_num_samples) == 300


@pytest.mark.slow
def test_class_pair_endpoints_are_labelled_as_different_digits(checkpoint):
    """The interpolation endpoints' samples get the digits reported, different whenever two digits are made."""
    module = load_module(checkpoint)
    clf = load_classifier()
    z1, z2, d1, d2 = class_pair_endpoints(module, clf, pairs=3, candidates=256)
    assert z1.shape == z2.shape == (3, module.latent_dim)
    to_unit = module.to_unit
    assert torch.equal(clf.predict(to_unit(module.sample(3, z=z1))), d1)
    assert torch.equal(clf.predict(to_unit(module.sample(3, z=z2))), d2)
    made = clf.predict(to_unit(module.sample(256, z=torch.randn(256, module.latent_dim)))).unique()
    if len(made) >= 2:
        assert bool((d1 != d2).all())


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["validate", "test"])
def test_validate_and_test_print_fid_kid_is_coverage(stage, checkpoint, tmp_path, data_dir, capsys):
    """`python -m gan_lab validate|test --ckpt_path` on a GAN checkpoint prints the metrics against that split."""
    from gan_lab.__main__ import main as gan_main

    split = "val" if stage == "validate" else "test"
    configs = [f"--config={CONFIGS / name}" for name in ("base.yaml", "gan/gan.yaml", "tiny.yaml")]
    gan_main([stage, *configs, f"--run.root={tmp_path}", f"--ckpt_path={checkpoint}"])
    printed = capsys.readouterr().out
    for key in ("fid", "kid", "is", "classes_covered", "class_kl"):
        assert f"{split}/{key} " in printed, printed[-2000:]
