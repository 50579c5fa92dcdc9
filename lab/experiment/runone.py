"""The body of one run on a Ray worker: ``python -m <lab> fit ...`` in a process of its own with ``threads`` torch
threads (1), resumed from the run's ``last.ckpt`` when an earlier attempt left one; returns what the record needs from
the run folder.

The process is forked from a server that has imported Lightning and the run's code once per Ray worker
(``multiprocessing``'s forkserver with preloaded modules): the same ``main([fit, ...])`` as the command line, in a fresh
single-threaded process, without the 3 s of CPU that every ``python -m`` spends importing Lightning. A run of more than
one process (DDP) relaunches its command line, so it starts as a plain subprocess.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lab.checkpoint import find_checkpoint, read_checkpoint
from lab.errors import LabError


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the worker that started it dies (Linux), so a killed launcher or worker
    leaves no training process behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def forkserver(preload: list[str]) -> Any:
    """This worker's forkserver context; its server imports ``preload`` (Lightning, the lab, the run's modules) once,
    when the first run starts, single-threaded (no OpenMP pool yet), so its forks are safe."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["pytorch_lightning", *preload])
    return context


def fit_main(lab: str, args: list[str], log: str, env: dict[str, str]) -> None:
    """In the forked child: ``python -m <lab> fit <args>`` with ``env`` (the worker's at this run, threads and the
    devices Ray gave it included) and its output appended to ``log``."""
    _die_with_parent()
    os.environ.clear()
    os.environ.update(env)
    out = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(out, 1)
    os.dup2(out, 2)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(write_through=True)  # as PYTHONUNBUFFERED
    import importlib

    import torch

    from lab.startup import pause_gc

    torch.set_num_threads(int(env["OMP_NUM_THREADS"]))  # read at import: the server's import saw the worker's value
    print(f"torch threads: {torch.get_num_threads()}")
    main = importlib.import_module(f"{lab}.__main__").main
    sys.argv = [sys.modules[f"{lab}.__main__"].__file__, "fit", *args]  # as python -m <lab> sets it
    pause_gc()
    main(["fit", *args])


def last_checkpoint(run_dir: Path) -> Path | None:
    """The run folder's ``last.ckpt`` (its newest version's), or None."""
    try:
        return find_checkpoint(run_dir, "last")
    except LabError:
        return None


def checkpoint_step(path: Path) -> int:
    return int(read_checkpoint(path).get("global_step", 0))


def final_step(run_dir: Path) -> int | None:
    """The optimizer steps done, from the fit's own closing line in ``console.log`` (``last: step N, epoch E``):
    reading ``last.ckpt`` instead imports torch into the Ray worker, seconds of CPU before its next run starts."""
    found = re.findall(r"^  last: step (\d+),", (run_dir / "console.log").read_text(errors="replace"), re.M)
    return int(found[-1]) if found else checkpoint_step(last) if (last := last_checkpoint(run_dir)) else None


def attempt_seconds(run_dir: Path) -> float:
    """Wall time of every attempt of this run so far (each attempt's ``attempt-*.s`` file, kept up to date)."""
    return sum(float(p.read_text() or 0) for p in run_dir.glob("attempt-*.s"))


def summarize(run_dir: Path, metrics: list[tuple]) -> dict[str, Any]:
    """Final value of every logged key but the ``train/`` curves (``val/``, ``test/``, ``time/``, ``eval/``, a
    callback's own group such as ``gradient_flow/``), best of each ``metrics`` key (key,
    higher, reach) with its logged step, the training batches done when each first reached its ``reach`` value (the
    optimizer steps of a one-optimizer model; the logged step counts from 0), the optimizer steps done,
    and the paths of the checkpoints and images (relative to the run folder's parent)."""
    from lab.report.runs import load_run

    run = load_run(run_dir)
    keys = [k for k in run.metric_keys() if "/" in k and not k.startswith("train/")]  # per-step training curves out
    final = {key: run.final(key) for key in keys}
    best, reached = {}, {}
    for key, higher, *rest in metrics:
        points = [(row[key], row.get("step")) for row in run.rows if key in row]
        if points:
            value, step = (max if higher else min)(points, key=lambda p: p[0])
            best[key] = {"value": value, "step": step}
        target = rest[0] if rest else None
        if target is not None:  # training batches done: a row logged after batch b (from 0) has step b
            hits = [step + 1 for value, step in points if (value >= target if higher else value <= target)]
            reached[key] = hits[0] if hits else None
    base = run_dir.parent
    return {
        "final": final,
        "best": best,
        "reached": reached,
        "global_step": final_step(run_dir),  # optimizer steps
        "epochs": epoch + 1 if (epoch := run.last("epoch")) is not None else None,
        "checkpoints": sorted(str(p.relative_to(base)) for p in run_dir.glob("version_*/checkpoints/*.ckpt")),
        "images": sorted(str(p.relative_to(base)) for p in run_dir.glob("version_*/**/*.png"))[-20:],
    }


