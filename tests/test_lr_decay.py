"""WallClockLRDecay: the learning rate against the wall-time budget, in a real fit and as a pure schedule."""

from __future__ import annotations

import pytest
import torch
from pytorch_lightning import LightningModule, Trainer

from callbacks.lr_decay import WallClockLRDecay


class Tiny(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.seen: list[float] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(self.optimizers().param_groups[0]["lr"])
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)

    def train_dataloader(self):
        data = torch.utils.data.TensorDataset(torch.randn(64, 2))
        return torch.utils.data.DataLoader(data, batch_size=8)


def test_the_schedule_is_flat_before_start_then_linear_to_final():
    decay = WallClockLRDecay(start=0.5, final=0.1)
    decay.budget = 100.0
    assert [decay.factor(t) for t in (0, 50, 75, 100, 150)] == pytest.approx([1.0, 1.0, 0.55, 0.1, 0.1])


def test_in_a_fit_the_learning_rate_falls_with_the_seconds_spent(tmp_path, monkeypatch):
    """A fake clock that reads 0 at the start of training and advances 1 s per read after: batch b (from 0) reads
    b + 1 s of a 16 s budget, so its lr is 0.01 * (1 - (b + 1) / 16)."""
    clock = iter(float(t) for t in range(1000))
    monkeypatch.setattr("callbacks.lr_decay.time.monotonic", lambda: next(clock))
    model = Tiny()
    trainer = Trainer(max_epochs=2, callbacks=[WallClockLRDecay(seconds=16)], logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")  # fmt: skip
    trainer.fit(model)
    assert model.seen == pytest.approx([0.01 * (1 - (b + 1) / 16) for b in range(16)])


def test_without_a_budget_it_says_what_it_needs():
    trainer = Trainer(max_epochs=1, callbacks=[WallClockLRDecay()], logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")  # fmt: skip
    with pytest.raises(ValueError, match="needs a budget: trainer.max_time"):
        trainer.fit(Tiny())
    with pytest.raises(ValueError, match="0 <= start < 1"):
        WallClockLRDecay(start=1.0)
