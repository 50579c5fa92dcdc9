"""Cost of the gradient-sync DDP strategy: WGAN-GP steps/s on 1 process vs 2 processes (gloo, CPU), same global batch.

    python bench/ddp_overhead.py [--batches 40] [--global-batch 64]

Both runs train the `make train-wgan` networks on real MNIST (LAB_DATA_DIR) through the same CLI; timing covers the
training batches after a warm-up, measured by a callback. On a 2-core CPU the two processes get one thread each where
the single process gets two, so the ratio shows the strategy's overhead plus the threading difference; on GPUs each
rank has its own device.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp
from pytorch_lightning import Callback

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WARMUP = 5


class StepTimer(Callback):
    """Wall time from the end of warm-up batch WARMUP to the end of the last training batch.

    Epoch-end work (metric callbacks, teardown) is outside the window: it is the same on both sides and is not
    what the strategy changes.
    """

    def __init__(self) -> None:
        self.start = self.end = 0.0
        self.batches = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches += 1
        self.end = time.perf_counter()
        if self.batches == WARMUP:
            self.start = self.end

    def seconds_per_batch(self) -> float:
        return (self.end - self.start) / (self.batches - WARMUP)


def fit(devices: int, batch_size: int, batches: int, root: str) -> float:
    from gan_lab.__main__ import build

    args = [f"--config={REPO / 'configs' / n}" for n in ("base.yaml", "gan/wgan.yaml", "tiny.yaml")]
    args += [
        "--trainer.accelerator=cpu",
        f"--trainer.devices={devices}",
        f"--trainer.strategy={'ddp' if devices > 1 else 'auto'}",
        "--trainer.logger=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}",
        "--trainer.enable_checkpointing=false",
        f"--trainer.limit_train_batches={batches}",
        "--trainer.limit_val_batches=0",
        f"--data.init_args.batch_size={batch_size}",
        f"--data.init_args.subset={batch_size * devices * batches}",
        "--model.init_args.sample_every_n_epochs=0",
    ]
    cli = build(args)
    timer = StepTimer()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, cli.datamodule)
    return timer.seconds_per_batch()


def worker(rank: int, port: int, batch_size: int, batches: int, out: str, root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    os.environ.update(LOCAL_RANK=str(rank), NODE_RANK="0")
    # each rank gets its share of the cores, whatever OMP_NUM_THREADS says (2 ranks x 2 threads on 2 cores measured
    # 6.3x, oversubscription rather than the strategy); Lightning does the same when OMP_NUM_THREADS is unset
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    os.environ["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    seconds = fit(2, batch_size, batches, root)
    if rank == 0:
        Path(out).write_text(json.dumps(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--global-batch", type=int, default=64)
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:  # the runs' callback files land here, not in the working directory
        single = fit(1, ns.global_batch, ns.batches, str(Path(tmp) / "single"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        out = str(Path(tmp) / "ddp.json")
        args = (port, ns.global_batch // 2, ns.batches, out, str(Path(tmp) / "ddp"))
        mp.spawn(worker, args=args, nprocs=2, join=True)
        double = json.loads(Path(out).read_text())
    print(f"WGAN-GP, global batch {ns.global_batch}, {ns.batches} batches ({WARMUP} warm-up):")
    print(f"  1 process             : {single * 1e3:8.1f} ms/batch")
    print(f"  2 processes (gan_ddp) : {double * 1e3:8.1f} ms/batch")
    print(f"  ratio 2-process / 1-process time per global batch: {double / single:.2f}")


if __name__ == "__main__":
    main()