def ray_place() -> dict[str, str]:
    """The Ray cluster (its GCS address) and node this run ran on; empty outside Ray."""
    try:
        import ray

        if not ray.is_initialized():  # get_runtime_context would start a Ray instance here
            return {}
        context = ray.get_runtime_context()
        return {"cluster": context.gcs_address, "node": context.get_node_id()}
    except Exception:  # noqa: BLE001 - not on Ray
        return {}


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Trains one run (``spec``: lab, args, root, name, key, metrics, extra) and returns its outcome; raises
    RuntimeError with the run's last output line when it fails (Ray retries it, and the retry resumes). A run folder
    is continued only when it was made for the same key (its ``key`` file)."""
    run_dir = Path(spec["root"]) / spec["name"]
    owner, key = run_dir / "key", spec.get("key")
    if key and run_dir.exists() and (not owner.is_file() or owner.read_text() != key):
        shutil.rmtree(run_dir)  # another config's folder (the experiment was edited): never resume from it
    run_dir.mkdir(parents=True, exist_ok=True)
    if key:
        owner.write_text(key)
    ckpt = last_checkpoint(run_dir)
    resumed_from = checkpoint_step(ckpt) if ckpt is not None else None
    args = [*spec["args"], f"--run.root={spec['root']}", f"--run.name={spec['name']}", *spec.get("extra", [])]
    if ckpt is not None:
        args.append("--ckpt_path=last")  # the same version folder (and W&B run) from its last finished epoch
    threads = str(spec.get("threads", 1))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}
    env.setdefault("WANDB_MODE", "offline" if not os.environ.get("WANDB_API_KEY") else "online")
    clock = run_dir / f"attempt-{time.time_ns()}.s"
    start = time.perf_counter()
    with open(run_dir / "console.log", "a") as log:
        log.write(f"\n$ python -m {spec['lab']} fit {' '.join(args)}\n")
        log.flush()
        if spec.get("fork"):
            child = forkserver(spec.get("preload", [])).Process(target=fit_main,
                                                                args=(spec["lab"], args, log.name, env))  # fmt: skip
            child.start()
        else:
            child = subprocess.Popen([sys.executable, "-m", spec["lab"], "fit", *args], stdout=log,
                                     stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)  # fmt: skip
        stop = threading.Event()

        def beat() -> None:  # the attempt's time so far, so a killed attempt still counts in the run's wall time
            while not stop.wait(2.0):
                clock.write_text(f"{time.perf_counter() - start:.1f}")

        threading.Thread(target=beat, daemon=True).start()
        code = child.wait() if isinstance(child, subprocess.Popen) else (child.join(), child.exitcode)[1]
        stop.set()
    clock.write_text(f"{time.perf_counter() - start:.1f}")
    if code != 0:
        lines = [line.strip() for line in (run_dir / "console.log").read_text().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        raise RuntimeError((errors or lines or [f"exit code {code}"])[-1])
    out = summarize(run_dir, [tuple(m) for m in spec["metrics"]])
    return {**out, "host": socket.gethostname(), "ray": ray_place(), "seconds": attempt_seconds(run_dir),
            "attempts": len(list(run_dir.glob("attempt-*.s"))), "resumed_from_step": resumed_from,
            "niceness": os.getpriority(os.PRIO_PROCESS, 0),
            "started": "forked" if spec.get("fork") else "python -m"}  # fmt: skip
