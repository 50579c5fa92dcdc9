"""One run of the palindrome sweep (``rnn_lab.sweep``): its settings (``RunSpec``, the run's identity for the shared
runner) and the runner target that trains it (``train_one``)."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from rnn_lab.sweep_report import RunResult

GROUP = "palindrome-sweep"


@dataclass(frozen=True)
class RunSpec:
    """One training run of the sweep."""

    cell: str
    seq_len: int
    seed: int
    max_steps: int
    val_every: int
    target: float
    hidden_dim: int
    batch_size: int
    num_samples: int
    lr: float
    implementation: str
    recurrent_init: str = "default"
    patience: int = 5000  # steps without a gain of plateau_delta in val accuracy before a run stops as stuck
    plateau_delta: float = 0.01
    train_fraction: float = 0.8  # of num_samples; validation gets 1 - train_fraction - test_fraction
    test_fraction: float = 0.1
    settle: int = 0  # steps trained on once validation first reaches the target (0: stop there; left out of the
    # hashed settings when 0, so runs from before the option keep their identity)


def settings(spec: RunSpec) -> dict[str, Any]:
    """A run's identity for the runner: its RunSpec, without ``settle`` when 0."""
    return {k: v for k, v in asdict(spec).items() if k != "settle" or v}


def train_one(config: dict[str, Any], run_dir: Path, resume: bool = False, wandb: bool = False) -> dict[str, Any]:
    """Runner target: trains one classifier as ``config`` (a RunSpec) says; returns its RunResult as a dict. A killed
    run starts again (``resume`` is ignored: sweep runs keep no checkpoint and take minutes)."""
    from pytorch_lightning import Callback, Trainer, seed_everything
    from pytorch_lightning.callbacks import EarlyStopping

    from datamodules.palindrome import PalindromeDataModule
    from lab.loggers import make_wandb_logger
    from rnn_lab.classifier import SequenceClassifier

    spec = RunSpec(**config)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*(num_workers|LeafSpec|val_check_interval).*")
    start = time.perf_counter()
    history: list[tuple[int, float]] = []

    class Record(Callback):  # the validation history; stops ``settle`` steps after it first reached the target
        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                history.append((trainer.global_step, float(trainer.callback_metrics["val/acc"])))
                first = next((step for step, acc in history if acc >= spec.target), None)
                trainer.should_stop |= first is not None and trainer.global_step >= first + spec.settle

    tags = [GROUP, spec.cell, spec.recurrent_init]
    seed_everything(spec.seed, verbose=False)
    data = PalindromeDataModule(
        seq_len=spec.seq_len,
        num_samples=spec.num_samples,
        batch_size=spec.batch_size,
        train_fraction=spec.train_fraction,
        test_fraction=spec.test_fraction,
        seed=spec.seed,
    )
    model = SequenceClassifier(
        cell=spec.cell,
        implementation=spec.implementation,
        recurrent_init=spec.recurrent_init,
        hidden_dim=spec.hidden_dim,
        one_hot=True,
        optimizer=partial(torch.optim.Adam, lr=spec.lr),
    )
    patience = max(1, spec.patience // spec.val_every)  # counted in validations
    stop = EarlyStopping(monitor="val/acc", mode="max", patience=patience, min_delta=spec.plateau_delta)
    trainer = Trainer(
        accelerator="cpu",
        max_steps=spec.max_steps,
        max_epochs=-1,
        val_check_interval=spec.val_every,
        check_val_every_n_epoch=None,
        gradient_clip_val=10.0,
        num_sanity_val_steps=0,
        logger=[make_wandb_logger(str(run_dir), run_dir.name, "gan-rnn-lab", GROUP, tags, job_type=spec.cell)]
        if wandb
        else False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[stop, Record()],
    )
    trainer.fit(model, datamodule=data)
    if not history or history[-1][0] != trainer.global_step:  # the budget ended between two validations
        trainer.validate(model, datamodule=data, verbose=False)
        history.append((trainer.global_step, float(trainer.callback_metrics["val/acc"])))
    trainer.test(model, datamodule=data, verbose=False)  # the final model on the held-out test palindromes
    reached = [step for step, acc in history if acc >= spec.target]
    ended = "target" if reached else "cap" if trainer.global_step >= spec.max_steps else "plateau"
    result = RunResult(
        cell=spec.cell,
        recurrent_init=spec.recurrent_init,
        seq_len=spec.seq_len,
        seed=spec.seed,
        test_acc=float(trainer.callback_metrics["test/acc"]),
        best_val_acc=max(acc for _, acc in history),
        final_val_acc=history[-1][1],
        steps=trainer.global_step,
        steps_to_target=reached[0] if reached else None,
        max_steps=spec.max_steps,
        ended=ended,
        seconds=round(time.perf_counter() - start, 1),
    )
    if wandb:
        summary = {"test_acc": result.test_acc, "best_val_acc": result.best_val_acc, "steps": result.steps}
        trainer.loggers[0].experiment.summary.update(summary)
    return asdict(result)
