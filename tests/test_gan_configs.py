"""Every GAN config through the real CLI (tiny overrides, real MNIST subset), checkpoints, `sample`, W&B offline."""

from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, run_module

from gan_lab.__main__ import main
from gan_lab.checkpoint import load_module
from lab.errors import LabError

FAMILIES = sorted(path.stem for path in (CONFIGS / "gan").glob("*.yaml"))  # every family, found by its config
TINY_DATA = ["--data.init_args.subset=64", "--data.init_args.val_size=32", "--data.init_args.batch_size=16"]


def config_args(family: str) -> list[str]:
    files = [CONFIGS / "base.yaml", CONFIGS / "gan" / f"{family}.yaml", CONFIGS / "tiny.yaml"]
    return [arg for path in files for arg in ("--config", str(path))]


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_every_config_fits_with_fast_dev_run(family, data_dir, tmp_path, monkeypatch):
    """`fit` with fast_dev_run runs one batch of each family through the real CLI and writes a sample grid."""
    monkeypatch.chdir(tmp_path)  # nothing may land outside tmp_path
    main(["fit", *config_args(family), *TINY_DATA, "--trainer.fast_dev_run=true", f"--run.root={tmp_path}"])
    (grid,) = tmp_path.rglob("samples/epoch=000.png")
    assert {p.name for p in (grid.parent.parent / "interpolation").iterdir()} == {
        "linear_epoch=000.png", "slerp_epoch=000.png", "scaled_epoch=000.png"
    }  # fmt: skip


@pytest.mark.slow
def test_mismatched_value_range_is_one_line_error(data_dir, capsys):
    """Sigmoid-scaled data with a tanh generator stops before training with one line naming both settings."""
    with pytest.raises(SystemExit) as info:
        main(["fit", *config_args("wgan"), "--data.init_args.value_range=sigmoid"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "output_activation 'tanh'" in err


@pytest.mark.slow
def test_subprocess_fit_checkpoint_sample_and_offline_wandb(data_dir, tmp_path):
    """A real `python -m gan_lab fit` exits 0 leaving a checkpoint, PNG grids and a finished offline W&B run;
    the checkpoint reloads, and `sample` writes a PNG and a reproducible (N, 1, 28, 28) tensor in [0, 1]."""
    env = {"LAB_DATA_DIR": data_dir, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    args = ["fit", *config_args("wgan"), *TINY_DATA, "--run.wandb=true", f"--run.root={tmp_path}"]
    proc = run_module("gan_lab", *args, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = tmp_path / "wgan-tiny-s0" / "version_0"
    assert (run_dir / "samples" / "epoch=000.png").is_file()
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    offline = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
    assert list(offline[0].glob("files/media/images/samples_*.png")), "the sample grid was not logged to W&B"

    module = load_module(ckpt)
    assert type(module).__name__ == "WGANGP" and module.sample(2).shape == (2, 1, 28, 28)
    assert type(module).load_from_checkpoint(ckpt).latent_dim == module.latent_dim

    png, pt, pt2 = tmp_path / "s.png", tmp_path / "s.pt", tmp_path / "s2.pt"
    proc = run_module("gan_lab", "sample", "--ckpt", str(ckpt), "--n", "9", "--out", str(png), cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert png.stat().st_size > 0
    main(["sample", "--ckpt", str(ckpt), "--n", "9", "--out", str(pt), "--seed", "3"])
    main(["sample", "--ckpt", str(ckpt), "--n", "9", "--out", str(pt2), "--seed", "3"])
    images = torch.load(pt)
    assert images.shape == (9, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, torch.load(pt2))


def test_load_module_errors(tmp_path):
    """Missing, corrupt and foreign checkpoints give a LabError saying which."""
    with pytest.raises(LabError, match="does not exist"):
        load_module(tmp_path / "none.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(LabError, match="corrupt"):
        load_module(bad)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "torch.nn.Linear"}}, foreign)
    with pytest.raises(LabError, match="not a gan_lab image generator"):
        load_module(foreign)


def test_sample_refuses_bad_output(tmp_path, capsys):
    """`sample` with an unknown suffix exits 2 with one line, before loading anything."""
    with pytest.raises(SystemExit) as info:
        main(["sample", "--ckpt", str(tmp_path / "x.ckpt"), "--out", str(Path(tmp_path) / "x.jpg")])
    assert info.value.code == 2 and ".png, .pt" in capsys.readouterr().err


@pytest.mark.slow
def test_tensorboard_is_added_beside_csv_and_report_still_reads_the_run(data_dir, tmp_path):
    """--run.tensorboard true adds TensorBoard (event file with the sample grid) to the same version folder; the CSV
    log that `report` reads is still written."""
    from lab.report.runs import load_run

    main(["fit", *config_args("gan"), *TINY_DATA, "--run.tensorboard=true", f"--run.root={tmp_path}"])
    run_dir = tmp_path / "gan-tiny-s0" / "version_0"
    (events,) = run_dir.glob("events.out.tfevents.*")
    assert events.stat().st_size > 1000  # scalars and the sample grid image
    assert "train/d_loss" in load_run(tmp_path / "gan-tiny-s0").metric_keys()
