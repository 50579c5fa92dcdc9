"""Mode metrics (PacGAN protocol) on hand-made sample sets, and the strip plot."""

import math

import pytest
import torch

from callbacks.modes import plot_mixture_strip
from datamodules.mixtures import mixture_centres
from lab.metrics.functional import kl_to_uniform, mixture_mode_stats, stacked_mode_stats

RING = mixture_centres("ring", 8, 1.0)
GRID = mixture_centres("grid", 25, 2.0)


@pytest.mark.parametrize("centres, std", [(RING, 0.01), (GRID, 0.05)])
def test_all_samples_at_the_centres(centres, std):
    """Samples exactly at every centre, evenly: all modes, 100% HQ, reverse KL 0."""
    samples = centres.repeat(100, 1)
    stats = mixture_mode_stats(samples, centres, std)
    assert stats["modes"] == stats["modes_gated"] == len(centres)
    assert stats["hq_percent"] == pytest.approx(100.0)
    assert stats["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_all_samples_at_one_centre():
    """Every sample on one centre: 1 mode, 100% HQ, reverse KL log K."""
    samples = GRID[7].repeat(2500, 1)
    stats = mixture_mode_stats(samples, GRID, 0.05)
    assert stats["modes"] == 1 and stats["counts"][7] == 2500
    assert stats["reverse_kl"] == pytest.approx(math.log(25))


def test_hq_threshold_is_three_sigma():
    """A point at 2.9 sigma from its mode is HQ and counts; one at 3.1 sigma is neither."""
    std = 0.01
    samples = torch.stack([RING[0] + torch.tensor([2.9 * std, 0.0]), RING[1] + torch.tensor([0.0, 3.1 * std])])
    stats = mixture_mode_stats(samples, RING, std)
    assert stats["hq_percent"] == pytest.approx(50.0)
    assert stats["modes"] == 1 and stats["counts"][0] == 1 and stats["counts"][1] == 0


def test_points_between_modes_are_not_hq():
    """Points midway between ring modes are low quality and capture nothing; reverse KL is then NaN."""
    mid = (RING + RING.roll(1, 0)) / 2
    stats = mixture_mode_stats(mid, RING, 0.01)
    assert stats["modes"] == stats["modes_gated"] == 0 and stats["hq_percent"] == 0.0
    assert math.isnan(stats["reverse_kl"])


def test_gated_count_needs_a_fifth_of_what_the_true_mixture_puts_there():
    """On the 8-ring with 1,000 samples the true mixture puts 1000 * (1 - e^-4.5) / 8 = 123.6 HQ points in each mode:
    a mode holding 25 points passes the 20% gate (24.7), 24 or 1 do not; the protocol's count takes every mode with a
    point. Low-quality points raise the expectation (more samples) without adding HQ points."""
    per_mode = torch.tensor([25, 24, 1, 0, 150, 150, 150, 150])  # 650 HQ points
    samples = torch.cat([RING[k].repeat(int(n), 1) for k, n in enumerate(per_mode)] + [torch.full((350, 2), 5.0)])
    stats = mixture_mode_stats(samples, RING, 0.01)
    assert stats["counts"] == per_mode.tolist()
    assert stats["modes"] == 7 and stats["modes_gated"] == 5
    assert mixture_mode_stats(samples, RING, 0.01, gate=0.0)["modes_gated"] == 7  # 0: the protocol's count
    more_low_quality = torch.cat([samples, torch.full((1000, 2), 5.0)])  # 2,000 samples: gate 49.4
    assert mixture_mode_stats(more_low_quality, RING, 0.01)["modes_gated"] == 4
    with pytest.raises(ValueError, match="gate"):
        mixture_mode_stats(samples, RING, 0.01, gate=1.5)


def test_gated_count_is_not_fooled_by_a_uniform_cloud_on_the_grid():
    """The 25-grid with 2,500 samples: real samples score 25 gated modes, a uniform cloud over the data's box <= 2
    (while the protocol's count gives it 20 or more), all mass on one mode 1."""
    from gan_lab.baselines import mixture_baselines

    rows = {row["label"]: row for row in mixture_baselines("grid", seeds=[0, 1, 2])}
    for seed_stats in rows["real samples"]["runs"]:
        assert seed_stats["val/modes_gated"] == 25
    for seed_stats in rows["uniform cloud over the box"]["runs"]:
        assert seed_stats["val/modes_gated"] <= 2 and seed_stats["val/modes"] >= 18
    for seed_stats in rows["one mode"]["runs"]:
        assert seed_stats["val/modes_gated"] == seed_stats["val/modes"] == 1


def test_reverse_kl_matches_scipy_entropy():
    """kl_to_uniform equals scipy's relative entropy of the histogram against the uniform distribution."""
    from scipy.stats import entropy

    counts = torch.tensor([10, 0, 3, 50, 1, 0, 7, 2])
    assert kl_to_uniform(counts) == pytest.approx(entropy(counts.numpy(), [1 / 8] * 8))


def test_stacked_modes_and_kl():
    """Stacked digits map to 100 r + 10 g + b; all 1,000 modes evenly gives KL 0, one mode gives log 1000."""
    every = torch.cartesian_prod(torch.arange(10), torch.arange(10), torch.arange(10))  # (1000, 3)
    stats = stacked_mode_stats(every)
    assert stats["modes"] == 1000 and stats["kl"] == pytest.approx(0.0, abs=1e-12)
    one = stacked_mode_stats(torch.tensor([[3, 1, 4]]).repeat(50, 1))
    assert one["modes"] == 1 and one["kl"] == pytest.approx(math.log(1000))


def test_strip_plot_writes_png(tmp_path):
    """The strip plot writes a PNG with one panel per snapshot."""
    snapshots = [(e, RING.repeat(10, 1), mixture_mode_stats(RING, RING, 0.01)) for e in (1, 2, 3)]
    path = plot_mixture_strip(snapshots, RING, 0.01, tmp_path / "strip.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
