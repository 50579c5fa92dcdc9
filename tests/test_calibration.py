"""The metric calibration: FID and KID rise and IS falls with known damage to real digits (docs/evaluation.md)."""

from __future__ import annotations

import pytest
import torch

from datamodules.mnist import MNISTDataModule
from lab.metrics.calibration import calibrate, damages, is_monotone

pytestmark = pytest.mark.xdist_group("test_calibration")


@pytest.fixture(scope="module")
def rows(data_dir):
    data = MNISTDataModule(data_dir=data_dir, val_size=0, download=False)
    test = data.dataset("test").tensors[0][:1500].float() / 255
    images, labels = data.dataset("train").tensors
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:1500]
    return calibrate(test, images[pick].float() / 255, labels[pick], kid_subset_size=500)


def test_every_damage_moves_every_metric_the_right_way(rows):
    """At n = 1,500 per set: blur and removed classes are monotone from the floor on; so is noise from sigma 0.1
    (sigma 0.05 is within the sampling spread of the floor at this n; the committed n = 10,000 table resolves it)."""
    verdict = is_monotone(rows)
    assert verdict["blur"] and verdict["removed"], verdict
    noise = [r for r in rows if r["kind"] == "noise" and r["level"] >= 0.1]
    assert is_monotone([next(r for r in rows if r["kind"] == "none"), *noise])["noise"]
    floor = rows[0]
    assert floor["row"] == "none (floor)" and floor["classes_covered"] == 10 and floor["is"] > 9.0
    removed = {r["level"]: r for r in rows if r["kind"] == "removed"}
    assert removed[5]["is"] < 6.0  # five digits left: IS near 5


def test_is_monotone_catches_a_metric_that_turns_back():
    rows = [{"kind": "none", "level": 0, "fid": 1, "kid": 0.1, "is": 9}]
    rows += [{"kind": "noise", "level": s, "fid": f, "kid": 0.2 * f, "is": 9 - f} for s, f in ((0.1, 2), (0.2, 4))]
    assert is_monotone(rows) == {"noise": True}
    rows.append({"kind": "noise", "level": 0.4, "fid": 3, "kid": 1.0, "is": 2})
    assert is_monotone(rows) == {"noise": False}


def test_class_removal_keeps_the_set_size_and_drops_the_classes():
    images, labels = torch.rand(100, 1, 28, 28), torch.arange(100) % 10
    kind, level, damage = damages()["3 classes removed"]
    out = damage(images, labels)
    assert kind == "removed" and level == 3 and out.shape == images.shape
    kept = {int(labels[(images == img).flatten(1).all(1)][0]) for img in out}
    assert kept <= set(range(3, 10))
