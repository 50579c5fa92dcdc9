"""The shared runner: one result per job, reuse keyed by the config hash (a changed config reruns), failures kept."""

from __future__ import annotations

import json
import os

import pytest

from lab.runner import Job, config_hash, result_config, run_jobs


def square(config: dict, run_dir, resume: bool = False, offset: int = 0) -> dict:
    """A runner target for the tests: writes a file, returns config["x"] squared (plus an unhashed offset) and
    whether it was asked to resume."""
    (run_dir / "touched").write_text("1")
    if config["x"] < 0:
        raise ValueError("negative")
    return {"y": config["x"] ** 2 + offset, "resumed": resume}


def jobs(values: list[int], **options) -> list[Job]:
    return [
        Job(f"x{i}", "test_runner:square", {"x": x}, labels={"i": i}, options=options) for i, x in enumerate(values)
    ]


def test_results_in_order_reused_by_hash_and_rerun_when_the_config_changes(tmp_path, capsys):
    """A second call reuses every finished run (no file touched); a changed value reruns that run only."""
    first = run_jobs(jobs([2, 3]), tmp_path, workers=1)
    assert [o.result["y"] for o in first] == [4, 9] and not any(o.reused or o.result["resumed"] for o in first)
    assert "[2/2] x" in capsys.readouterr().out
    (tmp_path / "x0" / "touched").unlink()
    (tmp_path / "x1" / "touched").unlink()
    again = run_jobs(jobs([2, 5]), tmp_path, workers=1)
    assert [o.result["y"] for o in again] == [4, 25] and [o.reused for o in again] == [True, False]
    assert not (tmp_path / "x0" / "touched").exists() and (tmp_path / "x1" / "touched").exists()
    saved = json.loads((tmp_path / "x1" / "run.json").read_text())
    assert saved["key"] == config_hash({"x": 5}) and saved["result"] == {"y": 25, "resumed": False}


def test_options_do_not_change_the_key_and_failures_are_reported_not_raised(tmp_path):
    """Options (logging) are not part of the reuse key; a failing run is reported and retried next time."""
    assert run_jobs(jobs([2], offset=1), tmp_path, workers=1)[0].result == {"y": 5, "resumed": False}
    assert run_jobs(jobs([2], offset=100), tmp_path, workers=1)[0].reused
    failed = run_jobs(jobs([2, -1]), tmp_path, workers=2)[1]
    assert "ValueError: negative" in failed.error and not run_jobs(jobs([2, -1]), tmp_path, workers=1)[1].reused


def resolved(per_item: int, log_every: int, lr: float) -> dict:
    """A job config shaped like a mixture run's: the resolved CLI config nested under ``resolved``."""
    return {"family": "gan", "resolved": {"trainer": {"log_every_n_steps": log_every, "max_epochs": 3},
            "data": {"init_args": {"batches_per_item": per_item, "batch_size": 128}},
            "model": {"init_args": {"lr": lr}}}}  # fmt: skip


def test_execution_settings_do_not_rerun_and_runs_saved_with_the_old_key_are_reused(tmp_path):
    """Batches per loader item and the logging cadence change how a run executes, not its result: the same run with
    other values is reused, also when its run.json holds a key hashed with them (as saved before they were left out);
    a setting that changes the result (the learning rate) reruns."""

    def job(per_item: int, log_every: int, lr: float = 1e-3) -> Job:
        return Job("m0", "test_runner:square", {"x": 3, **resolved(per_item, log_every, lr)})

    assert not run_jobs([job(10, 5)], tmp_path, workers=1)[0].reused
    assert result_config(job(10, 5).config) == result_config(job(50, 1).config)
    assert "batches_per_item" not in json.dumps(result_config(job(10, 5).config))
    saved_path = tmp_path / "m0" / "run.json"
    saved = json.loads(saved_path.read_text())
    saved["key"] = config_hash(saved["config"])  # the key as it was hashed before: with the neutral settings
    saved_path.write_text(json.dumps(saved))
    assert run_jobs([job(50, 1)], tmp_path, workers=1)[0].reused
    assert not run_jobs([job(50, 1, lr=2e-3)], tmp_path, workers=1)[0].reused


def torch_threads(config: dict, run_dir, resume: bool = False) -> dict:
    import torch

    return {"threads": torch.get_num_threads()}


def test_a_job_runs_with_the_workers_thread_budget(tmp_path):
    """The ``threads`` of run_jobs is what torch uses inside each job (one per run: two runs share 2 cores): 2 here,
    where the worker inherits the tests' OMP_NUM_THREADS=1 (conftest)."""
    assert os.environ["OMP_NUM_THREADS"] == "1"
    job = Job("t2", "test_runner:torch_threads", {"threads": 2})
    assert run_jobs([job], tmp_path, workers=1, threads=2)[0].result == {"threads": 2}


