"""The body of the DDP tests: runs in each of N processes started by ``torch.multiprocessing.spawn``.

Every process sets the environment variables of an externally launched job (as torchrun would), so Lightning joins
the same gloo process group in each ``fit`` instead of launching processes itself; one spawn then serves every
family, which keeps the DDP tests within seconds per family on a CPU.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import torch
import torch.distributed as dist


def state_hash(module: torch.nn.Module) -> str:
    """md5 of every tensor of the state dict, in order."""
    digest = hashlib.md5()
    for value in module.state_dict().values():
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def run_cases(rank: int, world_size: int, port: int, cases: dict[str, tuple[str, list[str]]], out: str) -> None:
    """Fits every case (name -> (python module, CLI args)) under DDP; rank 0 writes hashes and losses as JSON."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world_size),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        NODE_RANK="0",
    )
    import importlib

    results = {}
    for name, (package, args) in cases.items():
        cli = importlib.import_module(f"{package}.__main__").build(args)
        cli.trainer.fit(cli.model, cli.datamodule)
        losses = {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("train/")}
        gathered: list = [None] * world_size
        dist.all_gather_object(
            gathered,
            {
                "hash": state_hash(cli.model),
                "losses": losses,
                "strategy": type(cli.trainer.strategy).__name__,
                "steps": cli.trainer.global_step,
                "manual": not cli.model.automatic_optimization,
            },
        )
        results[name] = gathered
    if rank == 0:
        Path(out).write_text(json.dumps(results, indent=1))
    # Leave the gloo group before the process exits: left to interpreter shutdown, its threads were sometimes
    # destroyed while running ("terminate called without an active exception", SIGABRT in one rank).
    dist.barrier()
    dist.destroy_process_group()


def all_finite(losses: dict[str, float]) -> bool:
    return bool(losses) and all(math.isfinite(v) for v in losses.values())
