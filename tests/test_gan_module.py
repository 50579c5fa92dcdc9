"""GANModule bookkeeping: n_critic scheduling, WGAN clipping, value-range checks, resumable phase."""

import pytest
import torch
from pytorch_lightning import Trainer

from datamodules.mnist import MNISTDataModule
from gan_lab.gan import GAN
from gan_lab.nets.mlp import MLPDiscriminator, MLPGenerator
from gan_lab.wgan import WGAN, WGANGP


def tiny_nets(output_activation: str = "tanh") -> dict:
    return {
        "generator": MLPGenerator(latent_dim=8, hidden_dims=(16,), output_activation=output_activation),
        "discriminator": MLPDiscriminator(hidden_dims=(16,)),
    }


def fit(module, data_dir, batches: int, tmp_path, **data_kwargs) -> Trainer:
    data = MNISTDataModule(data_dir=data_dir, subset=batches * 8, batch_size=8, val_size=0, **data_kwargs)
    trainer = Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    return trainer


def adam_steps(optimizer: torch.optim.Optimizer) -> int:
    return int(next(iter(optimizer.state.values()))["step"])


@pytest.mark.slow
def test_n_critic_five_steps_discriminator_five_times_per_generator_step(data_dir, tmp_path):
    """With n_critic=5 over 20 batches the critic optimiser steps 20 times and the generator's 4 times."""
    module = WGANGP(**tiny_nets(), n_critic=5, sample_every_n_epochs=0)
    trainer = fit(module, data_dir, 20, tmp_path)
    g_opt, d_opt = (opt.optimizer if hasattr(opt, "optimizer") else opt for opt in trainer.optimizers)
    assert adam_steps(d_opt) == 20 and adam_steps(g_opt) == 4
    assert module.critic_steps == 20 and trainer.global_step == 24


def test_optimizers_come_generator_first(data_dir, tmp_path):
    """configure_optimizers returns (generator, discriminator) in that order."""
    module = GAN(**tiny_nets(), sample_every_n_epochs=0)
    g_opt, d_opt = module.configure_optimizers()
    assert {id(p) for p in g_opt.param_groups[0]["params"]} == {id(p) for p in module.generator.parameters()}
    assert {id(p) for p in d_opt.param_groups[0]["params"]} == {id(p) for p in module.discriminator.parameters()}


@pytest.mark.slow
def test_wgan_weights_stay_clipped_after_every_critic_step(data_dir, tmp_path):
    """After each WGAN critic step every critic weight lies in [-c, c] (checked at each step, not only at the end)."""
    worst: list[float] = []

    class Watched(WGAN):
        def after_discriminator_step(self) -> None:
            super().after_discriminator_step()
            worst.append(max(p.abs().max().item() for p in self.discriminator.parameters()))

    module = Watched(**tiny_nets(), clip_value=0.01, sample_every_n_epochs=0)
    fit(module, data_dir, 6, tmp_path)
    assert len(worst) == 6 and max(worst) <= 0.01


def test_value_range_must_match_generator_output(data_dir):
    """A sigmoid generator with tanh-scaled data is refused with a message naming both."""
    with pytest.raises(ValueError, match="value_range 'tanh'.*output_activation 'sigmoid'"):
        GAN(**tiny_nets("sigmoid"), value_range="tanh")
    module = GAN(**tiny_nets("sigmoid"), value_range="sigmoid")
    assert module.data_range == (0.0, 1.0)


def test_sample_protocol_restores_mode_and_range():
    """sample(n) gives (n, 1, 28, 28) in data_range without grad, and keeps the module in train mode."""
    module = WGANGP(**tiny_nets())
    module.train()
    images = module.sample(6)
    assert images.shape == (6, 1, 28, 28) and not images.requires_grad
    assert images.min() >= -1 and images.max() <= 1 and module.training
    z = torch.randn(3, 8)
    assert torch.equal(module.sample(3, z=z), module.sample(3, z=z))


