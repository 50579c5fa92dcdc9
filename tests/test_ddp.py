"""Every family under 2-process DDP (gloo, CPU): runs finish, losses are finite, replicas stay identical."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import ddp_worker  # tests/ddp_worker.py: importable by name in the spawned processes
import pytest
import torch.multiprocessing as mp

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.ddp, pytest.mark.slow, pytest.mark.xdist_group("ddp")]  # one worker: a module fixture

DDP = [
    "--trainer.strategy=ddp",
    "--trainer.devices=2",
    "--trainer.accelerator=cpu",
    "--trainer.logger=false",
    "--trainer.enable_checkpointing=false",
    "--trainer.limit_train_batches=4",
    "--trainer.limit_val_batches=0",
]


def config_args(*names: str) -> list[str]:
    return [f"--config={REPO / 'configs' / name}" for name in ("base.yaml", *names, "tiny.yaml")]


def gan_cases() -> dict[str, tuple[str, list[str]]]:
    """Each configs/gan/*.yaml on 256 real MNIST images."""
    cases = {}
    for path in sorted((REPO / "configs" / "gan").glob("*.yaml")):
        # metrics off: their DDP path has its own test (tests/test_metrics.py)
        extra = ["--data.init_args.subset=256", "--model.init_args.sample_every_n_epochs=0",
                 "--model.init_args.metrics_every_n_epochs=0"]  # fmt: skip
        cases[path.stem] = ("gan_lab", [*config_args(f"gan/{path.name}"), *DDP, *extra])
    return cases


def rnn_cases() -> dict[str, tuple[str, list[str]]]:
    """The LSTM palindrome classifier (automatic optimization: Lightning's own DDP)."""
    extra = [
        "--data.num_samples=2048",
        "--data.seq_len=10",
        "--trainer.val_check_interval=1.0",
        "--trainer.limit_val_batches=2",
    ]
    return {"lstm": ("rnn_lab", [*config_args("rnn/lstm.yaml"), *DDP, *extra])}


def mixture_cases() -> dict[str, tuple[str, list[str]]]:
    """The ring GAN, 50 batches per loader item (ring.yaml): each rank draws its own points."""
    return {"ring-gan": ("gan_lab", [*config_args("mixtures/ring.yaml", "mixtures/gan.yaml"), *DDP])}


def all_cases() -> dict[str, tuple[str, list[str]]]:
    return {**gan_cases(), **rnn_cases(), **mixture_cases()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory, data_dir) -> dict:
    """Runs every case once in one 2-process spawn and returns what rank 0 gathered."""
    out = tmp_path_factory.mktemp("ddp") / "results.json"
    cases = all_cases()
    mp.spawn(ddp_worker.run_cases, args=(2, free_port(), cases, str(out)), nprocs=2, join=True)
    return json.loads(Path(out).read_text())


@pytest.mark.parametrize("family", sorted(all_cases()))
def test_family_trains_under_ddp_with_identical_replicas(ddp_results, family):
    """Both ranks finish with finite losses, the same number of steps and bit-identical weights."""
    rank0, rank1 = ddp_results[family]
    assert ddp_worker.all_finite(rank0["losses"]) and ddp_worker.all_finite(rank1["losses"]), (rank0, rank1)
    assert rank0["steps"] == rank1["steps"] > 0
    assert rank0["hash"] == rank1["hash"]
    # manual-optimization loops run under the gradient-sync strategy, automatic ones under Lightning's DDP
    assert rank0["strategy"] == ("GradientSyncDDPStrategy" if rank0["manual"] else "DDPStrategy")


@pytest.mark.ddp
def test_torchrun_starts_one_run_across_two_processes_with_identical_weights(tmp_path, data_dir):
    """`torchrun --nproc_per_node 2` (gloo, as a cluster starts it) runs the WGAN-GP config as one 2-process DDP run:
    both ranks end with the same weights, under the suite's DDP strategy for manual optimization."""
    import subprocess
    import sys

    from conftest import CONFIGS, REPO

    args = [f"--config={CONFIGS / name}" for name in ("base.yaml", "gan/wgan.yaml", "tiny.yaml")]
    args += [f"--run.root={tmp_path / 'runs'}", "--trainer.accelerator=cpu", "--trainer.devices=2",
             "--trainer.strategy=ddp", "--model.init_args.metrics_every_n_epochs=0"]  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", str(REPO / "tests" / "torchrun_fit.py"), str(tmp_path),
               *args]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "LAB_DATA_DIR": data_dir, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2 and rank0["global_step"] > 0
    assert rank0["strategy"] == rank1["strategy"] == "GradientSyncDDPStrategy", rank0
    assert rank0["hash"] == rank1["hash"]
