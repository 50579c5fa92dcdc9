"""FID, KID and IS of ImageMetrics against torch-fidelity's implementations, fed the very same features and logits,
and independent of the batch size the images are scored in."""

from __future__ import annotations

import math

import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kernel_mmd, kid_features_to_metric

from datamodules.mnist import floor_draw, mnist_images
from lab.metrics.backbones import load_classifier
from lab.metrics.image import ImageMetrics

N = 2000  # images per set
BATCH = 500  # ImageMetrics' default batch: the reference features are made in the same batches
KID_ARGS = {"kid_kernel": "poly", "kid_kernel_poly_degree": 3, "kid_kernel_poly_gamma": None,
            "kid_kernel_poly_coef0": 1, "verbose": False}  # fmt: skip  # the KID paper's cubic kernel, as ours

# module-scoped fixtures: keep this file on one test worker
pytestmark = pytest.mark.xdist_group("test_reference_metrics")


@pytest.fixture(scope="module")
def images(data_dir) -> dict[str, torch.Tensor]:
    """The first N test digits (real) and N training digits, clean (the floor's draw) and with pixel noise of sigma
    0.1 (a generator some way off), (N, 1, 28, 28) in [0, 1]."""
    test = mnist_images("test", N, data_dir).float() / 255
    train = floor_draw(N, seed=0, data_dir=data_dir)[0].float() / 255
    noise = 0.1 * torch.randn(train.shape, generator=torch.Generator().manual_seed(0))
    return {"real": test, "clean": train, "noisy": (train + noise).clamp(0, 1)}


def ours(real: torch.Tensor, fake: torch.Tensor, batch_size: int = BATCH, **metric_args) -> dict:
    metrics = ImageMetrics(batch_size=batch_size, **metric_args)
    metrics.update(real, real=True)
    metrics.update(fake, real=False)
    return metrics.compute(seed=0)


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def features(images: torch.Tensor, logits: bool = False) -> torch.Tensor:
    """The classifier's FID features (or IS logits), in ImageMetrics' batches."""
    classifier = load_classifier()
    net = classifier.logits if logits else classifier.features
    with torch.no_grad():
        return torch.cat([net(x) for x in images.split(BATCH)])


@pytest.mark.parametrize("fake", ["clean", "noisy"])
def test_fid_and_one_subset_kid_equal_torch_fidelity(images, fake):
    """FID (torch-fidelity's feature statistics) within 1e-3 relative; KID with one subset of all N images (so no
    random draw) within 1e-3 relative: the floor's training digits and noisy ones."""
    got = ours(images["real"], images[fake], kid_subsets=1, kid_subset_size=N)
    real_f, fake_f = features(images["real"]), features(images[fake])
    fid = fid_statistics_to_metric(fid_features_to_statistics(real_f), fid_features_to_statistics(fake_f), False)
    kid = kid_features_to_metric(real_f, fake_f, kid_subsets=1, kid_subset_size=N, **KID_ARGS)
    print(f"{fake}: fid {got['fid']:.6g}, rel diff {rel(got['fid'], fid['frechet_inception_distance']):.1e}; "
          f"kid {got['kid']:.6g}, rel diff {rel(got['kid'], kid['kernel_inception_distance_mean']):.1e}")  # fmt: skip
    assert got["fid"] == pytest.approx(fid["frechet_inception_distance"], rel=1e-3)
    assert got["kid"] == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-3)


def test_kid_over_100_subsets_equals_torch_fidelity_on_the_same_subsets(images):
    """KID's mean and std over 100 subsets of 1,000 within 1e-3 relative of torch-fidelity's MMD on the same subsets
    (the draws ImageMetrics.compute(seed=0) makes on the CPU generator: IS's shuffle, then KID's real/fake pairs)."""
    got = ours(images["real"], images["noisy"], kid_subsets=100, kid_subset_size=1000)
    real_f, fake_f = features(images["real"]).numpy(), features(images["noisy"]).numpy()
    gen = torch.Generator().manual_seed(0)
    torch.randperm(N, generator=gen)  # InceptionScore's shuffle comes first
    mmds = []
    for _ in range(100):
        real_pick, fake_pick = torch.randperm(N, generator=gen)[:1000], torch.randperm(N, generator=gen)[:1000]
        mmds.append(kernel_mmd(real_f[real_pick.numpy()], fake_f[fake_pick.numpy()], **KID_ARGS))
    mmds = torch.tensor(mmds, dtype=torch.float64)
    print(f"kid {got['kid']:.6g}, rel diff {rel(got['kid'], float(mmds.mean())):.1e}; std rel diff "
          f"{rel(got['kid_std'], float(mmds.std(correction=0))):.1e}")  # fmt: skip
    assert got["kid"] == pytest.approx(float(mmds.mean()), rel=1e-3)
    assert got["kid_std"] == pytest.approx(float(mmds.std(correction=0)), rel=1e-3)  # both: the population std


@pytest.mark.filterwarnings("ignore:std.*degrees of freedom:UserWarning")  # one split: no std
@pytest.mark.parametrize("splits", [1, 10])
def test_inception_score_equals_torch_fidelity(images, splits):
    """IS within 1e-4 relative of torch-fidelity's on the same logits, split the same way (ours shuffles with
    torch.randperm under seed 0, so torch-fidelity gets the logits in that order, unshuffled). Its std differs by
    convention only: torchmetrics' is the sample std over splits, torch-fidelity's the population std."""
    got = ours(images["real"], images["noisy"], is_splits=splits)
    logits = features(images["noisy"], logits=True)
    order = torch.randperm(N, generator=torch.Generator().manual_seed(0))
    reference = isc_features_to_metric(logits[order], splits=splits, shuffle=False)
    print(f"splits {splits}: is {got['is']:.6g}, rel diff {rel(got['is'], reference['inception_score_mean']):.1e}")
    assert got["is"] == pytest.approx(reference["inception_score_mean"], rel=1e-4)
    if splits > 1:
        sample_std = reference["inception_score_std"] * math.sqrt(splits / (splits - 1))
        assert got["is_std"] == pytest.approx(sample_std, rel=1e-3)


def test_batch_size_does_not_change_the_values(images):
    """The same images scored in batches of 50 and of 500: FID, KID and IS agree within 1e-5 relative."""
    real, fake = images["real"][:1000], images["noisy"][:1000]
    small, large = ours(real, fake, batch_size=50), ours(real, fake, batch_size=500)
    print({key: f"{small[key]:.6g}, rel diff {rel(small[key], large[key]):.1e}" for key in ("fid", "kid", "is")})
    for key in ("fid", "kid", "is", "is_std"):
        assert small[key] == pytest.approx(large[key], rel=1e-5), key
    # kid_std is a spread of about 4e-7 around KID: relative to itself it moves by 2e-2 between CPU kernels
    # (MKL_CBWR=COMPATIBLE, measured); beside KID it is exact to 1e-5
    assert small["kid_std"] == pytest.approx(large["kid_std"], abs=1e-5 * abs(large["kid"])), "kid_std"
    for key in ("precision", "recall", "density", "coverage"):  # counts: at most a borderline image may flip
        assert small[key] == pytest.approx(large[key], abs=2e-3), key
