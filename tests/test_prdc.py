"""Precision, recall, density, coverage: equal to the authors' `prdc` package, and the right way round on MNIST."""

from __future__ import annotations

import math

import pytest
import torch
from prdc import compute_prdc

from datamodules.mnist import MNISTDataModule
from lab.metrics.backbones import load_classifier
from lab.metrics.image import ImageMetrics
from lab.metrics.prdc import knn_radii, prdc

KEYS = ("precision", "recall", "density", "coverage")


@pytest.mark.parametrize(
    ("n_real", "n_fake", "dim", "shift", "chunk_size"),
    [(50, 50, 2, 0.0, 1000), (300, 200, 16, 0.5, 64), (200, 350, 128, 0.2, 1000), (1000, 800, 64, 1.0, 333)],
)
def test_prdc_equals_the_reference_package(n_real, n_fake, dim, shift, chunk_size):
    """On random features of several shapes, k = 5, every value equals `prdc.compute_prdc` within 1e-6 relative
    (whatever the chunking); shifted and scaled fakes keep every value away from the trivial 0 and 1."""
    gen = torch.Generator().manual_seed(n_real + dim)
    real = torch.randn(n_real, dim, generator=gen)
    fake = 1.2 * torch.randn(n_fake, dim, generator=gen) + shift
    ours = prdc(real, fake, k=5, chunk_size=chunk_size)
    reference = compute_prdc(real.double().numpy(), fake.double().numpy(), nearest_k=5)  # float64: no rounding ties
    for key in KEYS:
        assert ours[key] == pytest.approx(float(reference[key]), rel=1e-6, abs=0), key


def test_radii_exclude_the_point_itself():
    """The k-th neighbour radius skips the point: on 0, 1, 3, 6 (k = 1) the radii are 1, 1, 2, 3."""
    points = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    assert knn_radii(points, k=1, chunk_size=3).tolist() == [1.0, 1.0, 2.0, 3.0]


def test_bad_shapes_and_k_are_refused():
    """Features of different widths, or a set no larger than k, raise a ValueError that names the problem."""
    with pytest.raises(ValueError, match="features must be"):
        prdc(torch.zeros(10, 3), torch.zeros(10, 4))
    with pytest.raises(ValueError, match="below both set sizes"):
        prdc(torch.randn(10, 3), torch.randn(5, 3), k=5)


@pytest.fixture(scope="module")
def digits(data_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint halves of the MNIST test split: 2,000 digits of classes 0-4 from the first half (the "generator"),
    2,000 digits of all classes from the second (the real set), (N, 1, 28, 28) in [0, 1]."""
    images, labels = MNISTDataModule(data_dir=data_dir, val_size=0, download=False).dataset("test").tensors
    images = images.float() / 255
    first, second = images[:5000], images[5000:]
    low_digits = first[labels[:5000] <= 4][:2000]
    return second[:2000], low_digits


def test_half_the_classes_have_high_precision_and_low_recall(digits):
    """Real digits of classes 0-4 scored against real digits of all classes (classifier features, through
    ImageMetrics): precision >= 0.85 (every sample is a real digit) and recall <= 0.6 (half the classes are never
    made); swapping the roles swaps them (a swap of precision and recall in the code would fail here)."""
    real, low_digits = digits
    metrics = ImageMetrics(kid_subsets=2)
    metrics.update(real, real=True)
    metrics.update(low_digits, real=False)
    values = metrics.compute()
    assert values["precision"] >= 0.85 and values["recall"] <= 0.6, values
    assert values["coverage"] <= 0.6, values  # half the real balls hold no generated digit

    classifier = load_classifier()  # the same features ImageMetrics scores, batch for batch
    real_features = torch.cat([classifier.features(x) for x in real.split(metrics.batch_size)])
    fake_features = torch.cat([classifier.features(x) for x in low_digits.split(metrics.batch_size)])
    direct = prdc(real_features, fake_features)
    for key in KEYS:
        assert values[key] == pytest.approx(direct[key], rel=1e-12), (
            key
        )  # ImageMetrics: the pure function on its states
    swapped = prdc(fake_features, real_features)
    assert swapped["recall"] >= 0.85 and swapped["precision"] <= 0.6, swapped


def test_too_few_images_give_nan_not_an_error(digits):
    """With no more images than k, precision and the rest are NaN and the other metrics still come out."""
    real, low_digits = digits
    metrics = ImageMetrics(kid_subset_size=4)
    metrics.update(real[:4], real=True)
    metrics.update(low_digits[:4], real=False)
    values = metrics.compute()
    assert all(math.isnan(values[key]) for key in KEYS) and math.isfinite(values["fid"])
