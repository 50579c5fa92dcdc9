"""FID / IS / class coverage: torchmetrics through the suite's backbones, checked against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn
from torchmetrics.image.inception import InceptionScore

from datamodules.mnist import mnist_images
from lab.errors import LabError
from lab.metrics.backbones import MNISTClassifier, resolve_inception_weights
from lab.metrics.functional import coverage_stats, shard, to_unit_range
from lab.metrics.image import ImageMetrics

# module-scoped fixtures: keep this file on one test worker
pytestmark = pytest.mark.xdist_group("test_metrics")


@pytest.fixture(scope="module")
def classifier() -> MNISTClassifier:
    """A fixed randomly initialised classifier: the FID math does not depend on trained weights."""
    torch.manual_seed(0)
    return MNISTClassifier().eval()


@pytest.fixture(scope="module")
def real(data_dir) -> torch.Tensor:
    return mnist_images("test", 600, data_dir).float() / 255  # (600, 1, 28, 28)


def reference_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance of two feature sets in float64 with scipy's sqrtm (the pytorch-fid formula)."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_matches_float64_scipy_reference(classifier, real):
    """val/fid equals an independent float64 numpy/scipy computation on the same features within 1e-4 relative."""
    noise = torch.randn(real[300:].shape, generator=torch.Generator().manual_seed(0))
    fake = (real[300:] + 0.15 * noise).clamp(0, 1)
    metrics = ImageMetrics(classifier=classifier, batch_size=128)
    metrics.update(real[:300], real=True)
    metrics.update(fake, real=False)
    fid = metrics.compute()["fid"]
    with torch.no_grad():
        f_real = classifier.features(real[:300]).double().numpy()
        f_fake = classifier.features(fake).double().numpy()
    expected = reference_fid(f_real, f_fake)
    assert expected > 0.01
    assert fid == pytest.approx(expected, rel=1e-4)


def test_fid_of_a_set_with_itself_is_zero(classifier, real):
    """FID(x, x) is zero up to round-off, far below the FID of two different sets."""
    metrics = ImageMetrics(classifier=classifier)
    metrics.update(real[:300], real=True)
    metrics.update(real[:300], real=False)
    same = metrics.compute()["fid"]
    metrics.reset()
    metrics.update(real[300:], real=False)
    other = metrics.compute()["fid"]
    assert abs(same) < 1e-3 * other


def test_fid_grows_with_the_shift_of_the_fake_set(classifier, real):
    """FID rises strictly as the generated images move further from the real ones (brightness added)."""
    metrics = ImageMetrics(classifier=classifier)
    metrics.update(real[:300], real=True)
    values = []
    for shift in (0.0, 0.1, 0.2, 0.4):
        metrics.update((real[300:] + shift).clamp(0, 1), real=False)
        values.append(metrics.compute()["fid"])
        metrics.reset()
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), values


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchmetrics' notes on the feature buffer and on std of 1 split
@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_inception_score_of_one_hot_logits_equals_number_of_classes(k):
    """IS of (near) one-hot logits over k equally used classes is k; a single class gives 1."""
    metric = InceptionScore(feature=nn.Identity(), splits=1)
    labels = torch.arange(100 * k) % k
    metric.update(torch.nn.functional.one_hot(labels, 10).float() * 60)  # softmax(60 * one-hot) = one-hot to 1e-25
    score, _ = metric.compute()
    assert float(score) == pytest.approx(k, rel=1e-5)


def test_coverage_of_uniform_and_single_class_histograms():
    """Uniform predictions cover 10 classes with KL 0; one class covers 1 with KL log 10; empty classes count 0."""
    uniform = coverage_stats(torch.full((10,), 7))
    assert int(uniform["classes_covered"]) == 10 and float(uniform["class_kl"]) == pytest.approx(0, abs=1e-12)
    single = coverage_stats(torch.tensor([0, 0, 0, 5, 0, 0, 0, 0, 0, 0]))
    assert int(single["classes_covered"]) == 1 and float(single["class_kl"]) == pytest.approx(math.log(10))
    half = coverage_stats(torch.tensor([3, 3, 0, 0, 0, 0, 0, 0, 0, 0]))
    assert float(half["class_kl"]) == pytest.approx(math.log(10) - math.log(2))


def test_memory_does_not_grow_across_repeated_evaluations(classifier, real):
    """After each compute + reset no generated features remain: IS buffer empty, state sizes constant, real kept."""
    metrics = ImageMetrics(classifier=classifier, batch_size=100)
    metrics.update(real[:300], real=True)

    def state_bytes() -> int:
        total = 0
        for metric in (metrics.fid, metrics.inception_score, metrics.coverage):
            for name in metric._defaults:
                value = getattr(metric, name)
                tensors = value if isinstance(value, list) else [value]
                total += sum(t.numel() * t.element_size() for t in tensors)
        return total

    sizes = []
    for _ in range(4):
        metrics.update(real[300:], real=False)
        assert len(metrics.inception_score.features) == 3  # the buffer holds this round only
        metrics.compute()
        metrics.reset()
        assert len(metrics.inception_score.features) == 0
        assert int(metrics.fid.fake_features_num_samples) == 0
        assert int(metrics.fid.real_features_num_samples) == 300
        sizes.append(state_bytes())
    assert len(set(sizes)) == 1, sizes


def test_compute_leaves_the_global_rng_untouched(classifier, real):
    """InceptionScore shuffles with the global RNG; compute() must not change the training run's random stream."""
    metrics = ImageMetrics(classifier=classifier)
    metrics.update(real[:50], real=True)
    metrics.update(real[50:100], real=False)
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    metrics.compute()
    assert torch.equal(torch.rand(3), expected)


