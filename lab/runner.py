"""The one multi-run runner: a process pool with a thread budget per run, a progress line per finished run, and
finished runs reused when their configuration is unchanged.

A ``Job`` names a run folder, a target ``"module:function"`` called as ``function(config, run_dir, resume=...,
**options)`` in a worker process, the ``config`` that defines the run, and ``options`` that do not change its result
(logging). ``resume`` is True when an attempt with the same config was killed before it finished: the target then
continues from its last checkpoint when it has one. The worker writes ``<root>/<name>/run.json`` (config hash,
result, seconds) and the run's console output to ``<root>/<name>/console.log``. ``seconds`` is the wall time of
every attempt together: an attempt records its time so far in ``started`` every few seconds, so a resumed run counts
the time its killed attempts spent (to within that interval) as well as its own. A later call with the same config
hash reuses ``run.json``; a changed config reruns, except for settings that change only how a run executes or logs
(``NEUTRAL_KEYS``: the logging cadence, the progress bar, batches per loader item), which the hash leaves out.
``then`` makes a set adaptive: called with each outcome (reused or new) it may return more jobs, which join the queue
(e.g. the next length once every seed of this one finished).
For CLI runs, ``resolved_config`` gives the config as the CLI resolves it (every default and composed file), so
editing a YAML that a run uses also reruns it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml

from lab.loggers import finish_wandb


@dataclass(frozen=True)
class Job:
    """One run: ``target(config, run_dir, **options)`` returns the run's result (a JSON-able dict)."""

    name: str
    target: str
    config: dict[str, Any]
    labels: dict[str, Any] = field(default_factory=dict)  # for tables: family, variant, seed ...
    options: dict[str, Any] = field(default_factory=dict)  # not hashed: W&B on/off, group ...

    @property
    def key(self) -> str:
        """A hash of the config without its ``NEUTRAL_KEYS``: the identity of the run's result."""
        return result_key(self.config)


@dataclass
class Outcome:
    """A finished (or failed, or reused) job."""

    job: Job
    result: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    reused: bool = False
    error: str = ""


# Settings that change how a run is executed or how often it logs, never what it computes: left out of the reuse key,
# so that changing them reuses finished runs. A mixture run with k batches per loader item trains bit for bit as with
# one (tests/test_mixtures.py).
NEUTRAL_KEYS = (
    ("trainer", "log_every_n_steps"),
    ("trainer", "enable_progress_bar"),
    ("data", "init_args", "batches_per_item"),
)


def result_config(config: Any) -> Any:
    """A copy of ``config`` without the ``NEUTRAL_KEYS``, wherever a dict in it holds one (a resolved CLI config at
    the top or nested in a job's config). The key of a saved run is recomputed from its saved config with this, so
    runs saved before a setting became neutral are reused too."""
    if isinstance(config, list):
        return [result_config(value) for value in config]
    if not isinstance(config, dict):
        return config
    out = {key: result_config(value) for key, value in config.items()}
    for path in NEUTRAL_KEYS:
        node = out
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return out


def result_key(config: dict[str, Any]) -> str:
    """The reuse key of a run's config: the hash of its ``result_config`` (a job's and a saved run's alike)."""
    return config_hash(result_config(config))


def config_hash(config: dict[str, Any]) -> str:
    """The first 12 hex digits of the SHA-256 of the config as canonical JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def resolved_config(main: Callable[[list[str]], Any], args: Sequence[str]) -> dict[str, Any]:
    """The config a LightningCLI entry ``main`` resolves from ``fit`` arguments (``--print_config``), without the
    ``run`` group (naming and logging, which do not change the result)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["fit", *args, "--print_config"])
    config = yaml.safe_load(out.getvalue()) or {}
    config.pop("run", None)
    return config


def finished(job: Job, root: Path) -> Outcome | None:
    """The saved outcome of ``job`` when its folder holds a run.json whose saved config has the same key, else None."""
    path = root / job.name / "run.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    key = result_key(saved["config"]) if "config" in saved else saved.get("key")
    if key != job.key or saved.get("error"):
        return None
    return Outcome(job, saved["result"], saved["seconds"], reused=True)


def _set_threads(threads: int) -> None:
    """Worker start-up: torch threads and death with the parent (Linux). The thread count goes to the OpenMP / MKL
    variables, which torch reads when the first job imports it (capping it at the core count), so a worker starts
    without importing torch (seconds per worker); were torch imported already, it is told directly. Lightning's own
    lines ("GPU available: ...") go to each run's console.log with the rest of its output (``_console_to``)."""
    import os

    _die_with_parent()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _die_with_parent() -> None:
    """A worker gets SIGKILL when the process that started it dies (Linux ``prctl(PR_SET_PDEATHSIG)``), so a killed
    sweep leaves no orphan worker training on, writing into its run folder, or idling; elsewhere nothing changes.
    Not SIGTERM: Lightning catches it during a fit and ends the run gracefully, and the worker then waited forever
    for its next job. The run resumes from its last checkpoint on the next call."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


HEARTBEAT_S = 5.0  # how often a running attempt records its wall time so far in ``started``


def _read_started(path: Path) -> tuple[str, float]:
    """The config key and wall seconds recorded by an earlier attempt (``("", 0.0)`` when none). A ``started`` that
    holds the bare key (the format before seconds were kept) counts no seconds."""
    if not path.is_file():
        return "", 0.0
    text = path.read_text()
    try:
        saved = json.loads(text)
        return str(saved["key"]), float(saved["seconds"])
    except (ValueError, TypeError, KeyError):
        return text, 0.0


class _Attempt:
    """Keeps ``started`` up to date while a job runs: its key and the wall seconds of every attempt so far (the earlier
    attempts' plus this one's), rewritten every ``HEARTBEAT_S`` by a daemon thread."""

    def __init__(self, path: Path, key: str, before: float) -> None:
        self.path, self.key, self.before = path, key, before
        self.start = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    @property
    def seconds(self) -> float:
        return round(self.before + time.perf_counter() - self.start, 1)

    def write(self) -> None:
        """Atomically (a new file renamed over the old): a kill during the write must not leave a torn ``started``,
        which would make the next attempt start afresh instead of resuming."""
        fresh = self.path.with_name(self.path.name + ".tmp")
        fresh.write_text(json.dumps({"key": self.key, "seconds": self.seconds}))
        fresh.replace(self.path)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.write()

    def __enter__(self) -> _Attempt:
        self.write()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _stream_handlers() -> list[logging.StreamHandler]:
    """Every console handler of every logger (file handlers excluded)."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict))]
    return [
        h
        for logger in loggers
        for h in logger.handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]


