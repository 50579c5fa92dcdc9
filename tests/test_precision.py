"""Mixed precision: every image family trains under ``--trainer.precision=bf16-mixed`` (CPU autocast here, the same
code path as a GPU's), with the gradient penalty and the unrolled second-order step kept in float32."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import CONFIGS

from gan_lab import losses
from gan_lab.__main__ import build

FAMILIES = sorted(p.stem for p in (CONFIGS / "gan").glob("*.yaml"))


def fit(family: str, precision: str, tmp_path, batches: int = 6, run: bool = True):
    """The CLI's model, data and trainer for a tiny run of ``family`` (metrics and images off), fitted if ``run``."""
    args = [f"--config={CONFIGS / 'base.yaml'}", f"--config={CONFIGS / 'gan' / f'{family}.yaml'}",
            f"--config={CONFIGS / 'tiny.yaml'}", f"--trainer.precision={precision}",
            f"--trainer.limit_train_batches={batches}", "--model.init_args.metrics_every_n_epochs=0",
            "--model.init_args.sample_every_n_epochs=0", f"--run.root={tmp_path / precision}"]  # fmt: skip
    cli = build(args)
    if run:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return cli


@pytest.mark.parametrize("family", FAMILIES)
def test_every_image_family_trains_under_bf16_mixed(family, tmp_path, data_dir):
    """A few batches under bf16-mixed: autocast really ran (bf16 activations), every logged loss and every weight is
    finite, and the generator moved."""
    seen: list[torch.dtype] = []
    cli = fit(family, "bf16-mixed", tmp_path, batches=2 if family == "dcgan" else 6, run=False)
    net = getattr(cli.model, "generator", None) or cli.model.decoder  # the VAE's generator is its decoder
    first = next(net.parameters()).detach().clone()
    hook = net.register_forward_hook(
        lambda m, i, out: seen.append(out[0].dtype if isinstance(out, tuple) else out.dtype)
    )
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    hook.remove()
    assert torch.bfloat16 in seen, f"{family}: the generator never ran under bf16 autocast"
    losses_logged = {k: v for k, v in cli.trainer.logged_metrics.items() if k.startswith("train/")}
    assert losses_logged, f"{family}: nothing logged"
    for name, value in losses_logged.items():
        assert math.isfinite(float(value)), f"{family}: {name} = {value}"
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())
    assert not torch.equal(first, next(net.parameters()).detach())


def test_gradient_penalty_is_float32_under_autocast():
    """Under bf16 autocast the penalty is computed in float32 and equals the float32 value exactly."""
    torch.manual_seed(0)
    critic = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.LeakyReLU(0.2), torch.nn.Linear(8, 1)
    )
    real, fake, alpha = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4), torch.rand(4)
    reference = losses.gradient_penalty(critic, real, fake, alpha)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = losses.gradient_penalty(critic, real.bfloat16(), fake.bfloat16(), alpha)
    assert mixed.dtype == torch.float32
    expected = losses.gradient_penalty(critic, real.bfloat16().float(), fake.bfloat16().float(), alpha)
    assert torch.equal(mixed, expected) and torch.allclose(mixed, reference, rtol=0.05)


@pytest.mark.parametrize("family", ["wgan", "unrolled"])
def test_one_step_under_bf16_matches_float32(family, tmp_path, data_dir):
    """The first logged losses of a bf16-mixed run are within 5% of a float32 run's from the same seed (the
    penalty's double backward and the unrolled second-order step are float32 in both)."""
    batches = 1  # the generator's first step: after n_critic batches (1 for both)
    runs = {p: fit(family, p, tmp_path, batches=batches) for p in ("32-true", "bf16-mixed")}
    values = {p: {k: float(v) for k, v in cli.trainer.logged_metrics.items() if k in ("train/d_loss", "train/g_loss")}
              for p, cli in runs.items()}  # fmt: skip
    assert values["32-true"] and values["32-true"].keys() == values["bf16-mixed"].keys()
    for key, value in values["32-true"].items():
        assert values["bf16-mixed"][key] == pytest.approx(value, rel=0.05, abs=0.02), key
