"""Optimizer steps for a manual-optimization module: Lightning's path, or a direct one where it computes the same;
and the warm-up weight average (``partial_ema``) that follows the generator's steps.

``LightningModule.manual_backward`` and ``LightningOptimizer.step`` route every backward and every step through the
strategy and the precision plugin, and dispatch ``on_before_backward``, ``on_after_backward`` and
``on_before_optimizer_step`` to every callback (each inside a profiler context) and to the module. On the 2-D mixture
nets a critic step plus a generator step takes about 1-3 ms on one CPU core, and that routing costs about a third of
it (``bench/mixture_overhead.py``).

``DirectSteps`` does the same work without the routing, where that is exact: on a single-device strategy with plain
32-bit precision (``Precision``: its backward is ``loss.backward()``, its step ``optimizer.step()``), it calls

- only the hooks that a callback or the module actually overrides, in Lightning's order (callbacks, then the module),
  with Lightning's arguments (the torch optimizer for ``on_before_optimizer_step``);
- ``loss.backward()`` and the torch optimizer's ``step()``;
- the manual loop's step accounting around the step (``LightningOptimizer._on_before_step``/``_on_after_step``,
  which count optimizer steps: ``global_step``, ``max_steps``).

Anything else (DDP and other strategies, mixed or double precision, a Lightning profiler other than the pass-through
one) gets Lightning's path unchanged. ``direct_steps(module)`` decides once per fit. ``toggled`` is Lightning's
``toggled_optimizer`` with less Python work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule
from pytorch_lightning.plugins.precision import Precision
from pytorch_lightning.profilers import PassThroughProfiler
from pytorch_lightning.strategies import SingleDeviceStrategy
from torch import Tensor

HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


class DirectSteps:
    """Backward and optimizer step with only the overridden hooks called (see the module docstring)."""

    def __init__(self, module: LightningModule) -> None:
        trainer = module.trainer
        self.hooks: dict[str, list[Callable[..., Any]]] = {name: [] for name in HOOKS}
        for name in HOOKS:
            for callback in trainer.callbacks:
                if getattr(type(callback), name) is not getattr(Callback, name):
                    method = getattr(callback, name)
                    self.hooks[name].append(lambda *args, method=method: method(trainer, module, *args))
            if getattr(type(module), name) is not getattr(LightningModule, name):
                self.hooks[name].append(getattr(module, name))

    def __reduce__(self) -> tuple:
        """Pickled or deep-copied (a module sent to spawned processes, say) as None: the hooks belong to one fit's
        trainer, and the module builds a new ``DirectSteps`` when its next fit starts."""
        return type(None), ()

    def backward(self, loss: Tensor) -> None:
        for hook in self.hooks["on_before_backward"]:
            hook(loss)
        loss.backward()
        for hook in self.hooks["on_after_backward"]:
            hook()

    def step(self, optimizer: Any) -> None:
        """``optimizer``: the LightningOptimizer from ``module.optimizers()``."""
        optimizer._on_before_step()
        for hook in self.hooks["on_before_optimizer_step"]:
            hook(optimizer.optimizer)
        optimizer.optimizer.step()
        optimizer._on_after_step()


def direct_steps(module: LightningModule) -> DirectSteps | None:
    """A ``DirectSteps`` for ``module``'s current fit when the direct path is exact, else None (Lightning's path)."""
    trainer = module.trainer
    exact = (
        type(trainer.strategy) is SingleDeviceStrategy
        and type(trainer.precision_plugin) is Precision
        and isinstance(trainer.profiler, PassThroughProfiler)
    )
    return DirectSteps(module) if exact else None


@contextlib.contextmanager
def toggled(module: LightningModule, optimizer: Any) -> Iterator[None]:
    """Lightning's ``toggled_optimizer``: inside the block, every parameter of the trainer's other optimizers that
    ``optimizer`` does not hold has ``requires_grad`` False; after it, each is as it was. In half the time: the
    parameters are found by id, not in a dict keyed by tensors (whose hash is a Python call), and nothing is stored on
    the module (14 instead of 31 us on the 2-D mixture nets)."""
    mine = {id(p) for group in getattr(optimizer, "optimizer", optimizer).param_groups for p in group["params"]}
    every = {id(p): p for opt in module.trainer.optimizers for group in opt.param_groups for p in group["params"]}
    others = [p for key, p in every.items() if key not in mine and p.requires_grad]
    for param in others:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in others:
            param.requires_grad_(True)


def partial_ema(decay: float) -> Any:
    """``AveragedModel``'s ``multi_avg_fn`` for an EMA whose decay warms up as ``min(decay, (1 + n) / (10 + n))`` after
    n updates (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``): the average follows the fast early
    changes instead of holding the random initialisation for ~1 / (1 - decay) steps."""

    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        if not averaged[0].is_floating_point():  # batch norm's num_batches_tracked: keep the live count
            torch._foreach_copy_(averaged, current)
            return
        n = float(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        torch._foreach_lerp_(averaged, current, 1 - d)

    return update
