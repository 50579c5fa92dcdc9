"""Run records: one small JSON per run of an experiment, the only source of the experiment's tables.

A record holds the run's resolved config and its reuse ``key`` (the config's hash without the settings that change
only how a run executes or logs), its seed and command, the code version (git commit, whether the tree was dirty,
and a hash of the code files as they were), package versions, host, wall time, status, final and best metrics and
the paths of its checkpoints and images. A finished record with the run's key is reused; one whose code hash differs
from the current code is reused but marked stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from lab.errors import LabError, cause_text

CODE_DIRS = ("lab", "gan_lab", "rnn_lab", "datamodules", "callbacks", "configs")
# What launches, tabulates and reports runs changes no run's numbers: left out of the code hash.
NOT_TRAINING = ("lab/experiment/", "lab/report/", "lab/__main__.py")
PACKAGES = ("torch", "pytorch-lightning", "torchmetrics", "ray", "numpy", "wandb")
# Settings that change how a run executes or logs, never what it computes: left out of the key, so changing them
# reuses finished runs (a mixture run with k batches per loader item trains bit for bit as with one).
NEUTRAL_KEYS = (
    ("trainer", "log_every_n_steps"),
    ("trainer", "enable_progress_bar"),
    ("data", "init_args", "batches_per_item"),
)


def record_path(results: Path, instance: str, name: str) -> Path:
    return results / instance / f"{name}.json"


def read(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when there is none (or it was cut off mid-write)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write(path: Path, record: dict[str, Any]) -> None:
    """Writes atomically (a killed launcher never leaves half a record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".json.part")
    part.write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    os.replace(part, path)


def neutral_free(config: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(config, default=str))
    for path in NEUTRAL_KEYS:
        node = out
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return out


def config_key(config: dict[str, Any]) -> str:
    """The first 12 hex digits of the SHA-256 of the config (without ``NEUTRAL_KEYS``) as canonical JSON."""
    return hashlib.sha256(json.dumps(neutral_free(config), sort_keys=True).encode()).hexdigest()[:12]


def resolve(lab: str, args: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The config ``python -m <lab> fit <args>`` resolves (every default and composed file), with its ``run`` group
    (naming and logging) under ``"run"``; a refused config raises LabError with the CLI's one-line cause."""
    main = importlib.import_module(f"{lab}.__main__").main
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["fit", *args, "--print_config"])
        except SystemExit as stop:
            code = stop.code or 0
        except Exception as error:  # noqa: BLE001 - any refusal is reported as its cause
            raise LabError(cause_text(error)) from None
    if code:
        lines = [line for line in err.getvalue().splitlines() if line.strip()]
        raise LabError((lines[-1] if lines else f"exit {code}").removeprefix("error: "))
    return yaml.safe_load(out.getvalue()) or {}


@cache
def code_version(repo: str = ".") -> dict[str, Any]:
    """``commit`` (or None outside git), ``dirty`` (uncommitted changes to the code) and ``code`` (a hash of every
    training code file's content as it is now, uncommitted edits included; ``NOT_TRAINING`` left out)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        files = sorted(git("ls-files", "-co", "--exclude-standard", *CODE_DIRS).split())
        dirty = bool(git("status", "--porcelain", "--", *CODE_DIRS).strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
        files = sorted(str(p.relative_to(repo)) for d in CODE_DIRS for p in Path(repo, d).rglob("*")
                       if p.suffix in (".py", ".yaml"))  # fmt: skip
    files = [name for name in files if not name.startswith(NOT_TRAINING)]
    digest = hashlib.sha256()
    for name in files:
        path = Path(repo, name)
        if path.is_file() and path.suffix in (".py", ".yaml", ".json", ".pt"):
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return {"commit": commit, "dirty": dirty, "code": digest.hexdigest()[:12]}


def packages() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def is_stale(record: dict[str, Any], current: dict[str, Any]) -> bool:
    """True when the record was made by other code than the current one (its code hash differs)."""
    return record.get("code_version", {}).get("code") != current.get("code")
