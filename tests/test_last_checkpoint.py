"""``last.ckpt`` is the final state of a run, whatever the monitored metric did (Lightning 2.6 alone leaves it at the
best epoch), with and without a validation loop, and with a ``max_steps`` budget that ends inside an epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from lab.checkpoint import checkpoint_callback


class Falling(LightningModule):
    """A linear model whose logged score is best at epoch 0 and worse every epoch after."""

    def __init__(self, with_validation: bool) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.with_validation = with_validation

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def on_train_epoch_end(self) -> None:
        if not self.with_validation:
            self.log("score", -float(self.current_epoch))

    def validation_step(self, batch, batch_idx):
        self.log("score", -float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(40, 2)), batch_size=10)  # 4 steps per epoch

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(10, 2)), batch_size=10) if self.with_validation else []


def fit(tmp_path: Path, callback, with_validation: bool = False, **trainer_args) -> dict[str, tuple[int, int]]:
    """Fits Falling with ``callback``; returns {checkpoint file name: (epoch, global_step)}."""
    trainer = Trainer(
        default_root_dir=tmp_path, callbacks=[callback], logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, **trainer_args,
    )  # fmt: skip
    trainer.fit(Falling(with_validation))
    found = {}
    for path in Path(callback.dirpath).glob("*.ckpt"):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        found[path.name] = (ckpt["epoch"], ckpt["global_step"])
    return found


@pytest.mark.parametrize("with_validation", [False, True], ids=["epoch-end", "validation-end"])
def test_last_is_the_final_epoch_and_best_the_best(tmp_path, with_validation):
    callback = checkpoint_callback(("score", "max"))
    found = fit(tmp_path, callback, with_validation, max_epochs=5)
    assert found == {"best-epoch=000.ckpt": (0, 4), "last.ckpt": (4, 20)}


def test_a_budget_ending_inside_an_epoch_is_written(tmp_path):
    found = fit(tmp_path, checkpoint_callback(None), max_epochs=10, max_steps=10)  # ends after 2 of 4 steps of epoch 2
    assert found == {"last.ckpt": (2, 10)}


class FilesAtEpochStart(Callback):
    """Lists the checkpoint folder at the start of every epoch after the first: what the epochs before wrote."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.seen = folder, []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch:
            self.seen.append(sorted(p.name for p in self.folder.glob("*.ckpt")))


def fit_watched(tmp_path: Path, callback, **trainer_args) -> tuple[dict[str, tuple[int, int]], list[list[str]]]:
    """``fit`` with the checkpoint folder listed at each epoch start (no Lightning internals patched)."""
    callback.dirpath = str(tmp_path / "checkpoints")
    probe = FilesAtEpochStart(tmp_path / "checkpoints")
    trainer = Trainer(
        default_root_dir=tmp_path, callbacks=[callback, probe], logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, **trainer_args,
    )  # fmt: skip
    trainer.fit(Falling(False))
    found = {p.name: (torch.load(p, weights_only=True)["epoch"], torch.load(p, weights_only=True)["global_step"])
             for p in Path(callback.dirpath).glob("*.ckpt")}  # fmt: skip
    return found, probe.seen


def test_min_interval_skips_epoch_writes_but_not_the_end(tmp_path):
    found, seen = fit_watched(tmp_path, checkpoint_callback(None, min_interval_s=3600.0), max_epochs=3)
    assert found == {"last.ckpt": (3, 12)}  # written after the loop: epoch counts 3 done
    assert seen == [[], []]  # no epoch-end write within the hour


def test_min_interval_also_throttles_the_last_written_beside_each_new_best(tmp_path):
    """A score that improves every epoch saves a best every epoch; last.ckpt follows only at the end."""
    found, seen = fit_watched(tmp_path, checkpoint_callback(("score", "min"), min_interval_s=3600.0), max_epochs=3)
    assert found == {"best-epoch=002.ckpt": (2, 12), "last.ckpt": (3, 12)}
    assert seen == [["best-epoch=000.ckpt"], ["best-epoch=001.ckpt"]]  # top-1: each new best replaces the last


class EveryThird(Falling):
    """Logs a falling score only after every third epoch and after the last, as FID every few epochs is logged."""

    def on_train_epoch_end(self) -> None:
        epoch = self.current_epoch + 1
        if epoch % 3 == 0 or epoch == self.trainer.max_epochs:
            self.log("score", -float(self.current_epoch))


@pytest.mark.parametrize(("max_epochs", "best"), [(2, 1), (7, 2)])
def test_best_follows_a_metric_computed_every_few_epochs_from_its_first_evaluation(tmp_path, max_epochs, best):
    """A score computed after epochs 3, 6 and the last: best-epoch is the first evaluation (the score falls after),
    a run shorter than the cadence still gets a best checkpoint from its last epoch, and last.ckpt is the end."""
    callback = checkpoint_callback(("score", "max", 3))
    trainer = Trainer(default_root_dir=tmp_path, callbacks=[callback], logger=False, enable_progress_bar=False,
                      enable_model_summary=False, max_epochs=max_epochs)  # fmt: skip
    trainer.fit(EveryThird(with_validation=False))
    names = sorted(path.name for path in Path(callback.dirpath).glob("*.ckpt"))
    assert names == [f"best-epoch={best:03d}.ckpt", "last.ckpt"]
    assert torch.load(Path(callback.dirpath) / "last.ckpt", weights_only=True)["epoch"] == max_epochs - 1
