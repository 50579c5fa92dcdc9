"""``python -m gan_lab evaluate --samples FILE.pt``: saved samples of the three kinds scored by the code that scores
checkpoints, with the JSON keys the issue names, and bad files refused in one line before anything is written."""

from __future__ import annotations

import json

import pytest
import torch

from datamodules.mixture_stream import mixture_centres
from datamodules.mnist import mnist_images
from gan_lab.baselines import baseline_points
from gan_lab.evaluate import main as evaluate_main


def evaluate(tmp_path, samples: torch.Tensor, *args: str) -> dict:
    path = tmp_path / "samples.pt"
    torch.save(samples, path)
    out = tmp_path / "eval.json"
    evaluate_main(["--samples", str(path), "--out", str(out), *args])
    return json.loads(out.read_text())


@pytest.mark.parametrize(("baseline", "gated"), [("real samples", 25), ("uniform cloud over the box", 0),
                                                 ("one mode", 1)])  # fmt: skip
def test_grid_points_give_the_protocol_count_and_the_gated_one(tmp_path, baseline, gated):
    points = baseline_points(baseline, mixture_centres("grid", 25, 2.0), 0.05, 2500, seed=0)
    result = evaluate(tmp_path, points, "--data", "grid")
    assert {"modes", "modes_gated", "hq", "rkl"} <= set(result)
    assert result["modes_gated"] == gated
    if baseline == "uniform cloud over the box":
        assert result["modes"] >= 18 and result["hq"] < 3  # the protocol's count alone is fooled
    else:
        assert result["hq"] > 98


def test_real_mnist_digits_score_like_real_data(tmp_path, data_dir):
    images = mnist_images("test", 1000, data_dir)[:500].float() / 255  # (500, 1, 28, 28) in [0, 1]
    result = evaluate(tmp_path, images, "--data-dir", data_dir)
    for key in ("fid", "kid", "is", "precision", "recall", "density", "coverage", "classes", "class_kl"):
        assert key in result, key
    assert result["classes"] == 10 and result["is"] > 8 and result["fid"] < 5 * max(result["fid_floor"], 1e-3)


def test_stacked_digits_cover_most_modes_and_noise_few(tmp_path, data_dir):
    digits = mnist_images("test", 10000, data_dir).float() / 255  # (10000, 1, 28, 28)
    pick = torch.randint(len(digits), (3000, 3), generator=torch.Generator().manual_seed(0))
    stacked = digits[pick].squeeze(2)  # (3000, 3, 28, 28): a random test digit per channel
    result = evaluate(tmp_path, stacked)
    assert result["modes"] >= 800 and result["kl"] < 0.6, result  # 3,000 draws hit about 950 of 1,000 modes
    noise = evaluate(tmp_path, torch.rand(3000, 3, 28, 28))
    assert noise["modes"] < 100, noise


@pytest.mark.parametrize(
    ("samples", "args", "words"),
    [
        (torch.rand(10, 2), [], "--data ring|grid"),
        (torch.rand(10, 5), [], "expected N x 1 x 28 x 28"),
        (torch.rand(10, 1, 28, 28) * 3, [], "lie in [0, 1]"),
        (torch.rand(10, 1, 28, 28), ["--data", "ring"], "--data is for 2-D points"),
        (torch.rand(10, 1, 28, 28), ["--ckpt", "x.ckpt"], "give either --ckpt (a checkpoint) or --samples"),
    ],
    ids=["points without data", "shape", "range", "data for images", "both"],
)
def test_bad_samples_give_one_line_and_write_nothing(tmp_path, capsys, samples, args, words):
    path = tmp_path / "samples.pt"
    torch.save(samples, path)
    out = tmp_path / "eval" / "eval.json"
    with pytest.raises(SystemExit) as stop:
        evaluate_main(["--samples", str(path), "--out", str(out), *args])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(lines) == 1 and words in lines[0], lines
    assert not out.parent.exists()


def test_the_mnist_baseline_rows_bound_the_table_and_show_that_precision_alone_is_fooled_by_noise():
    """Real training digits score near real (IS > 9, 10 classes, precision and recall > 0.85); one digit repeated is
    total collapse (IS 1, one class, recall 0); uniform noise is read as one digit whose classifier features lie
    inside the real digits' 5-NN balls: precision 1.0, but recall and coverage near 0 expose it."""
    from gan_lab.baselines import MNIST_LABELS, mnist_baselines

    keys = {"is": "is", "classes": "classes_covered", "precision": "precision", "recall": "recall",
            "coverage": "coverage"}  # fmt: skip
    rows = {row["label"]: row["runs"][0] for row in mnist_baselines([0], keys, n=1000)}
    real, noise, one = (rows[label] for label in MNIST_LABELS)
    assert real["is"] > 9.0 and real["classes"] == 10 and real["precision"] > 0.85 and real["recall"] > 0.85
    assert one["is"] == pytest.approx(1.0, abs=1e-3) and one["classes"] == 1 and one["recall"] == 0.0
    assert noise["classes"] == 1 and noise["precision"] > 0.95 and noise["recall"] < 0.05 and noise["coverage"] < 0.1


def test_the_stacked_baseline_rows_are_many_modes_for_real_triples_and_one_for_a_repeated_triple():
    from gan_lab.baselines import STACKED_LABELS, stacked_baselines

    rows = {row["label"]: row["runs"][0] for row in stacked_baselines([0], n_samples=3000)}
    real, noise, one = (rows[label] for label in STACKED_LABELS)
    assert real["val/modes"] > 900 and real["val/kl"] < 0.6  # 3,000 draws of 1,000 triples: about 950 seen
    assert one["val/modes"] == 1 and noise["val/modes"] <= 10