def test_unit_range_mapping_and_shards():
    """Images map from (-1, 1) to [0, 1] (clamped); DDP shards cover every index exactly once."""
    x = torch.tensor([-1.0, 0.0, 1.0, 1.5])
    assert torch.equal(to_unit_range(x, (-1, 1)), torch.tensor([0.0, 0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match="low < high"):
        to_unit_range(x, (1, 1))
    covered = [i for rank in range(3) for i in range(10)[shard(10, rank, 3)]]
    assert covered == list(range(10))


def test_bad_backbone_is_refused(classifier):
    """An unknown backbone name raises a ValueError that lists the choices."""
    with pytest.raises(ValueError, match="classifier, inception"):
        ImageMetrics("resnet", classifier=classifier)


def test_missing_inception_weights_give_one_clear_line(tmp_path, monkeypatch):
    """A missing weights file, or no cache and no network, gives one line naming the fix; it never hangs."""
    with pytest.raises(LabError, match="not found"):
        resolve_inception_weights(tmp_path / "missing.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache
    with pytest.raises(LabError) as err:
        resolve_inception_weights(None, host=("127.0.0.1", 9), timeout=2.0)  # port 9: nothing listens
    message = str(err.value)
    assert "\n" not in message and "--inception-weights" in message and "feature_extractor_weights_path" in message


def make_random_inception_weights(path) -> None:
    """Saves a randomly initialised InceptionV3 state dict (the real architecture) to ``path``, offline."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random initialisation
            return None

    empty = path.parent / "empty.pth"
    torch.save({}, empty)
    torch.manual_seed(0)
    torch.save(Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty)).state_dict(), path)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:std\\(\\):UserWarning")  # IS std of a single split
def test_inception_backbone_runs_offline_with_local_weights(tmp_path, classifier, real):
    """The InceptionV3 path (3-channel repeat, uint8, resize, 2048-d FID, 1008-logit IS) runs end to end offline."""
    weights = tmp_path / "inception.pth"
    make_random_inception_weights(weights)
    metrics = ImageMetrics("inception", classifier=classifier, inception_weights=str(weights), is_splits=1)
    metrics.update(real[:2], real=True)  # 2 + 2 images: InceptionV3 costs ~0.13 s per image on a CPU core
    metrics.update(real[2:4], real=False)
    assert metrics.inception_score.features[0].shape == (2, 1008)
    out = metrics.compute()
    assert set(out) >= {"fid_inception", "is_inception", "classes_covered"}
    assert math.isfinite(out["fid_inception"]) and out["fid_inception"] > 0
    assert 1.0 <= out["is_inception"] <= 2.0 + 1e-4  # at most the number of images in the split
    assert metrics.shared._last is None  # the one-batch output cache is released after each update


def _ddp_metrics_worker(rank: int, world_size: int, init_file: str, real, fake, out: str) -> None:
    """One DDP rank: updates its shard of the real and fake sets, computes; rank 0 saves the synced values."""
    import json

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    torch.manual_seed(0)
    metrics = ImageMetrics(classifier=MNISTClassifier().eval(), is_splits=3)
    metrics.update(real[shard(len(real), rank, world_size)], real=True)
    metrics.update(fake[shard(len(fake), rank, world_size)], real=False)
    values = metrics.compute()
    if rank == 0:
        with open(out, "w") as f:
            json.dump(values, f)
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_ranks_sum_to_the_single_process_values(tmp_path, real):
    """Two gloo ranks, each updating half the images, give the single-process FID, IS, precision / recall / density /
    coverage and class coverage (no rank-0 calls)."""
    import json

    import torch.multiprocessing as mp

    fake = (real[300:] * 0.8).contiguous()
    out = tmp_path / "ddp.json"
    args = (2, str(tmp_path / "init"), real[:300].contiguous(), fake, str(out))
    mp.spawn(_ddp_metrics_worker, args=args, nprocs=2, join=True)
    torch.manual_seed(0)
    single = ImageMetrics(classifier=MNISTClassifier().eval(), is_splits=3)
    single.update(real[:300], real=True)
    single.update(fake, real=False)
    expected = single.compute()
    got = json.loads(out.read_text())
    assert got["fid"] == pytest.approx(expected["fid"], rel=1e-5)
    assert got["is"] == pytest.approx(expected["is"], rel=1e-5)
    assert got["class_histogram"] == expected["class_histogram"]
    for key in ("precision", "recall", "density", "coverage"):  # from KID's feature lists, gathered over ranks
        assert got[key] == pytest.approx(expected[key], rel=1e-9), key


def test_validation_split_metrics_score_against_the_validation_images_not_the_test_split(data_dir):
    """ValidationSplitMetrics (for searches): the reference statistics while fitting are the datamodule's validation
    images, so those same images score FID ~ 0 and the test split's first images do not."""
    from types import SimpleNamespace

    from callbacks.validation_metrics import ValidationSplitMetrics
    from datamodules.mnist import MNISTDataModule, mnist_images

    data = MNISTDataModule(data_dir=str(data_dir), val_size=400, download=False)
    trainer = SimpleNamespace(datamodule=data, global_rank=0, world_size=1)
    module = SimpleNamespace(image_shape=(1, 28, 28), device=torch.device("cpu"))
    callback = ValidationSplitMetrics(n_samples=400, n_real=400, kid_subset_size=100, plot=False)
    callback.on_fit_start(trainer, module)
    scores = {}
    sets = {"val": data.dataset("val").tensors[0], "test": mnist_images("test", 400, str(data_dir))}
    for name, images in sets.items():
        callback.metrics.update(images.float() / 255, real=False)
        scores[name] = callback.metrics.compute(with_prdc=False)["fid"]
        callback.metrics.reset()
    assert callback.real_split == "val" and abs(scores["val"]) < 1e-3 < scores["test"]
    with pytest.raises(ValueError, match="needs a datamodule with a validation split"):
        ValidationSplitMetrics().on_fit_start(SimpleNamespace(datamodule=None), module)
