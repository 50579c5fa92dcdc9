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
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from lab.errors import LabError, cause_text

CODE_DIRS = ("lab", "gan_lab", "rnn_lab", "datamodules", "callbacks")
# What launches, tabulates and reports runs changes no run's numbers: left out of the code hash. Config files are
# left out too: the key covers them (it hashes the resolved config, every composed file's values included).
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


def finished(record: dict[str, Any] | None) -> bool:
    """True for a record of a run that ran to its end (not failed, not missing)."""
    return bool(record) and record.get("status") == "finished"


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


def start_resolving(variants: dict[str, list], repo: Path) -> subprocess.Popen:
    """Starts resolving ``variants`` ({variant: [lab, args]}) in a child process: its imports take seconds that the
    launcher spends starting Ray meanwhile, and the CLI's redirected output is the child's alone. ``resolved`` waits."""
    code = "import sys; from lab.experiment.records import resolve_main; resolve_main(sys.argv[1])"
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(variants)], cwd=repo, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def resolved(child: subprocess.Popen) -> tuple[dict[str, Any], list[str]]:
    """The configs of ``start_resolving``'s child, by variant, and the code files they import (``code_files``);
    raises LabError with the first variant that the fit CLI refuses."""
    out, err = child.communicate()
    lines = out.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        last = [line for line in err.splitlines() if line.strip()]
        raise LabError(f"resolving the configs failed: {last[-1] if last else f'exit {child.returncode}'}") from None
    if "error" in answer:
        raise LabError(answer["error"])
    return answer["configs"], answer["files"]


def resolve_main(variants: str) -> None:
    """The child of ``start_resolving``: one JSON line, the configs and code files, or the first refusal."""
    configs: dict[str, Any] = {}
    try:
        for variant, (lab, args) in json.loads(variants).items():
            try:
                configs[variant] = resolve(lab, args)
            except LabError as error:
                raise LabError(f"variant {variant}: {error}") from None
        answer = {"configs": configs, "files": code_files()}
    except LabError as error:
        answer = {"error": str(error)}
    sys.stdout.write("\n" + json.dumps(answer, default=str) + "\n")


def code_files(repo: str = ".") -> list[str]:
    """The training code a run is built from: the files of our packages that this process has imported (after
    ``resolve``: the lab's CLI and every class the configs name, with what they import), relative to ``repo``;
    ``NOT_TRAINING`` left out. Files a run never imports (other tools, other families) do not make it stale."""
    root = Path(repo).resolve()
    found = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = Path(path).resolve()
        if path.is_relative_to(root) and path.relative_to(root).parts[0] in CODE_DIRS:
            found.add(str(path.relative_to(root)))
    weights = [str(p.relative_to(root)) for p in (root / "lab" / "weights").glob("*") if p.is_file()]
    return sorted(name for name in found | set(weights) if not name.startswith(NOT_TRAINING))


def code_hash(files: list[str], repo: str = ".") -> str:
    """SHA-256 over the names and contents of ``files`` as they are now (a missing file counts as changed)."""
    digest = hashlib.sha256()
    for name in files:
        path = Path(repo, name)
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"<missing>"))
    return digest.hexdigest()[:12]


def code_version(files: list[str], repo: str = ".") -> dict[str, Any]:
    """``commit`` (None outside git), ``dirty`` (uncommitted changes to ``files``), ``code`` (their hash now, edits
    included) and ``files`` (so that a later check hashes the same files)."""
    try:
        run = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", *files], capture_output=True,
                                text=True, check=True)  # fmt: skip
        commit, dirty = run.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty, "code": code_hash(files, repo), "files": files}


def packages() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def is_stale(record: dict[str, Any], repo: str = ".") -> bool:
    """True when the record was made by other code than the current one: the files it was built from, hashed now,
    differ from its ``code`` hash (or it names none)."""
    version = record.get("code_version") or {}
    return not version.get("files") or code_hash(version["files"], repo) != version.get("code")
