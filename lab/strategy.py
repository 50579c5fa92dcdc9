"""Data parallelism for manual-optimization models (GANs, unrolled and multi-generator loops).

Why not Lightning's ``DDPStrategy``: it wraps the whole LightningModule in one ``DistributedDataParallel``, whose
reducer expects one backward per forward over the parameters that forward used. A GAN step makes several backwards
(critic, then generator), each touching only part of the parameters, and WGAN-GP differentiates twice through the
critic: DDP then fails with "parameters that were not used in producing the loss" or "marked ready twice", and
``find_unused_parameters=True`` does not cure the several-backwards case.

What this strategy does instead, with the same guarantees as DDP: the module is not wrapped; parameters and buffers
are broadcast from rank 0 at setup; after every backward the gradients that this backward produced are averaged over
ranks in one flattened all-reduce (the same set of parameters on every rank, since every rank runs the same code
path); buffers (batch-norm running statistics) are broadcast from rank 0 after every backward, as DDP does on every
forward. Identical starting weights, identical averaged gradients and identical optimizer states keep the replicas
identical. The cost is that communication does not overlap the backward, which matters little for the small
networks of this suite (measured in bench/ddp_overhead.py). Everything else (the distributed sampler, ``sync_dist``
logging, ``SyncBatchNorm`` via ``Trainer(sync_batchnorm=True)``, launchers, multi-node) is Lightning's DDP as is.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from pytorch_lightning.overrides.distributed import _sync_module_states
from pytorch_lightning.strategies import DDPStrategy
from torch import Tensor
from torch.nn import Module


def all_reduce_gradients(module: Module, world_size: int) -> None:
    """Averages over ranks the gradients of every parameter of ``module`` that has one, in one collective."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch._utils._flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= world_size
    for grad, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads), strict=True):
        grad.copy_(synced)


def broadcast_buffers(module: Module) -> None:
    """Copies rank 0's buffers (e.g. batch-norm running statistics) to every rank."""
    buffers = [b for b in module.buffers() if b.numel()]
    if not buffers:
        return
    flat = torch._utils._flatten_dense_tensors(buffers)
    dist.broadcast(flat, src=0)
    for buffer, synced in zip(buffers, torch._utils._unflatten_dense_tensors(flat, buffers), strict=True):
        buffer.copy_(synced)


class GradientSyncDDPStrategy(DDPStrategy):
    """DDP for modules that make several backwards per step: averages gradients after each backward, no wrapper.

    Registered as ``gan_ddp`` (processes launched per device, as ``ddp``) and ``gan_ddp_spawn`` (spawned, as
    ``ddp_spawn``). The CLI picks it automatically when a manual-optimization module is asked to run under ``ddp``.
    """

    strategy_name = "gan_ddp"

    def configure_ddp(self) -> None:
        assert self.model is not None
        _sync_module_states(self.model)

    def post_backward(self, closure_loss: Tensor) -> None:
        if self.world_size > 1 and self.lightning_module is not None:
            all_reduce_gradients(self.lightning_module, self.world_size)
            broadcast_buffers(self.lightning_module)

    @classmethod
    def register_strategies(cls, strategy_registry: Any) -> None:
        strategy_registry.register("gan_ddp", cls, description="DDP by gradient all-reduce after each backward")
        strategy_registry.register(
            "gan_ddp_spawn", cls, description="gan_ddp with spawned processes", start_method="spawn"
        )


def register() -> None:
    """Makes ``gan_ddp`` and ``gan_ddp_spawn`` valid ``Trainer(strategy=...)`` names (idempotent)."""
    from pytorch_lightning.strategies import StrategyRegistry

    if "gan_ddp" not in StrategyRegistry:
        GradientSyncDDPStrategy.register_strategies(StrategyRegistry)
