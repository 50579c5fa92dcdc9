"""Shared fixtures: the MNIST folder from LAB_DATA_DIR, and runners for the real CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# One torch thread per test process (and the processes it starts): `make test` runs two workers on two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


@pytest.fixture(scope="session")
def data_dir() -> str:
    """The folder that holds MNIST/raw (LAB_DATA_DIR, else ./data); the tests need the real files."""
    path = os.environ.get("LAB_DATA_DIR") or str(REPO / "data")
    if not (Path(path) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.fail(f"real MNIST not found under {path}: set LAB_DATA_DIR to the folder that holds MNIST/raw")
    return path


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch, tmp_path):
    """No test may reach W&B servers or prompt: offline unless a test sets otherwise; W&B's own staging (a table's
    images, artifacts) goes under the test's folder too."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))


def run_module(module: str, *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600):
    """Runs ``python -m module args...`` as a user would; returns the CompletedProcess (text mode)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
