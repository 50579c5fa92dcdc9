"""Ring and grid mixtures: shapes, mode positions, reproducibility, and clear errors."""

import math

import pytest
import torch

from datamodules.mixtures import GaussianMixtureDataModule, mixture_centres


def test_ring_modes_on_unit_circle_at_equal_angles():
    """The 8-ring has its means at radius 1 and angles 2*pi*k/8."""
    centres = mixture_centres("ring", 8, 1.0)
    assert centres.shape == (8, 2)
    torch.testing.assert_close(centres.norm(dim=1), torch.ones(8))
    angles = torch.atan2(centres[:, 1], centres[:, 0]) % (2 * math.pi)
    torch.testing.assert_close(angles, 2 * math.pi * torch.arange(8) / 8, atol=1e-6, rtol=0)


def test_grid_modes_at_published_positions():
    """The 25-grid has its means exactly at {-4,-2,0,2,4}^2."""
    centres = mixture_centres("grid", 25, 2.0)
    expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {tuple(int(v) for v in c.tolist()) for c in centres} == expected
    assert torch.equal(centres, centres.round())


def test_batches_shape_spread_and_fresh_each_epoch():
    """Batches are (B, 2) points with their mode index, close to their mode, fresh but reproducible per epoch."""
    dm = GaussianMixtureDataModule("grid", 25, 2.0, 0.05, samples_per_epoch=2048, batch_size=512, seed=3)
    loader = dm.train_dataloader()
    epoch1 = list(loader)
    assert len(epoch1) == 4
    points, modes = epoch1[0]
    assert points.shape == (512, 2) and points.dtype == torch.float32 and modes.shape == (512,)
    offsets = points - dm.centres[modes]
    assert offsets.std().item() == pytest.approx(0.05, rel=0.15)
    assert len(modes.unique()) == 25
    epoch2 = list(loader)
    assert not torch.equal(epoch1[0][0], epoch2[0][0])
    again = list(GaussianMixtureDataModule("grid", 25, 2.0, 0.05, 2048, 512, seed=3).train_dataloader())
    torch.testing.assert_close(again[0][0], epoch1[0][0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "spiral"}, "kind must be one of ring, grid"),
        ({"kind": "grid", "n_modes": 24}, "square number"),
        ({"std": 0.0}, "std must be > 0"),
        ({"batch_size": 1024, "samples_per_epoch": 100}, "samples_per_epoch >= batch_size"),
    ],
)
def test_bad_settings_fail_with_clear_message(kwargs, message):
    """Wrong settings raise a ValueError naming the problem at construction."""
    with pytest.raises(ValueError, match=message):
        GaussianMixtureDataModule(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize(
    "experiment, family",
    [("ring", "gan"), ("ring", "wgan"), ("grid", "unrolled"), ("ring", "madgan"), ("grid", "pacgan")],
)
def test_mixture_configs_fit_with_fast_dev_run(experiment, family, tmp_path, monkeypatch):
    """Each mixture config runs `fit` through the real CLI and the mode callback writes its JSON and strip."""
    from conftest import CONFIGS

    from gan_lab.__main__ import main

    monkeypatch.chdir(tmp_path)
    files = [
        CONFIGS / "base.yaml",
        CONFIGS / "mixtures" / f"{experiment}.yaml",
        CONFIGS / "mixtures" / f"{family}.yaml",
    ]
    files.append(CONFIGS / "tiny.yaml")
    args = [arg for path in files for arg in ("--config", str(path))]
    main(["fit", *args, "--trainer.fast_dev_run=true", f"--run.root={tmp_path}"])
    (found,) = tmp_path.rglob("modes.json")  # in the run folder (fast_dev_run has no logger version)
    assert (found.parent / "modes_strip.png").is_file() and (found.parent / "modes" / "epoch_0001.png").is_file()


def test_stream_state_resumes_and_ranks_differ():
    """The datamodule's state (saved in checkpoints) continues the stream; another rank draws other points."""
    dm = GaussianMixtureDataModule("ring", 8, 1.0, 0.01, samples_per_epoch=256, batch_size=128, seed=1)
    loader = dm.train_dataloader()
    list(loader)
    second = list(loader)
    state = dm.state_dict()
    resumed = GaussianMixtureDataModule("ring", 8, 1.0, 0.01, samples_per_epoch=256, batch_size=128, seed=1)
    resumed.load_state_dict({"epoch": state["epoch"] - 1})
    torch.testing.assert_close(list(resumed.train_dataloader())[0][0], second[0][0])
    streams = [GaussianMixtureDataModule("ring", 8, 1.0, 0.01, 256, 128, seed=1)._stream for _ in range(2)]
    streams[1].rank = 1  # what train_dataloader sets from trainer.global_rank under DDP
    assert not torch.equal(next(iter(streams[0]))[0], next(iter(streams[1]))[0])


def test_net_scale_maps_data_units_to_unit_units():
    """scale multiplies the generator's output and divides the discriminator's input; MAD-GAN heads keep it."""
    from gan_lab.madgan import MultiGenerator
    from gan_lab.nets.mixture import MixtureDiscriminator, MixtureGenerator

    torch.manual_seed(0)
    plain, scaled = MixtureGenerator(4, 8, 1), MixtureGenerator(4, 8, 1, scale=4.0)
    scaled.load_state_dict(plain.state_dict())  # same keys: checkpoints of unscaled nets still load
    z = torch.randn(16, 4)
    torch.testing.assert_close(scaled(z), 4.0 * plain(z))
    d_plain, d_scaled = MixtureDiscriminator(2, 8, 1), MixtureDiscriminator(2, 8, 1, scale=4.0)
    d_scaled.load_state_dict(d_plain.state_dict())
    x = torch.randn(16, 2)
    torch.testing.assert_close(d_scaled(4.0 * x), d_plain(x))
    shared = MultiGenerator(scaled, 3, shared_trunk=True)
    assert all(head.scale == 4.0 for head in shared.heads)
    with pytest.raises(ValueError, match="scale must be a positive number"):
        MixtureGenerator(scale=0.0)


def test_stacks_hold_the_single_batches_in_order():
    """batches_per_item k stacks k consecutive batches of the k = 1 stream: same points, same order, len / k items."""
    single = GaussianMixtureDataModule("ring", 8, 1.0, 0.01, samples_per_epoch=1024, batch_size=64, seed=2)
    stacked = GaussianMixtureDataModule("ring", 8, 1.0, 0.01, 1024, 64, seed=2, batches_per_item=4)
    batches, items = list(single.train_dataloader()), list(stacked.train_dataloader())
    assert len(batches) == 16 and len(items) == 4 and len(stacked.train_dataloader()) == 4
    points, modes = items[1]
    assert points.shape == (4, 64, 2) and modes.shape == (4, 64)
    for i in range(4):
        assert torch.equal(points[i], batches[4 + i][0]) and torch.equal(modes[i], batches[4 + i][1])
    with pytest.raises(ValueError, match="divide the 16 batches"):
        GaussianMixtureDataModule(samples_per_epoch=1024, batch_size=64, batches_per_item=3)


def ring_gan(tmp_path, per_item: int, *extra: str):
    """A fitted ring GAN (gan.yaml: linear LR decay) of 2 epochs x 8 batches, ``per_item`` batches per loader item."""
    from conftest import CONFIGS

    from gan_lab.__main__ import build

    files = [CONFIGS / "base.yaml", *(CONFIGS / "mixtures" / f"{name}.yaml" for name in ("ring", "gan"))]
    args = [f"--config={path}" for path in (*files, CONFIGS / "tiny.yaml")] + [f"--run.root={tmp_path}",
            "--trainer.max_epochs=2", "--trainer.limit_train_batches=null", "--trainer.enable_checkpointing=false",
            "--data.init_args.samples_per_epoch=1024", f"--data.init_args.batches_per_item={per_item}",
            *extra]  # fmt: skip
    cli = build(args)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return cli


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), ("--trainer.max_steps=11", "--trainer.max_epochs=-1")])
def test_stacked_batches_train_exactly_like_single_batches(tmp_path, extra):
    """k = 4 batches per item: the same weights (bit for bit), critic steps, optimizer steps and learning rates as
    k = 1, over whole epochs and for a max_steps budget that ends inside a stack."""
    single, stacked = ring_gan(tmp_path / "single", 1, *extra), ring_gan(tmp_path / "stacked", 4, *extra)
    assert stacked.trainer.num_training_batches == single.trainer.num_training_batches // 4
    assert stacked.model.critic_steps == single.model.critic_steps == (6 if extra else 16)
    assert stacked.trainer.global_step == single.trainer.global_step
    for a, b in zip(single.model.optimizers(), stacked.model.optimizers(), strict=True):
        assert a.param_groups[0]["lr"] == b.param_groups[0]["lr"]
    weights, again = single.model.state_dict(), stacked.model.state_dict()
    assert all(torch.equal(weights[key], again[key]) for key in weights)