@contextlib.contextmanager
def _console_to(log: io.TextIOBase):
    """Sends the job's stdout, stderr and console log handlers to ``log``. A handler made during a job (Lightning adds
    one at import) holds that job's stream; pointed back to the worker's stderr afterwards, it neither writes into a
    closed file in the next job ("--- Logging error ---") nor lands there outside the next job's log."""
    for handler in _stream_handlers():
        if handler.stream in (sys.__stderr__, sys.stderr):
            handler.setStream(log)
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield
    finally:
        for handler in _stream_handlers():
            if handler.stream is log:
                handler.setStream(sys.__stderr__)


def execute(job: Job, root: Path) -> Outcome:
    """Runs ``job`` in this process, its console output to ``<root>/<name>/console.log``; writes run.json."""
    module, _, function = job.target.partition(":")
    run_dir = root / job.name
    run_dir.mkdir(parents=True, exist_ok=True)
    outcome = Outcome(job)
    started = run_dir / "started"  # the attempt under way: a killed attempt leaves it behind
    key, before = _read_started(started)
    resume = key == job.key
    with _Attempt(started, job.key, before if resume else 0.0) as attempt, open(run_dir / "console.log", "a") as log:
        with _console_to(log):
            try:
                target = getattr(importlib.import_module(module), function)
                outcome.result = target(job.config, run_dir, resume=resume, **job.options)
            except SystemExit as stop:
                outcome.error = f"exit status {stop.code}: see {run_dir / 'console.log'}"
            except Exception as err:  # noqa: BLE001 - one failed run must not stop the others
                outcome.error = f"{type(err).__name__}: {err} (see {run_dir / 'console.log'})"
            finally:
                finish_wandb()  # else the next job in this worker would log into this job's W&B run
    outcome.seconds = attempt.seconds
    record = {"key": job.key, "config": job.config, "labels": job.labels, "result": outcome.result,
              "seconds": outcome.seconds, "error": outcome.error}  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    return outcome


def run_jobs(
    jobs: Sequence[Job],
    root: str | Path,
    workers: int = 2,
    threads: int = 1,
    describe: Callable[[dict[str, Any]], str] = lambda result: "done",
    reuse: bool = True,
    then: Callable[[Outcome], Sequence[Job]] | None = None,
    keep: Callable[[Job], bool] | None = None,
) -> list[Outcome]:
    """Runs every job (``workers`` at a time, ``threads`` torch threads each), reusing finished ones; prints one
    line per job as it finishes and returns the outcomes in the order the jobs were queued. ``then(outcome)`` may
    queue more jobs after each outcome; ``keep(job)``, asked just before a job would train (every reusable outcome
    reported by then), may drop it: a job queued early that the outcomes since have made needless."""
    root = Path(root)
    order: list[str] = []
    outcomes: dict[str, Outcome] = {}
    queue: list[Job] = []

    def enqueue(new: Sequence[Job]) -> None:
        for job in new:
            if job.name in order:
                raise ValueError(f"job names must be unique, got {job.name!r} twice")
            order.append(job.name)
            queue.append(job)

    def report(outcome: Outcome) -> None:
        outcomes[outcome.job.name] = outcome
        status = outcome.error or describe(outcome.result)
        tail = "reused" if outcome.reused else f"{outcome.seconds:.0f} s"
        print(f"[{len(outcomes)}/{len(order)}] {outcome.job.name}: {status} ({tail})", flush=True)
        if then is not None:
            enqueue(then(outcome))

    def take_reusable() -> list[Job]:
        """Reports (and removes from the queue) every queued job with a finished run; returns the rest."""
        rest = []
        while queue:
            job = queue.pop(0)
            done = finished(job, root) if reuse else None
            if done is None:
                rest.append(job)
            else:
                report(done)  # may queue more jobs: the loop sees them
        return rest

    enqueue(jobs)
    todo = take_reusable()
    if todo:
        context = get_context("spawn")  # fresh interpreters: no state leaks between runs
        with ProcessPoolExecutor(max(1, workers), context, _set_threads, (threads,)) as pool:
            running = set()
            while todo or running:
                while todo and len(running) < workers:
                    job = todo.pop(0)
                    if keep is not None and not keep(job):
                        order.remove(job.name)
                        continue
                    running.add(pool.submit(execute, job, root))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    report(future.result())
                todo += take_reusable()
    return [outcomes[name] for name in order]