def test_wgan_gp_refuses_batch_norm_in_critic():
    """A batch-norm critic is refused for WGAN-GP (the penalty is per sample)."""
    nets = tiny_nets()
    nets["discriminator"] = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(784), torch.nn.Linear(784, 1))
    with pytest.raises(ValueError, match="batch norm"):
        WGANGP(**nets)


def test_instance_noise_anneals_to_zero():
    """Instance-noise sigma starts at its value and decays linearly to 0 over instance_noise_steps critic steps."""
    module = GAN(**tiny_nets(), instance_noise=0.2, instance_noise_steps=100)
    assert module.instance_noise_sigma() == pytest.approx(0.2)
    module.critic_steps = 50
    assert module.instance_noise_sigma() == pytest.approx(0.1)
    module.critic_steps = 150
    assert module.instance_noise_sigma() == 0.0


@pytest.mark.slow
def test_critic_phase_survives_checkpoint(data_dir, tmp_path):
    """critic_steps (which fixes the n_critic phase) is saved in the checkpoint and restored on load."""
    module = WGANGP(**tiny_nets(), n_critic=5, sample_every_n_epochs=0)
    trainer = fit(module, data_dir, 7, tmp_path)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    restored = WGANGP.load_from_checkpoint(path, weights_only=False)  # nets built in Python are pickled
    assert restored.critic_steps == 7


def test_linear_lr_schedule_holds_then_decays_to_zero(data_dir, tmp_path):
    """lr_schedule=linear with lr_decay_start=0.5 over 20 batches: lr constant for batches 0-10, then falling by
    lr/10 per batch, 0 after the last; both optimizers alike."""
    from pytorch_lightning import Callback

    seen: list[tuple[float, float]] = []

    class Watch(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(tuple(opt.param_groups[0]["lr"] for opt in trainer.optimizers))

    module = GAN(**tiny_nets(), sample_every_n_epochs=0, lr_schedule="linear", lr_decay_start=0.5)
    data = MNISTDataModule(data_dir=data_dir, subset=20 * 8, batch_size=8, val_size=0)
    trainer = Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, callbacks=[Watch()],
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    base = 2e-4  # GAN's default Adam lr
    expected = [base * min(1.0, (20 - k) / 10) for k in range(20)]
    assert [g for g, _ in seen] == pytest.approx(expected) and [d for _, d in seen] == pytest.approx(expected)
    assert all(opt.param_groups[0]["lr"] == pytest.approx(0.0) for opt in trainer.optimizers)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"lr_schedule": "cosine"}, "lr_schedule must be one of constant, linear"),
     ({"lr_decay_start": 1.0}, "lr_decay_start must be in [0, 1)")],
)  # fmt: skip
def test_bad_lr_schedule_fails_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        GAN(**tiny_nets(), **kwargs)


