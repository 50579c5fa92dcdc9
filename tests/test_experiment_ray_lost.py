"""The launcher when Ray itself fails under it: a killed raylet ends the launch with one line, and the same command
resumes (a file of its own, so that pytest-xdist's file-wise split runs it beside the other Ray tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from test_experiment import launch, tiny_experiment
from test_experiment_ray import alive, descendants


@pytest.mark.slow
def test_a_dead_raylet_ends_the_launcher_with_one_error_line_and_the_same_command_resumes(tmp_path):
    """The private instance's raylet and the worker running a run both killed (as the out-of-memory killer may do):
    Ray then never answers for that run, and the launcher used to wait for ever. Now it exits 1 with one error line
    naming the run in flight, leaves no process behind, and the same command finishes the run from its last
    checkpoint."""
    exp = tiny_experiment(tmp_path, {"slow": {"trainer.max_epochs": 60}})
    launcher = subprocess.Popen([sys.executable, "-m", "lab", "experiment", "run", str(exp), "--runs",
                                 str(tmp_path / "runs"), "--results", str(tmp_path / "results")], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    ckpt = tmp_path / "runs" / "tiny" / "tiny-slow-s0" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and not ckpt.exists():
        assert launcher.poll() is None, launcher.communicate()
        time.sleep(0.1)
    tree = descendants(launcher.pid)
    names = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid in tree if alive(pid, tree[pid])}
    doomed = [pid for pid, name in names.items() if name in ("raylet", "ray::run_one")]
    assert len(doomed) == 2, names
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    out, err = launcher.communicate(timeout=180)
    assert launcher.returncode == 1, out[-2000:] + err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "lost every node" in errors[0] and "tiny-slow-s0" in errors[0], out + err[-2000:]
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(pid, start) for pid, start in tree.items()):
        time.sleep(0.5)
    left = [pid for pid, start in tree.items() if alive(pid, start)]
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in left]
    again = launch(exp, tmp_path)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    slow = json.loads((tmp_path / "results" / "tiny" / "tiny-slow-s0.json").read_text())
    assert slow["status"] == "finished" and slow["resumed_from_step"] > 0 and slow["global_step"] == 60 * 10 * 2