def test_names_must_be_unique(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        run_jobs([*jobs([1]), *jobs([2])], tmp_path)


def test_a_killed_attempt_of_the_same_config_is_resumed(tmp_path):
    """An attempt that started (its key written) but never finished makes the next attempt resume; another config
    starts afresh."""
    (job,) = jobs([3])
    (tmp_path / "x0").mkdir()
    (tmp_path / "x0" / "started").write_text(job.key)  # as a killed worker leaves it: no run.json
    assert run_jobs([job], tmp_path, workers=1)[0].result == {"y": 9, "resumed": True}
    (tmp_path / "x0" / "run.json").unlink()
    (tmp_path / "x0" / "started").write_text("another config")
    assert run_jobs([job], tmp_path, workers=1)[0].result == {"y": 9, "resumed": False}


def test_a_resumed_run_counts_the_seconds_of_its_killed_attempts(tmp_path):
    """The seconds an earlier attempt recorded before it was killed are added to the resumed attempt's own, in the
    outcome and in run.json; a killed attempt of another config adds nothing."""
    from lab.runner import execute  # in this process: what a worker runs

    (job,) = jobs([3])
    (tmp_path / "x0").mkdir()
    (tmp_path / "x0" / "started").write_text(json.dumps({"key": job.key, "seconds": 600.0}))
    outcome = execute(job, tmp_path)
    assert outcome.result["resumed"] and 600.0 <= outcome.seconds < 660.0
    assert json.loads((tmp_path / "x0" / "run.json").read_text())["seconds"] == outcome.seconds
    (tmp_path / "x0" / "started").write_text(json.dumps({"key": "another config", "seconds": 600.0}))
    assert execute(job, tmp_path).seconds < 60.0


def peek_started(config: dict, run_dir, resume: bool = False) -> dict:
    """A runner target that waits, then returns what ``started`` holds at that moment."""
    import time

    time.sleep(config["seconds"])
    return json.loads((run_dir / "started").read_text())


def test_a_running_attempt_records_its_seconds_so_far(tmp_path, monkeypatch):
    """While a job runs, ``started`` holds its key and a wall time that grows: what a later resume adds."""
    import lab.runner

    monkeypatch.setattr(lab.runner, "HEARTBEAT_S", 0.05)
    job = Job("slow", "test_runner:peek_started", {"seconds": 0.3})
    seen = lab.runner.execute(job, tmp_path).result
    assert seen["key"] == job.key and 0.15 <= seen["seconds"] <= 0.35


def log_line(config: dict, run_dir, resume: bool = False) -> dict:
    """A runner target that logs through a console handler made on its first call, as Lightning's import does."""
    import logging

    logger = logging.getLogger("runner_test_lib")
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler())
        logger.setLevel(logging.INFO)
    logger.info("hello from %s", run_dir.name)
    return {}


def test_a_library_console_handler_writes_to_each_jobs_log(tmp_path):
    """A console handler made during one job (holding that job's log) writes into the next job's log in the same
    worker, not into the closed file of the first ("--- Logging error ---")."""
    from lab.runner import execute  # two jobs in one process, as in a worker

    for i in range(2):
        execute(Job(f"j{i}", "test_runner:log_line", {"i": i}), tmp_path)
    for i in range(2):
        text = (tmp_path / f"j{i}" / "console.log").read_text()
        assert f"hello from j{i}" in text and "Logging error" not in text


def test_then_queues_follow_up_jobs_after_new_and_reused_runs(tmp_path):
    """``then`` makes a set adaptive: each outcome may queue the next job; a second call reuses the whole chain."""

    def then(outcome):
        x = outcome.job.config["x"]
        return [Job(f"x{x + 1}", "test_runner:square", {"x": x + 1})] if x < 3 else []

    first = run_jobs([Job("x1", "test_runner:square", {"x": 1})], tmp_path, workers=2, then=then)
    assert [(o.job.name, o.result["y"], o.reused) for o in first] == [(f"x{x}", x * x, False) for x in (1, 2, 3)]
    again = run_jobs([Job("x1", "test_runner:square", {"x": 1})], tmp_path, workers=2, then=then)
    assert [o.result["y"] for o in again] == [1, 4, 9] and all(o.reused for o in again)


def test_keep_drops_a_queued_job_that_reused_outcomes_made_needless(tmp_path):
    """Replaying a finished set, ``then`` queues a job after the first reused outcome that the second one makes
    needless; ``keep``, asked just before anything would train, drops it: it neither runs nor appears."""
    run_jobs(jobs([1, 2]), tmp_path, workers=1)
    seen = []

    def then(outcome):
        seen.append(outcome.job.name)
        return [Job("x9", "test_runner:square", {"x": 9})] if outcome.job.name == "x0" else []

    replay = run_jobs(jobs([1, 2]), tmp_path, workers=1, then=then, keep=lambda job: "x1" not in seen)
    assert [(o.job.name, o.reused) for o in replay] == [("x0", True), ("x1", True)]
    assert not (tmp_path / "x9").exists()
    kept = run_jobs(jobs([1, 2]), tmp_path, workers=1, then=then, keep=lambda job: True)
    assert [o.job.name for o in kept] == ["x0", "x1", "x9"] and (tmp_path / "x9" / "touched").is_file()


def linger(config: dict, run_dir, resume: bool = False) -> dict:
    """A runner target that writes its pid and sleeps (the parent is killed meanwhile). Like Lightning during a fit, it
    catches SIGTERM and carries on (Lightning stops at the next batch, and the worker then idled, orphaned)."""
    import os
    import signal
    import time

    signal.signal(signal.SIGTERM, lambda *args: None)
    (run_dir / "pid").write_text(str(os.getpid()))
    time.sleep(config["seconds"])
    return {}


def test_workers_die_with_a_killed_parent(tmp_path):
    """SIGKILL to the process running the jobs takes its workers down too, even one that handles SIGTERM: no orphan
    keeps training or idles."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    code = (
        "import sys, pathlib; sys.path.insert(0, 'tests'); from lab.runner import Job, run_jobs; "
        f"run_jobs([Job('slow', 'test_runner:linger', {{'seconds': 120}})], pathlib.Path({str(tmp_path)!r}), 1)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[1])
    pid_file = tmp_path / "slow" / "pid"
    deadline = time.time() + 60
    while time.time() < deadline and not pid_file.is_file():
        time.sleep(0.2)
    worker = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return  # gone
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the worker outlived its parent")
