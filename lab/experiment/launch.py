"""``python -m lab experiment run``: every run of an experiment on Ray, finished runs reused, interrupted ones resumed.

Ray tasks, not Ray Tune: each run is a Lightning ``fit`` that checkpoints itself and each record on disk says
whether it finished, so the records are the experiment's state and a second copy in Tune's experiment state would
only disagree with them; tasks give what the launcher needs from Ray (scheduling by CPUs and GPUs, retries of
failed tasks and of lost workers, the same code on a laptop and a cluster). See docs/experiments.md.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.experiment import records
from lab.experiment.runone import run_one
from lab.experiment.spec import Experiment, RunSpec
from lab.experiment.table import kind

RETRIES = 2  # a failing run is tried 1 + RETRIES times (each retry resumes from its last checkpoint)
# Seconds a cluster given by --address may have no node that can take a run (an autoscaler may be replacing one)
# before the launcher gives up; the private instance has one node, and once Ray marks it dead it never returns.
CLUSTER_LOST_AFTER = 600.0


class RayLost(LabError):
    """Ray lost every node that could run a run: the runs in flight will never report. Exit 1, not an input error."""

    code = 1


# Started beside the launcher before Ray: when the launcher dies, however it dies (its end of the pipe closes), it
# kills every process that was ever seen below the launcher and is still alive (Ray's own agents outlive a SIGKILLed
# driver otherwise). Pure standard library: it starts in milliseconds.
GUARDIAN = r"""
import os, signal, sys, threading
parent = int(sys.argv[1]); seen = {}
def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f: fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), fields[19]
    except (OSError, IndexError, ValueError): return None
def scan():
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = stat(int(name))
            if s: children.setdefault(s[0], []).append((int(name), s[1]))
    todo = [parent]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            seen[pid] = start; todo.append(pid)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
while not done.wait(0.5): scan()
for pid, start in seen.items():
    if pid != os.getpid() and stat(pid) and stat(pid)[1] == start:
        try: os.kill(pid, signal.SIGKILL)
        except OSError: pass
"""


def start_guardian() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", GUARDIAN, str(os.getpid())], stdin=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip


TEMP: list[str] = []  # the private instances' folders (session logs, sockets), removed when the launcher is done


def local_cpus() -> int:
    """The CPUs this process may use (its affinity: taskset, a SLURM cpuset), which size a private Ray instance."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def start_ray(address: str | None, repo: Path) -> dict[str, Any]:
    """A private embedded Ray instance sized to the CPUs this process may use (``address`` None: its affinity, so
    ``taskset`` or a SLURM cpuset bounds it), else the cluster at ``address`` with this repository as the tasks'
    working directory. Returns the cluster's resources."""
    import logging

    import ray

    quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False}
    if address is None:
        temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a 108-byte limit
        TEMP.append(temp)
        # worker_niceness 0: Ray starts workers at nice 15, and a run at nice 15 all but stops whenever anything at
        # nice 0 runs beside it (Ray's own processes, the launcher); the runs are the work here
        ray.init(address="local", num_cpus=local_cpus(), _temp_dir=temp, _system_config={"worker_niceness": 0},
                 **quiet)  # fmt: skip
    else:
        excludes = [".git", ".venv", "runs", "results", "wandb", "data", "*.ckpt"]
        quiet.pop("include_dashboard")
        env = {"RAY_worker_niceness": "0"}  # the same on a cluster (as Ray's job manager asks for its supervisor)
        ray.init(address=address, runtime_env={"working_dir": str(repo), "excludes": excludes, "env_vars": env},
                 **quiet)  # fmt: skip
    return ray.cluster_resources()


def clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"  # fmt: skip


def describe(exp: Experiment, record: dict[str, Any]) -> str:
    if not records.finished(record):
        return f"failed: {record.get('error', '')}"
    named = [m for m in exp.metrics if m.key == exp.key_metric]  # a plain column of the key, else its first
    metric = next((m for m in named if kind(m) == "mean"), named[0])
    value = metric.of(record)
    shown = "–" if value is None or value != value else f"{value:.{metric.digits}f}"
    label = metric.label if kind(metric) == "mean" else metric.key  # not a success column's "k/n [...]"
    return f"{label} {shown} ({record['seconds']:.0f} s)"


