"""The MNIST classifier behind FID / IS / coverage: committed weights, provenance, API and the training command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from gan_lab.classifier import WEIGHTS, MNISTClassifier, accuracy, load_classifier, load_mnist_split, main, md5s

# module-scoped fixtures: keep this file on one test worker
pytestmark = pytest.mark.xdist_group("test_classifier")


@pytest.fixture(scope="module")
def test_split(data_dir):
    images, labels = load_mnist_split(data_dir, train=False)
    return images[:1000], labels[:1000]


def test_committed_weights_reach_99_percent_on_1000_test_images(test_split):
    """The committed weights load (weights_only) and classify the first 1,000 real test digits with >= 99% accuracy."""
    assert accuracy(load_classifier(), *test_split) >= 0.99


def test_provenance_matches_the_weights_and_the_data(data_dir):
    """The provenance JSON names the command and seed, >= 99.2% test accuracy, and md5s of these weights and data."""
    record = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert record["command"].startswith("python -m gan_lab.classifier") and isinstance(record["seed"], int)
    assert record["test_accuracy"] >= 0.992
    assert record["weights_md5"] == hashlib.md5(WEIGHTS.read_bytes()).hexdigest()
    assert record["data_md5"] == md5s(data_dir)


def test_api_shapes_and_eval_mode(test_split):
    """features (B, 128), logits (B, 10), predict (B,) of (B, 1, 28, 28) images in [0, 1]; frozen, in eval mode."""
    clf = load_classifier()
    x = test_split[0][:8].unsqueeze(1).float() / 255  # (8, 1, 28, 28)
    assert clf.features(x).shape == (8, 128) and clf.logits(x).shape == (8, 10) and clf.predict(x).shape == (8,)
    assert not clf.training and not any(p.requires_grad for p in clf.parameters())
    assert torch.equal(clf.logits(x), clf.logits(x))  # no dropout at evaluation
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        clf.features(torch.zeros(2, 3, 28, 28))


def test_missing_weights_name_the_command(tmp_path):
    """Loading from a missing file says which command creates the weights."""
    with pytest.raises(FileNotFoundError, match="make train-classifier"):
        load_classifier(tmp_path / "none.pt")


@pytest.mark.slow
def test_training_command_writes_weights_and_provenance(tmp_path, data_dir):
    """`python -m gan_lab.classifier` (here on 256 images, 1 epoch) writes loadable weights and their provenance."""
    out = tmp_path / "clf.pt"
    main(["--data-dir", data_dir, "--out", str(out), "--epochs", "1", "--subset", "256", "--seed", "3"])
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["seed"] == 3 and record["train_images"] == 256 and 0.0 <= record["test_accuracy"] <= 1.0
    assert isinstance(load_classifier(out), MNISTClassifier)


def test_training_command_refuses_bad_arguments(tmp_path, capsys):
    """A bad --out or --epochs gives one `error:` line and exit status 2 before any training."""
    for args in (["--out", str(tmp_path / "w.txt")], ["--out", str(tmp_path / "w.pt"), "--epochs", "0"]):
        with pytest.raises(SystemExit) as err:
            main(args)
        assert err.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:")
    assert not Path(tmp_path / "w.pt").exists()


def test_fid_features_are_the_head_inputs_at_unit_scale(data_dir):
    """The FID/KID features are the ReLU outputs the head reads, times FEATURE_SCALE, which gives the 10,000 real
    test digits a mean per-feature variance of 1 (within 1%): the constant matches the committed weights."""
    from datamodules.mnist import mnist_images
    from lab.metrics.backbones import FEATURE_SCALE

    clf = load_classifier()
    images = mnist_images("test", 10000, data_dir).float() / 255
    with torch.no_grad():
        features = clf.features(images)
        assert torch.equal(features, clf.activations(images) * FEATURE_SCALE)
        assert (features >= 0).all()
        logits = clf.head(clf.activations(images))
    assert clf.logits(images).argmax(1).eq(logits.argmax(1)).all()
    assert features.double().var(0).mean().item() == pytest.approx(1.0, rel=0.01)
