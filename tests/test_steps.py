"""gan_lab.steps: the direct optimizer steps compute what Lightning's path computes, call the same hooks the same
number of times with the same arguments, count the same steps, and are used only where that is exact."""

import pytest
import torch
from pytorch_lightning import Callback, Trainer

from datamodules.mnist import MNISTDataModule
from gan_lab.gan import GAN
from gan_lab.nets.mlp import MLPDiscriminator, MLPGenerator
from gan_lab.steps import DirectSteps


class HookCount(Callback):
    """Counts the three step hooks and records which kind of optimizer ``on_before_optimizer_step`` receives."""

    def __init__(self) -> None:
        self.calls = {"before_backward": 0, "after_backward": 0, "before_step": 0}
        self.optimizer_types: set[type] = set()
        self.finite_losses = True

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.calls["before_backward"] += 1
        self.finite_losses &= bool(torch.isfinite(loss))

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls["after_backward"] += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.calls["before_step"] += 1
        self.optimizer_types.add(type(optimizer))


def train(data_dir, tmp_path, direct: bool, **trainer_kwargs) -> tuple[GAN, Trainer, HookCount]:
    torch.manual_seed(0)
    module = GAN(
        generator=MLPGenerator(latent_dim=8, hidden_dims=(16,), output_activation="tanh"),
        discriminator=MLPDiscriminator(hidden_dims=(16,)),
        sample_every_n_epochs=0,
        metrics_every_n_epochs=0,
    )
    if not direct:  # Lightning's path: what the direct one must reproduce
        module.on_fit_start = lambda: setattr(module.trainer, "limit_val_batches", 0)
    probe = HookCount()
    data = MNISTDataModule(data_dir=data_dir, subset=6 * 8, batch_size=8, val_size=0)
    trainer = Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                      callbacks=[probe], **trainer_kwargs)  # fmt: skip
    trainer.fit(module, datamodule=data)
    return module, trainer, probe


def test_direct_steps_give_lightnings_weights_hooks_and_step_count(data_dir, tmp_path):
    """Six GAN batches: the same weights bit for bit, 12 optimizer steps (global_step), every hook 12 times with a
    torch optimizer; and the direct path really ran (the module chose it for this fit)."""
    chosen = []
    original = DirectSteps.step

    def spy(self, optimizer):
        chosen.append(type(optimizer).__name__)  # LightningOptimizer makes a subclass per optimizer: LightningAdam
        original(self, optimizer)

    DirectSteps.step = spy
    try:
        direct, direct_trainer, direct_probe = train(data_dir, tmp_path / "a", direct=True)
    finally:
        DirectSteps.step = original
    lightning, lightning_trainer, lightning_probe = train(data_dir, tmp_path / "b", direct=False)
    assert chosen == ["LightningAdam"] * 12
    assert direct_trainer.global_step == lightning_trainer.global_step == 12
    assert direct_probe.calls == lightning_probe.calls == {k: 12 for k in direct_probe.calls}
    assert direct_probe.optimizer_types == lightning_probe.optimizer_types == {torch.optim.Adam}
    for (name, a), (_, b) in zip(direct.state_dict().items(), lightning.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("precision", ["bf16-mixed", "64-true"])
def test_other_precisions_keep_lightnings_path(data_dir, tmp_path, precision):
    """Where the precision plugin does more than backward() and step(), the module keeps Lightning's path."""
    chosen = []
    original = DirectSteps.step
    DirectSteps.step = lambda self, optimizer: chosen.append(1) or original(self, optimizer)
    try:
        _, trainer, probe = train(data_dir, tmp_path, direct=True, precision=precision)
    finally:
        DirectSteps.step = original
    assert not chosen and trainer.global_step == 12 and probe.calls["before_step"] == 12


def test_a_pickled_module_leaves_the_direct_steps_behind(data_dir, tmp_path):
    """The hooks belong to one fit's trainer: a pickled or copied module carries None and rebuilds them next fit."""
    import copy
    import pickle

    module, _, _ = train(data_dir, tmp_path, direct=True)
    module._direct = DirectSteps(module)
    assert copy.deepcopy(module._direct) is None and pickle.loads(pickle.dumps(module._direct)) is None


def test_toggled_optimizer_freezes_what_lightnings_does_and_restores_it():
    """GANModule's cheaper toggled_optimizer against Lightning's on the same optimizers: a parameter both optimizers
    hold stays trainable, one frozen before stays frozen, the other optimizer's are frozen inside and restored after."""
    from types import SimpleNamespace

    from pytorch_lightning import LightningModule

    module = GAN(
        generator=MLPGenerator(latent_dim=8, hidden_dims=(16,), output_activation="tanh"),
        discriminator=MLPDiscriminator(hidden_dims=(16,)),
    )
    g_params, d_params = list(module.generator.parameters()), list(module.discriminator.parameters())
    shared, frozen = d_params[0], d_params[1]
    frozen.requires_grad_(False)
    g_opt = torch.optim.SGD([*g_params, shared], lr=0.1)
    d_opt = torch.optim.SGD(d_params, lr=0.1)
    module.trainer = SimpleNamespace(optimizers=[g_opt, d_opt])  # the public setter: toggling reads its optimizers
    states = {}
    for name, toggled in (("ours", GAN.toggled_optimizer), ("lightning", LightningModule.toggled_optimizer)):
        with toggled(module, g_opt):
            inside = [p.requires_grad for p in module.parameters()]
        states[name] = inside, [p.requires_grad for p in module.parameters()]
    assert states["ours"] == states["lightning"]
    inside, after = states["ours"]
    assert inside[len(g_params)] and not any(inside[len(g_params) + 1 :]) and all(inside[: len(g_params)])
    assert after == [True] * len(g_params) + [True, False] + [True] * (len(d_params) - 2)