def plan(exp: Experiment, specs: list[RunSpec], saved: list, resolved: dict, rerun_stale: bool, wandb: bool | None):
    """The runs to train, as (index, spec, config, key, wandb, fresh), and the finished records to reuse by index."""
    reused, todo = {}, []
    for index, (spec, record) in enumerate(zip(specs, saved, strict=True)):
        config = {**resolved[spec.variant], "seed_everything": spec.seed}
        run_group = config.pop("run", {}) or {}
        key = records.config_key(config)
        finished = records.finished(record)
        if finished and record.get("key") == key and not (rerun_stale and records.is_stale(record)):
            reused[index] = {**record, "reused": True}
            continue
        wandb_on = bool(run_group.get("wandb")) if wandb is None else wandb
        todo.append((index, spec, config, key, wandb_on, finished))  # finished: trained again from scratch
    return reused, todo


def launch(exp: Experiment, specs: list[RunSpec], runs: Path, results: Path, address: str | None,
           rerun_stale: bool = False, wandb: bool | None = None,
           then: Callable[[list[dict[str, Any]]], Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Runs ``specs`` and returns their records (reused or new), in ``specs``' order; ``then(records)`` (the table)
    runs in a thread while Ray shuts down, and is waited for."""
    start = time.perf_counter()
    repo = Path.cwd()
    token = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
    if address and "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or Path(token).is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"  # a client sends its token only when told to (Ray 2.60): before import
    paths = [records.record_path(results, spec.instance, spec.name) for spec in specs]
    saved = [records.read(path) for path in paths]  # read once: what may be reused, and whether Ray is needed at all
    guardians: list[subprocess.Popen] = []
    after: threading.Thread | None = None
    resources: dict[str, Any] = {}

    def ensure_ray() -> None:
        if not resources:
            if address is None:
                guardians.append(start_guardian())
            try:
                resources.update(start_ray(address, repo))
            except Exception as error:  # noqa: BLE001 - Ray's own message, on one line
                raise LabError(f"Ray did not start: {' '.join(str(error).split())[:300]}") from None

    resolving = records.start_resolving({s.variant: [s.lab, list(s.args)] for s in specs}, repo)
    try:
        if not all(map(records.finished, saved)):
            ensure_ray()  # while the configs resolve; if every run is probably reused, Ray starts only if one is due
        resolved, files = records.resolved(resolving)
        outcomes, todo = plan(exp, specs, saved, resolved, rerun_stale, wandb)
        shape = f"{len({s.variant for s in specs})} variants x {len({s.seed for s in specs})} seeds"
        print(f"{exp.name}: {len(specs)} runs ({shape}), {len(outcomes)} reused, {len(todo)} to run -> "
              f"{runs / specs[0].instance}/", flush=True)  # fmt: skip
        if todo:
            ensure_ray()
            current = records.code_version(files, str(repo))
            run_all(exp, todo, outcomes, paths, runs, current, resources, start, len(specs), address or "")
        for record in outcomes.values():
            if record.get("reused") and records.is_stale(record):
                print(f"  reused {record['name']}: {describe(exp, record)} [stale: made by code "
                      f"{(record.get('code_version') or {}).get('code') or 'unknown'}]")  # fmt: skip
        found = [outcomes[i] for i in range(len(specs))]
        if then is not None:
            after = threading.Thread(target=then, args=(found,))
            after.start()
        return found
    finally:
        import ray

        resolving.kill()  # a no-op once it has answered
        if ray.is_initialized():
            ray.shutdown()
        for guardian in guardians:
            guardian.stdin.close()
            guardian.wait()
        while TEMP:
            shutil.rmtree(TEMP.pop(), ignore_errors=True)
        if after is not None:
            after.join()


def one_process(config: dict[str, Any]) -> bool:
    """True when the run is one process (one device, one node): forked from the worker's forkserver; a DDP run
    relaunches its own command line for its other ranks, so it starts as ``python -m <lab> fit``."""
    trainer = config.get("trainer") or {}
    return str(trainer.get("devices")) == "1" and str(trainer.get("num_nodes", 1)) == "1"


def run_all(exp, todo, outcomes, paths, runs, current, resources, start, total, cluster) -> None:
    """Trains ``todo`` on Ray (a CPU, or a GPU where the cluster has them, per run), writing each record as it ends
    and printing a progress line."""
    import ray

    gpu = exp.gpu and resources.get("GPU", 0) >= 1
    if exp.cpus > resources.get("CPU", 0):  # Ray would wait for ever for a node that large
        raise LabError(f"{exp.name} asks {exp.cpus} CPUs per run; the Ray cluster has {resources.get('CPU', 0):g}")
    slots = max(1, int(resources.get("GPU", 0) if gpu else resources.get("CPU", 1) // exp.cpus))
    task = ray.remote(run_one).options(num_cpus=exp.cpus, num_gpus=1 if gpu else 0, max_retries=RETRIES,
                                       retry_exceptions=True)  # fmt: skip
    metrics = [(m.key, m.higher, m.reach) for m in exp.metrics]
    preload = [
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in current["files"]
        if name.endswith(".py")
    ]  # the run's code, imported once per worker by its forkserver (runone)
    pending, packages = {}, records.packages()
    for index, spec, config, key, wandb, fresh in todo:
        if fresh:  # a finished run trained again (stale, --rerun-stale): from scratch, not from its last checkpoint
            shutil.rmtree(runs / spec.instance / spec.name, ignore_errors=True)
        extra = [f"--run.wandb={str(wandb).lower()}", f"--run.group={exp.name}", f"--run.job_type={spec.variant}",
                 f"--run.tags=[{exp.name}]", "--trainer.enable_progress_bar=false"]  # fmt: skip
        extra += ["--trainer.accelerator=gpu", "--trainer.devices=1"] if gpu else []
        body = {"lab": spec.lab, "args": list(spec.args), "root": str((runs / spec.instance).resolve()),
                "name": spec.name, "metrics": metrics, "extra": extra, "key": key, "threads": exp.cpus,
                "fork": one_process(config), "preload": preload}  # fmt: skip
        base = {"experiment": spec.experiment, "instance": spec.instance, "name": spec.name, "variant": spec.variant,
                "seed": spec.seed, "lab": spec.lab, "key": key, "overrides": list(spec.overrides), "config": config,
                "budget": exp.budget, "command": " ".join(spec.command()), "code_version": current,
                "packages": packages, "device": "gpu" if gpu else "cpu", "cpus": exp.cpus, "wandb": wandb}  # fmt: skip
        pending[task.remote(body)] = (index, base)
    counts, durations = {"done": 0, "failed": 0}, []

    def ray_lost(names: list[str]) -> RayLost:
        where = f"the cluster at {cluster}" if cluster else "the private Ray instance"
        return RayLost(f"{where} lost every node that could run a run (its raylet died or was killed); in flight: "
                       f"{', '.join(names)}; the same command resumes them from their last checkpoints")  # fmt: skip

    lost = None  # since when no node could take a run: Ray never answers for the runs in flight then
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=5.0)
        if not ready:
            able = ray.cluster_resources().get("GPU" if gpu else "CPU", 0) >= (1 if gpu else exp.cpus)
            lost = None if able else lost or time.perf_counter()
            if lost is not None and time.perf_counter() - lost >= (CLUSTER_LOST_AFTER if cluster else 0):
                raise ray_lost([base["name"] for _, base in pending.values()])
            continue
        index, base = pending.pop(ready[0])
        base["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        try:
            result = ray.get(ready[0])
            result["ray"]["address"] = cluster or "private local instance"  # as given to --address
            if not cluster:
                result["ray"].pop("cluster", None)
            record = {**base, **result, "status": "finished", "error": ""}
            counts["done"] += 1
            durations.append(result["seconds"])
        except ray.exceptions.LocalRayletDiedError:  # this driver's raylet: no run can start or report from here
            raise ray_lost([base["name"]] + [b["name"] for _, b in pending.values()]) from None
        except Exception as error:  # noqa: BLE001 - the run failed after its retries; the set goes on
            text = str(getattr(error, "cause", None) or error).strip().splitlines()
            record = {**base, "status": "failed", "error": text[-1] if text else type(error).__name__}
            counts["failed"] += 1
        records.write(paths[index], record)
        outcomes[index] = record
        left = len(pending)
        eta = f", about {clock(statistics.fmean(durations) * left / min(slots, left))} left" if durations and left \
            else ""  # fmt: skip
        print(f"[{len(outcomes)}/{total}] {base['name']}: {describe(exp, record)} | done {counts['done']}, running "
              f"{min(slots, left)}, reused {len(outcomes) - counts['done'] - counts['failed']}, failed "
              f"{counts['failed']}, {clock(time.perf_counter() - start)} elapsed{eta}", flush=True)  # fmt: skip