def test_scatter_pngs_follow_their_own_cadence(tmp_path):
    """Statistics every 2 epochs, scatter PNGs only at multiples of png_every_n_epochs and after the last epoch."""
    from pytorch_lightning import Trainer

    from callbacks.modes import MixtureModes
    from datamodules.mixtures import GaussianMixtureDataModule
    from gan_lab.gan import GAN
    from gan_lab.nets.mixture import MixtureDiscriminator, MixtureGenerator

    modes = MixtureModes(every_n_epochs=2, n_samples=200, png_every_n_epochs=4)
    module = GAN(MixtureGenerator(4, 16, 2), MixtureDiscriminator(2, 16, 2), sample_every_n_epochs=0,
                 metrics_every_n_epochs=0)  # fmt: skip
    data = GaussianMixtureDataModule(kind="ring", n_modes=8, samples_per_epoch=256, batch_size=128)
    trainer = Trainer(max_epochs=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                      callbacks=[modes])  # fmt: skip
    trainer.fit(module, datamodule=data)
    assert [h["epoch"] for h in modes.history] == [1, 3, 5]  # 0-based: after epochs 2, 4 and 6
    assert sorted(p.name for p in tmp_path.rglob("epoch_*.png")) == ["epoch_0004.png", "epoch_0006.png"]
    with pytest.raises(ValueError, match="png_every_n_epochs"):
        MixtureModes(png_every_n_epochs=0)
