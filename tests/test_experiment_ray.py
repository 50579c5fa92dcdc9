"""The experiment launcher on Ray, end to end: SIGKILL and resume, an rnn_lab experiment, a cluster by address."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from test_experiment import launch, tiny_experiment


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` (pid -> start time), read from /proc."""
    children: dict[int, list[tuple[int, str]]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append((int(name), fields[19]))
    found, todo = {}, [pid]
    while todo:
        for child, start in children.get(todo.pop(), []):
            found[child] = start
            todo.append(child)
    return found


def alive(pid: int, start: str) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == start and fields[0] != "Z"


@pytest.mark.slow
def test_a_killed_launcher_leaves_nothing_running_and_the_same_command_resumes(tmp_path):
    """SIGKILL to the launcher while one run has finished and another is part-way: no process of it (Ray included)
    survives; the same command then completes the set without running the finished run again (record and
    checkpoint untouched) and the interrupted run continues from its last checkpoint."""
    exp = tiny_experiment(tmp_path, {"quick": {"trainer.max_epochs": 1},
                                     "slow": {"trainer.max_epochs": 200}})  # fmt: skip
    first = launch(exp, tmp_path, "--variants", "quick")  # finished first, so the kill never races its record
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    launcher = subprocess.Popen([sys.executable, "-m", "lab", "experiment", "run", str(exp), "--runs",
                                 str(tmp_path / "runs"), "--results", str(tmp_path / "results")], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    quick = tmp_path / "results" / "tiny" / "tiny-quick-s0.json"
    slow_ckpt = tmp_path / "runs" / "tiny" / "tiny-slow-s0" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and not slow_ckpt.exists():  # after its first epoch: 199 of 200 still to train
        assert launcher.poll() is None, launcher.stdout.read()
        time.sleep(0.1)
    assert quick.exists() and slow_ckpt.exists(), "the set never reached the state to interrupt"
    time.sleep(0.5)
    tree = descendants(launcher.pid)
    assert len(tree) >= 4, tree  # Ray's processes and the training run
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(pid, start) for pid, start in tree.items()):
        time.sleep(0.5)
    left = [pid for pid, start in tree.items() if alive(pid, start)]
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in left]
    assert not (tmp_path / "results" / "tiny" / "tiny-slow-s0.json").exists()
    quick_ckpts = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs" / "tiny" / "tiny-quick-s0").rglob("*.ckpt")}
    quick_record = quick.read_bytes()
    again = launch(exp, tmp_path)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "1 reused, 1 to run" in again.stdout
    assert quick.read_bytes() == quick_record
    assert {p: p.stat().st_mtime_ns for p in quick_ckpts} == quick_ckpts
    slow = json.loads((tmp_path / "results" / "tiny" / "tiny-slow-s0.json").read_text())
    assert slow["status"] == "finished" and slow["resumed_from_step"] > 0
    assert slow["global_step"] == 200 * 10 * 2  # the whole budget, continued from the checkpoint
    assert slow["attempts"] == 2 and len(list(slow_ckpt.parents[2].glob("version_*"))) == 1


