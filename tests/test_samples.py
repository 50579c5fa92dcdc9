"""SampleGrid and LatentInterpolation: fixed noise, PNG files, restored mode, interpolation paths."""

import torch
from pytorch_lightning import Trainer

from callbacks.interpolation import LatentInterpolation, interpolation_path, slerp
from callbacks.metrics import GenerativeMetrics
from callbacks.samples import SampleGrid
from datamodules.mnist import MNISTDataModule
from datamodules.stacked_mnist import StackedMNISTDataModule
from gan_lab.nets.mlp import MLPDiscriminator, MLPGenerator
from gan_lab.wgan import WGANGP


def tiny_module() -> WGANGP:
    return WGANGP(MLPGenerator(latent_dim=4, hidden_dims=(8,)), MLPDiscriminator(hidden_dims=(8,)))


def test_paths_start_and_end_at_their_endpoints():
    """Linear and slerp paths run from z1 to z2; the scaled path ends at 2 * z2."""
    z1, z2 = torch.randn(3, 6), torch.randn(3, 6)
    for mode, end in (("linear", z2), ("slerp", z2), ("scaled", 2 * z2)):
        path = interpolation_path(z1, z2, 5, mode)
        assert path.shape == (3, 5, 6)
        assert torch.allclose(path[:, 0], z1, atol=1e-5) and torch.allclose(path[:, -1], end, atol=1e-5)


def test_slerp_keeps_the_norm_between_equal_norm_points():
    """Between two points of equal norm, slerp stays on the sphere (linear interpolation cuts inside it)."""
    z1 = torch.tensor([[3.0, 0.0]])
    z2 = torch.tensor([[0.0, 3.0]])
    path = slerp(z1, z2, torch.linspace(0, 1, 7))
    assert torch.allclose(path.norm(dim=-1), torch.full((1, 7), 3.0), atol=1e-5)
    assert interpolation_path(z1, z2, 7, "linear")[0, 3].norm() < 2.9


def test_callbacks_write_pngs_with_fixed_noise_and_restore_mode(tmp_path):
    """The callbacks write their PNGs in the run dir, reuse the same noise each time, and leave train mode on."""
    module = tiny_module()
    trainer = Trainer(default_root_dir=tmp_path, logger=False, max_epochs=1, accelerator="cpu")
    grid, interp = SampleGrid(nrow=3), LatentInterpolation(rows=2, steps=4)
    module.train()
    for callback in (grid, interp):
        callback.on_train_epoch_end(trainer, module)
    assert module.training
    assert (tmp_path / "samples" / "epoch=000.png").is_file()
    assert len(list((tmp_path / "interpolation").glob("*_epoch=000.png"))) == 3
    first = grid.noise(module).clone()
    assert torch.equal(grid.noise(module), first)
    image = grid.make_grid(module)
    assert image.shape == (3, 3 * 28 + 4 * 2, 3 * 28 + 4 * 2) and 0 <= image.min() and image.max() <= 1


def test_module_attaches_callbacks_unless_given(tmp_path):
    """configure_callbacks adds SampleGrid, LatentInterpolation and the metrics, but not a type the trainer has."""
    module = tiny_module()
    module.trainer = Trainer(default_root_dir=tmp_path, logger=False, callbacks=[SampleGrid(nrow=2)])
    assert module.configure_callbacks() == []  # no data declared what its samples are scored by
    module.check_datamodule(MNISTDataModule)  # declares scored_by = "mnist"
    added = module.configure_callbacks()
    assert [type(cb) for cb in added] == [LatentInterpolation, GenerativeMetrics]
    assert added[1].n_samples == module.metrics_samples == 10000  # a full run: the usual FID sample size
    module.trainer = Trainer(default_root_dir=tmp_path, logger=False, limit_train_batches=3)
    assert module.configure_callbacks()[-1].n_samples == 256  # a smoke run (configs/tiny.yaml): small metrics
    module.sample_every_n_epochs = 0
    assert [type(cb) for cb in module.configure_callbacks()] == [GenerativeMetrics]
    module.metrics_every_n_epochs = 0
    assert module.configure_callbacks() == []
    module.sample_every_n_epochs = 1
    module.check_datamodule(StackedMNISTDataModule)  # images without the MNIST metrics
    assert [type(cb) for cb in module.configure_callbacks()] == [SampleGrid, LatentInterpolation]