def test_generator_ema_averages_the_live_weights_and_samples_from_the_average(data_dir, tmp_path):
    """ema_decay > 0: after every generator step the average moves towards the live generator by (1 - d) with the
    warmed-up decay d = min(decay, (1 + n) / (10 + n)); eval-mode samples come from the average, train-mode
    forward passes from the live weights; the average is in the checkpoint; without it nothing changes."""
    from gan_lab.steps import partial_ema

    torch.manual_seed(0)
    module = WGANGP(**tiny_nets(), n_critic=1, sample_every_n_epochs=0, metrics_every_n_epochs=0, ema_decay=0.99)
    before = [p.detach().clone() for p in module.generator_ema.module.parameters()]
    trainer = fit(module, data_dir, 6, tmp_path)
    assert int(module.generator_ema.n_averaged) == 6
    live = list(module.generator.parameters())
    averaged = list(module.generator_ema.module.parameters())
    assert not any(torch.equal(a, p) for a, p in zip(averaged, live, strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(averaged, before, strict=True))
    # the rule itself, on one tensor: after n = 2 updates the decay is 3 / 12
    avg, cur = [torch.zeros(3)], [torch.ones(3)]
    partial_ema(0.99)(avg, cur, torch.tensor(2))
    assert torch.allclose(avg[0], torch.full((3,), 1 - 3 / 12))
    z = torch.randn(4, 8)
    module.eval()
    assert torch.equal(module.generate(z), module.generator_ema.module(z))
    module.train()
    assert torch.equal(module.generate(z), module.generator(z))
    path = tmp_path / "ema.ckpt"
    trainer.save_checkpoint(path)
    restored = WGANGP.load_from_checkpoint(path, weights_only=False).eval()
    assert torch.equal(restored.sample(4, z=z), module.sample(4, z=z))
    plain = WGANGP(**tiny_nets(), sample_every_n_epochs=0)
    assert plain.generator_ema is None and not any(k.startswith("generator_ema") for k in plain.state_dict())


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_bad_ema_decay_fails_clearly(decay):
    with pytest.raises(ValueError, match=r"ema_decay must be in \[0, 1\)"):
        WGANGP(**tiny_nets(), ema_decay=decay)


def test_train_time_and_generator_steps_are_logged_each_epoch(data_dir, tmp_path):
    """TrainTime logs time/train_s (> 0, carried in its state dict) and the module progress/generator_steps
    (critic steps // n_critic): the budget columns of the family tables."""
    from callbacks.timing import TrainTime

    timer = TrainTime()
    module = WGANGP(**tiny_nets(), n_critic=5, sample_every_n_epochs=0, metrics_every_n_epochs=0)
    data = MNISTDataModule(data_dir=data_dir, subset=12 * 8, batch_size=8, val_size=0)
    trainer = Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                      callbacks=[timer])  # fmt: skip
    trainer.fit(module, datamodule=data)
    logged = trainer.callback_metrics
    assert float(logged["progress/generator_steps"]) == 24 // 5
    assert 0 < float(logged["time/train_s"]) == pytest.approx(timer.seconds, abs=0.01)
    restored = TrainTime()
    restored.load_state_dict(timer.state_dict())
    assert restored.seconds == timer.seconds


def test_cuda_check_is_cheap_while_training_without_a_gpu(data_dir, tmp_path):
    """FastCudaCheck unsets Lightning's PYTORCH_NVML_BASED_CUDA_CHECK=1 during a fit when no GPU is visible (kept
    with one), and puts it back when the Trainer tears down."""
    import os

    from pytorch_lightning import Callback

    from callbacks.cuda_check import VARIABLE, FastCudaCheck

    seen = []

    class Probe(Callback):
        def on_train_batch_start(self, *args) -> None:
            seen.append(os.environ.get(VARIABLE))

    assert os.environ.get(VARIABLE) == "1"  # set by importing Lightning
    module = GAN(**tiny_nets(), sample_every_n_epochs=0, metrics_every_n_epochs=0)
    data = MNISTDataModule(data_dir=data_dir, subset=2 * 8, batch_size=8, val_size=0)
    trainer = Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                      callbacks=[FastCudaCheck(), Probe()])  # fmt: skip
    trainer.fit(module, datamodule=data)
    assert seen == [None if torch.cuda.device_count() == 0 else "1"] * 2
    assert os.environ.get(VARIABLE) == "1"


def test_cuda_check_restores_the_variable_when_the_fit_raises(data_dir, tmp_path):
    """A fit that raises never reaches the callbacks' teardown: FastCudaCheck puts the variable back all the same."""
    import os

    from callbacks.cuda_check import VARIABLE, FastCudaCheck

    class Broken(GAN):
        def training_step(self, batch, batch_idx):
            raise RuntimeError("boom")

    os.environ[VARIABLE] = "1"
    module = Broken(**tiny_nets(), sample_every_n_epochs=0, metrics_every_n_epochs=0)
    data = MNISTDataModule(data_dir=data_dir, subset=2 * 8, batch_size=8, val_size=0)
    trainer = Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                      callbacks=[FastCudaCheck()])  # fmt: skip
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(module, datamodule=data)
    assert os.environ.get(VARIABLE) == "1"