@pytest.mark.slow
def test_a_palindrome_run_records_the_test_accuracy_of_its_best_validation_checkpoint(tmp_path):
    """An rnn_lab experiment under the study's protocol: the record holds test/best_acc (the best-validation
    checkpoint on the test split), the step it was saved and the first step at 99% validation accuracy; the table
    shows the success count with its Wilson interval."""
    data = {
        "name": "pal", "lab": "rnn_lab", "configs": ["configs/base.yaml"], "budget": "300 steps", "seeds": [0],
        "variants": {"lstm": {"configs": ["configs/rnn/lstm.yaml", "configs/rnn/protocol.yaml"],
                              "set": {"data.seq_len": 8, "trainer.max_steps": 300, "model.hidden_dim": 32}}},
        "metrics": [{"key": "test/best_acc", "label": "solved", "success": 0.99},
                    {"key": "val/acc", "label": "steps to 99%", "reach": 0.99}],
    }  # fmt: skip
    exp = tmp_path / "pal.yaml"
    exp.write_text(yaml.safe_dump(data))
    result = launch(exp, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = json.loads((tmp_path / "results" / "pal" / "pal-lstm-s0.json").read_text())
    assert 0 <= record["final"]["test/best_acc"] <= 1 and record["final"]["test/best_step"] % 100 == 0
    assert 0 < record["global_step"] <= 300  # from the run's closing line; stops early only at 100% validation
    reached = record["reached"]["val/acc"]
    assert reached is None or (reached % 100 == 0 and reached <= 300)  # validations after 100, 200, 300 steps
    solved = int(record["final"]["test/best_acc"] >= 0.99)
    assert f"| lstm | 1 | {solved}/1 [" in result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_an_experiment_runs_on_an_existing_cluster_by_address(tmp_path):
    """A Ray head started with `ray start` on 127.0.0.1 (its own temp folder and port) runs a two-run experiment
    given with --address: both records name that cluster; the head is stopped after."""
    import tempfile

    port = free_port()
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    ray_bin = Path(sys.executable).parent / "ray"
    # a token first (as a real cluster would have), so the head starts with token authentication whatever other
    # tests ran before; the launcher then sends it (RAY_AUTH_MODE=token) because the token file exists
    subprocess.run([str(ray_bin), "get-auth-token", "--generate"], capture_output=True, check=True, timeout=60)
    head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--node-ip-address=127.0.0.1", f"--temp-dir={temp}", "--include-dashboard=false",
                             "--disable-usage-stats"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        exp = tiny_experiment(tmp_path, {"a": {"trainer.max_epochs": 1}, "b": {"trainer.max_epochs": 1}})
        result = launch(exp, tmp_path, "--address", f"127.0.0.1:{port}")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        for name in ("tiny-a-s0", "tiny-b-s0"):
            record = json.loads((tmp_path / "results" / "tiny" / f"{name}.json").read_text())
            assert record["status"] == "finished" and record["ray"]["cluster"].endswith(f":{port}")
            assert record["ray"]["address"] == f"127.0.0.1:{port}"
            assert record["niceness"] == 0  # the cluster's workers start at nice 15 unless told otherwise
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is a Linux call")
def test_the_private_instance_runs_one_run_at_a_time_on_a_launcher_pinned_to_one_core(tmp_path):
    """`taskset -c 0 python -m lab experiment run ...` (or a SLURM cpuset): the private Ray instance has the CPUs the
    launcher may use, not the machine's, so one-CPU runs go one after the other: with two left, "running 1"."""
    exp = tiny_experiment(tmp_path, {v: {"trainer.max_epochs": 1} for v in "abc"})
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # the launcher inherits it, as from taskset
    try:
        result = launch(exp, tmp_path)
    finally:
        os.sched_setaffinity(0, cores)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    progress = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == 3 and "| done 1, running 1," in progress[0], result.stdout


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else True,
                    reason="needs two CPUs the launcher may use")  # fmt: skip
def test_cpus_on_the_command_line_gives_each_run_that_many_cpus_and_reuses_their_records(tmp_path):
    """`--cpus 2` (the palindrome study's L = 1,000 runs on two threads): the run is recorded with 2 CPUs and runs
    with 2 torch threads; the same set without it reuses the record (CPUs are not in a run's key)."""
    exp = tiny_experiment(tmp_path, {"a": {"trainer.max_epochs": 1}})
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(sorted(cores)[:2]))
    try:
        result = launch(exp, tmp_path, "--cpus", "2")
        again = launch(exp, tmp_path)
    finally:
        os.sched_setaffinity(0, cores)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert json.loads((tmp_path / "results" / "tiny" / "tiny-a-s0.json").read_text())["cpus"] == 2
    log = (tmp_path / "runs" / "tiny" / "tiny-a-s0" / "console.log").read_text()
    assert "torch threads: 2" in log, log[-2000:]
    assert again.returncode == 0 and "1 reused, 0 to run" in again.stdout, again.stdout
