"""Reliability callbacks every run gets from the CLI: divergence guard, checkpoint on interrupt, RNG state.

- ``DivergenceGuard`` stops training at the first NaN/Inf in a logged training loss or in a gradient, before the
  optimizer applies it, with one message naming the step and the culprit; the checkpoints already written stay good.
- ``InterruptCheckpoint`` writes ``<run dir>/checkpoints/interrupted.ckpt`` on Ctrl-C or SIGTERM and prints the
  command that resumes from it.
- ``RNGStateCheckpoint`` saves and restores the torch / numpy / Python random states with each checkpoint, so a run
  resumed from an epoch-end checkpoint draws the same noise and the same shuffle order as the uninterrupted run.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning import Callback
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_info
from torch.optim import Optimizer

from callbacks.cuda_check import FastCudaCheck
from callbacks.timing import TrainTime
from lab.errors import DivergenceError
from lab.paths import run_dir


def last_good_checkpoint(trainer: pl.Trainer) -> str:
    """The newest checkpoint the run wrote, or a phrase saying there is none yet."""
    callback = trainer.checkpoint_callback
    path = getattr(callback, "last_model_path", "") or getattr(callback, "best_model_path", "")
    return path if path else "none written yet"


class DivergenceGuard(Callback):
    """Raises ``DivergenceError`` at the first non-finite training loss or gradient.

    Args:
        check_gradients: also check every gradient before each optimizer step (one fused norm per optimizer).
    """

    def __init__(self, check_gradients: bool = True) -> None:
        self.check_gradients = check_gradients

    def _fail(self, trainer: pl.Trainer, what: str) -> None:
        raise DivergenceError(
            f"training diverged at step {trainer.global_step} (epoch {trainer.current_epoch}): {what}; "
            f"last good checkpoint: {last_good_checkpoint(trainer)}"
        )

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        if not self.check_gradients:
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads or all_finite(grads):
            return
        named = {id(p.grad): name for name, p in pl_module.named_parameters() if p.grad is not None}
        bad = next(named.get(id(g), "?") for g in grads if not torch.isfinite(g).all())  # names only when wrong
        self._fail(trainer, f"non-finite gradient of {bad}")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *args: Any) -> None:
        losses = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        if isinstance(outputs, torch.Tensor):
            losses["loss"] = outputs
        elif isinstance(outputs, dict) and isinstance(outputs.get("loss"), torch.Tensor):
            losses["loss"] = outputs["loss"]
        for name, value in losses.items():
            number = float(value.detach().float().mean()) if isinstance(value, torch.Tensor) else float(value)
            if not math.isfinite(number):
                self._fail(trainer, f"{name} = {number}")


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """True when no element of ``tensors`` is NaN or infinite: one fused pass per device (the check behind
    ``torch.amp.GradScaler``, with an unscale factor of exactly 1, so the values are left as they are) and one host
    read. A quarter of the cost of a fused norm plus a stack on the 2-D mixture nets, where the guard runs twice per
    generator step."""
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for tensor in tensors:
        by_device.setdefault(tensor.device, []).append(tensor)
    flags = []
    for device, group in by_device.items():
        flags.append(torch.zeros(1, device=device))
        torch._amp_foreach_non_finite_check_and_unscale_(group, flags[-1], torch.ones(1, device=device))
    return not any(flag.item() for flag in flags)


class InterruptCheckpoint(Callback):
    """On Ctrl-C or SIGTERM during fit, saves ``<run dir>/checkpoints/interrupted.ckpt`` and says how to resume."""

    filename = "interrupted.ckpt"

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        if trainer.state.fn != "fit":
            return
        folder = run_dir(trainer)
        path = folder / "checkpoints" / self.filename
        trainer.save_checkpoint(path)
        rank_zero_info(
            f"Interrupted at step {trainer.global_step}: saved {path}; resume with the same command plus "
            f"`--ckpt_path {path}`"
        )


class RNGStateCheckpoint(Callback):
    """Per-rank RNG streams, saved in each checkpoint and restored on resume.

    - Under DDP every rank is seeded alike by ``seed_everything``, so every rank would draw the same noise: at the start
      of a fresh fit each rank's global RNGs are reseeded with ``seed + rank`` (rank 0 keeps the run's seed).
    - ``state_dict`` gathers the torch, numpy and Python RNG states of every rank into the checkpoint (as plain lists,
      so checkpoints load with ``torch.load(weights_only=True)``); on resume each rank gets its own back in
      ``on_train_start``, after the sanity check and data set-up of the resumed run, so the first resumed batch sees
      the RNG exactly as the uninterrupted run did. Exact when the loaders do not draw from the global RNG
      (``datamodules.sampling.make_loader``).
    """

    def __init__(self) -> None:
        self._pending: list[dict[str, Any]] | None = None

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state = {
            "torch": torch.get_rng_state().tolist(),
            "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
            "python": _to_lists(random.getstate()),
        }
        if dist.is_available() and dist.is_initialized():
            states: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(states, state)
            return {"ranks": states}
        return {"ranks": [state]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict["ranks"]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is None:
            if trainer.world_size > 1 and trainer.global_rank > 0:
                seed = torch.initial_seed() + trainer.global_rank
                torch.manual_seed(seed)
                np.random.seed(seed % 2**32)
                random.seed(seed)
            return
        states, self._pending = self._pending, None
        if len(states) != trainer.world_size:
            rank_zero_info(
                f"RNG states were saved for {len(states)} ranks and the run resumes on {trainer.world_size}: "
                f"rank r takes saved state r mod {len(states)}"
            )
        state = states[trainer.global_rank % len(states)]
        torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        random.setstate(_to_tuples(state["python"]))


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, tuple | list) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value


def default_callbacks() -> list[Callback]:
    """Callbacks every run gets: divergence guard, checkpoint on Ctrl-C/SIGTERM, RNG states in checkpoints, the
    training time (``time/train_s``, without evaluation), and a cheap CUDA check on machines without a GPU."""
    return [DivergenceGuard(), InterruptCheckpoint(), RNGStateCheckpoint(), TrainTime(), FastCudaCheck()]
