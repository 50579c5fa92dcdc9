"""The experiment launcher on Ray: experiments as YAML, records, reuse, resume after SIGKILL, a cluster by address."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_module

from lab.errors import LabError
from lab.experiment import records, table
from lab.experiment import spec as specs

RING = ["configs/base.yaml", "configs/mixtures/ring.yaml"]


def tiny_experiment(folder: Path, variants: dict, seeds=(0,), name: str = "tiny") -> Path:
    """A ring experiment of GAN runs, written to ``folder/<name>.yaml``; ``variants``: name -> overrides."""
    data = {
        "name": name, "lab": "gan_lab", "configs": RING, "budget": "a few epochs", "seeds": list(seeds),
        "set": {"data.init_args.samples_per_epoch": 1280, "data.init_args.batches_per_item": 1},
        "variants": {k: {"configs": ["configs/mixtures/gan.yaml"], "set": v} for k, v in variants.items()},
        "metrics": [{"key": "val/modes", "label": "modes"}, {"key": "val/reverse_kl", "label": "reverse KL",
                                                              "higher": False}],
    }  # fmt: skip
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def launch(exp: Path, tmp: Path, *extra: str, env: dict | None = None, timeout: int = 300):
    return run_module("lab", "experiment", "run", str(exp), "--runs", str(tmp / "runs"), "--results",
                      str(tmp / "results"), *extra, env=env, timeout=timeout)  # fmt: skip


def test_an_experiment_yaml_expands_into_fit_command_lines(tmp_path):
    """Variants x seeds become `fit` argument lists (config files, then overrides, then the seed), seed by seed;
    --set overrides go into every run and give the set its own instance folder."""
    exp = specs.load(REPO / "experiments" / "ring.yaml", REPO)
    runs = exp.runs(seeds=[0, 1], variants=["gan", "wgan"])
    assert [r.name for r in runs] == ["ring-gan-s0", "ring-wgan-s0", "ring-gan-s1", "ring-wgan-s1"]
    assert runs[1].args == (
        "--config=configs/base.yaml",
        "--config=configs/mixtures/ring.yaml",
        "--config=configs/mixtures/wgan.yaml",
        "--trainer.max_epochs=500",
        "--seed_everything=0",
    )
    assert {r.instance for r in runs} == {"ring"}
    changed = exp.runs(seeds=[0], extra=specs.parse_sets(["trainer.max_epochs=2"]))
    assert changed[0].instance.startswith("ring+") and changed[0].args[-2:] == (
        "--trainer.max_epochs=2",
        "--seed_everything=0",
    )


def test_cpus_and_field_types_are_checked(tmp_path):
    """``cpus``: Ray CPUs and torch threads per run (default 1), a positive integer; a field of the wrong type (a
    number as the budget sentence, a string as the seeds) is refused in one line naming it."""
    data = yaml.safe_load(tiny_experiment(tmp_path, {"a": {}}).read_text())
    assert specs.load(tmp_path / "tiny.yaml", REPO).cpus == 1
    cases = [({"cpus": 2}, None), ({"cpus": 0}, "cpus must be a positive integer"),
             ({"cpus": "two"}, "cpus must be a positive integer"), ({"budget": 100}, "budget must be str, got 100"),
             ({"seeds": "0 1"}, "seeds must be list"), ({"gpu": "no"}, "gpu must be bool"),
             ({"variants": ["a"]}, "variants must be dict"),
             ({"metrics": {"key": "m"}}, "metrics must be list")]  # fmt: skip
    for change, message in cases:
        (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**data, **change}))
        if message is None:
            assert specs.load(tmp_path / "tiny.yaml", REPO).cpus == change["cpus"]
        else:
            with pytest.raises(LabError, match=message):
                specs.load(tmp_path / "tiny.yaml", REPO)
    (tmp_path / "tiny.yaml").write_text("- a list\n")
    with pytest.raises(LabError, match="expected a mapping of fields"):
        specs.load(tmp_path / "tiny.yaml", REPO)


def test_more_cpus_per_run_than_the_cluster_has_is_one_error_line(tmp_path):
    """Ray would wait for ever for a node with that many CPUs: the launcher says so and trains nothing."""
    data = yaml.safe_load(tiny_experiment(tmp_path, {"a": {}}).read_text())
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**data, "cpus": 64}))
    result = launch(tmp_path / "tiny.yaml", tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("error: tiny asks 64 CPUs per run; the Ray cluster has ")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.ckpt"))


def test_axes_expand_into_the_product_of_their_values_with_vars_and_only():
    """experiments/palindrome.yaml's axes: cell x init x length, chrono for the gated cells and the IRNN for the
    RNN only, chrono's T_max filled in from the length's vars."""
    exp = specs.load(REPO / "experiments" / "palindrome.yaml", REPO)
    assert len(exp.variants) == (3 + 3 + 3) * 7 and "rnn.chrono.L10" not in exp.variants
    assert "lstm.irnn.L10" not in exp.variants and "rnn.irnn.L1000" in exp.variants
    chrono = exp.variants["gru.chrono.L500"]
    assert chrono["set"] == {"model.recurrent_init": "orthogonal", "model.chrono_t_max": 500, "data.seq_len": 500,
                             "trainer.max_steps": 8000}  # fmt: skip
    assert chrono["configs"] == ["configs/rnn/gru.yaml", "configs/rnn/protocol.yaml"]
    assert exp.label("gru.chrono.L500") == "GRU, orthogonal + chrono (T_max = L), L = 500"
    # --variants takes shell-style patterns, in the order given, each variant once
    runs = exp.runs(seeds=[0], variants=["*.chrono.L500", "gru.chrono.L500", "rnn.irnn.L10"])
    assert [r.variant for r in runs] == ["lstm.chrono.L500", "gru.chrono.L500", "rnn.irnn.L10"]
    with pytest.raises(LabError, match=r"unknown variants \['lstm.\*.L7'\]"):
        exp.runs(variants=["lstm.*.L7"])


def test_the_palindrome_study_description_states_what_its_runs_resolve_to():
    """The description above the study's table in RESULTS.md: each cell's parameter count, learning rate, clipping,
    batch size and the LSTM's forget-gate bias, checked against the configs its runs resolve to."""
    from lab.experiment import records
    from rnn_lab.classifier import SequenceClassifier

    exp = specs.load(REPO / "experiments" / "palindrome.yaml", REPO)
    text = " ".join(exp.description.split())
    for cell, label in (("rnn", "RNN"), ("lstm", "LSTM"), ("gru", "GRU")):
        spec = exp.runs(seeds=[0], variants=[f"{cell}.default.L10"])[0]
        config = records.resolve("rnn_lab", spec.args)
        model = {k: v for k, v in config["model"].items() if k != "optimizer"}
        count = sum(p.numel() for p in SequenceClassifier(**model).parameters())
        assert f"{label} {count:,}" in text
        lr = config["model"]["optimizer"]["init_args"]["lr"]
        assert f"{lr:.0e}".replace("e-0", "e-") in text
        assert config["trainer"]["gradient_clip_val"] == 10 and config["data"]["batch_size"] == 128
        assert config["model"]["hidden_dim"] == 128 and config["data"]["one_hot"]
        if cell == "lstm":
            assert config["model"]["forget_bias"] == 1.0
    assert "clipping 10, batches of 128" in text and "128-unit" in text and "forget-gate bias of 1" in text


def test_success_and_reach_metrics_give_wilson_intervals_and_median_steps():
    """A `success` metric: k/n reaching it with scipy's Wilson 95% interval; a `reach` metric: the median step
    [min, max] at which runs first got there, over how many did."""
    from scipy.stats import binomtest

    solved = specs.Metric("test/best_acc", "solved", True, success=0.99)
    text, numbers = table.cell(solved, [1.0, 0.995, 0.5, 0.99, math.nan])
    ci = binomtest(3, 4).proportion_ci(method="wilson")
    assert text == f"3/4 [{ci.low:.2f}, {ci.high:.2f}]" and numbers[:2] == [3, 4]
    steps = specs.Metric("val/acc", "steps", True, reach=0.99)
    assert table.cell(steps, [300, None, 100, 1200])[0] == "300 [100, 1200] (3/4)"
    assert table.cell(steps, [None, None])[0] == "– (0/2)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["experiment", "run", "nosuch"], "no experiment file experiments/nosuch.yaml (experiments: "),
        (["experiment", "run", "ring", "--variants", "gann"], "unknown variants ['gann'] of experiment ring"),
        (["experiment", "run", "ring", "--set", "trainer.max_epochs"], "expected key=value"),
        (["experiment", "run", "ring", "--runs", "/etc/passwd"], "--runs /etc/passwd: is a file, not a folder"),
        (["experiment", "walk", "ring"], "invalid choice: 'walk'"),
        (["experiment", "run", "ring", "--cpus", "0"], "argument --cpus: must be a positive integer, got '0'"),
        (["experiment", "run", "ring", "--leave-out"], "--leave-out: experiment ring declares no leave_out rule"),
        (["experiment", "run", "ring", "--cpus", "64"], "--cpus 64: this launcher may use "),
    ],
)
def test_bad_input_gives_one_error_line_and_exit_2(args, message, tmp_path):
    """A mistyped experiment, variant, override, output folder or verb: one `error:` line, exit 2, nothing written."""
    result = run_module("lab", *args, "--results", str(tmp_path / "results"), timeout=120) \
        if "walk" not in args else run_module("lab", *args, timeout=120)  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_leave_out_runs_seed_by_seed_and_skips_what_the_records_rule_out_before_starting_ray(tmp_path):
    """`--leave-out`: 0 of 4 solved at L = 10 (Wilson upper bound 0.49) leaves that arm's L = 20 out; with every
    chosen run left out the launcher says so for each seed and exits 0 without starting Ray or writing a run."""
    code = {"files": ["lab/errors.py"], "code": records.code_hash(["lab/errors.py"], str(REPO))}
    folder = tmp_path / "results" / "palindrome"
    for seed in range(4):
        record = {"variant": "rnn.default.L10", "seed": seed, "status": "finished", "seconds": 1.0,
                  "final": {"test/best_acc": 0.1}, "reached": {"val/acc": None}, "code_version": code}  # fmt: skip
        records.write(folder / f"palindrome-rnn.default.L10-s{seed}.json", record)
    result = run_module("lab", "experiment", "run", "palindrome", "--variants", "rnn.default.L20", "--seeds", "4", "5",
                        "--leave-out", "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs"),
                        timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines == ["palindrome: 1 of 1 runs left out by its rule (beyond a length where their arm's upper bound is "
                     "< 0.5); nothing to run"] * 2, result.stdout  # fmt: skip
    assert not any((tmp_path / "runs").iterdir())


def test_no_command_lists_every_command_with_one_line_each():
    """`python -m lab` alone lists its commands, one line each, and exits 2."""
    result = run_module("lab", timeout=60)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "usage: python -m lab <command> ..." and len(lines) == 5
    assert [line.split()[0:2] for line in lines[1:4]] == [["experiment", "run"], ["experiment", "table"],
                                                           ["results", "RESULTS.md"]]  # fmt: skip


def test_a_config_the_cli_refuses_stops_the_set_before_anything_runs(tmp_path):
    """A variant whose overrides the fit CLI refuses is named in one error line before any run starts."""
    exp = tiny_experiment(tmp_path, {"ok": {}, "bad": {"model.init_args.latent_dim": 0}})
    result = launch(exp, tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: variant bad: "), lines
    assert not list((tmp_path / "runs").rglob("version_*")) and not list((tmp_path / "results").rglob("*.json"))


def test_the_table_has_the_95_percent_interval_n_published_rows_and_stale_marks(tmp_path):
    """Mean ± the Student-t half-width (scipy) over seeds, n, failed runs counted apart, published rows in italics
    with their source, and a † on rows made by other code than the current."""
    from scipy import stats

    exp = specs.load(tiny_experiment(tmp_path, {"a": {}, "b": {}}), REPO)
    exp.published = [{"label": "Paper GAN", "source": "Someone 2020, Table 1", "values": {"val/modes": 6.3}}]
    current = records.code_version(["lab/errors.py"], str(REPO))
    values = [5.0, 7.0, 8.0]
    for seed, value in enumerate(values):
        records.write(tmp_path / "results" / "tiny" / f"tiny-a-s{seed}.json", {
            "variant": "a", "seed": seed, "status": "finished", "final": {"val/modes": value, "val/reverse_kl": 0.5},
            "seconds": 10.0, "code_version": current})  # fmt: skip
    other = {"code": "other", "files": ["lab/errors.py"]}
    records.write(tmp_path / "results" / "tiny" / "tiny-b-s0.json", {"variant": "b", "seed": 0, "status": "finished",
                  "final": {"val/modes": 3.0}, "seconds": 4.0, "code_version": other})  # fmt: skip
    records.write(
        tmp_path / "results" / "tiny" / "tiny-b-s1.json",
        {"variant": "b", "seed": 1, "status": "failed", "error": "boom"},
    )
    text, folder = table.build(exp, tmp_path / "results")
    half = stats.t.ppf(0.975, 2) * stats.tstd(values) / math.sqrt(3)
    lines = text.splitlines()
    assert lines[2] == f"| a | 3 | {sum(values) / 3:.2f} ± {half:.2f} | 0.50 ± 0.00 | 10 |"
    assert lines[3] == "| b † | 1 (1 failed) | 3.00 | – | 4 |"
    assert lines[4] == "| *Paper GAN* (Someone 2020, Table 1) |  | *6.3* | — | |"
    assert "†: made by other code" in text
    assert (folder / "table.csv").read_text().splitlines()[1].startswith("a,a,3,0,False,6.666")
    assert (folder / "tiny.png").stat().st_size > 1000


@pytest.mark.slow
def test_a_set_runs_on_ray_writes_records_and_a_second_launch_reuses_every_run(tmp_path):
    """Two variants x two seeds on the private Ray instance: a progress line per run, a record per run (config,
    key, code version, packages, metrics, checkpoints), the table; the same command again trains nothing."""
    exp = tiny_experiment(tmp_path, {"short": {"trainer.max_epochs": 1}, "long": {"trainer.max_epochs": 2}},
                          seeds=(0, 1))  # fmt: skip
    first = launch(exp, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    progress = [line for line in first.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == 4 and progress[-1].startswith("[4/4] ") and "done 4, running 0, reused 0, failed 0" in \
        progress[-1], first.stdout  # fmt: skip
    record = json.loads((tmp_path / "results" / "tiny" / "tiny-long-s1.json").read_text())
    assert record["status"] == "finished" and record["seed"] == 1 and record["config"]["seed_everything"] == 1
    version = record["code_version"]
    assert version["code"] == records.code_hash(version["files"], str(REPO)) and record["packages"]["ray"]
    assert {"lab/cli.py", "gan_lab/gan.py", "datamodules/mixtures.py"} <= set(version["files"])  # what it built from
    assert "gan_lab/wgan.py" not in version["files"] and "lab/experiment/launch.py" not in version["files"]
    assert record["global_step"] == 2 * 10 * 2 and record["epochs"] == 2  # 10 batches an epoch, 2 optimizer steps each
    assert "val/modes" in record["final"] and record["checkpoints"] and record["seconds"] > 0
    assert record["ray"]["address"] == "private local instance" and record["ray"]["node"] and record["cpus"] == 1
    assert record["niceness"] == 0  # as a run started by hand (Ray would start it at nice 15)
    assert record["started"] == "forked"  # from the worker's forkserver: Lightning imported once per worker
    assert record["command"].startswith("python -m gan_lab fit --config=")
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.json")}
    again = launch(exp, tmp_path)
    assert again.returncode == 0 and "4 reused, 0 to run" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.json")} == mtimes
    assert "| short | 2 |" in again.stdout and "| long | 2 |" in again.stdout


def test_a_progress_line_shows_the_key_metric_as_a_value_not_as_a_success_count():
    """The progress line names the key metric's plain column (its label and digits), never the k/n label of a
    success column, which a single run's value would not fit; a failed run shows its error line."""
    from lab.experiment.launch import describe

    exp = specs.load(REPO / "experiments" / "palindrome.yaml", REPO)
    record = {"status": "finished", "final": {"test/best_acc": 0.9951}, "seconds": 12.3}
    assert describe(exp, record) == "test accuracy 0.995 (12 s)"
    assert describe(exp, {"status": "failed", "error": "error: boom"}) == "failed: error: boom"


def test_a_forked_run_trains_bit_for_bit_as_the_command_line_does(tmp_path):
    """run_one's forkserver path (Lightning imported once per worker) against ``python -m gan_lab fit``: the same
    console summary and identical weights; a forked run that the CLI refuses fails with the CLI's error line."""
    import torch

    from lab.experiment.runone import run_one

    args = [f"--config={c}" for c in [*RING, "configs/mixtures/gan.yaml"]] + [
        "--data.init_args.samples_per_epoch=1280", "--data.init_args.batches_per_item=1", "--trainer.max_epochs=2",
        "--seed_everything=3"]  # fmt: skip
    body = {"lab": "gan_lab", "args": args, "root": str(tmp_path), "metrics": [["val/modes", True, None]],
            "extra": ["--run.wandb=false", "--trainer.enable_progress_bar=false"], "key": "k"}  # fmt: skip

    def untimed(result: dict) -> dict:  # the logged values but wall times
        return {k: v for k, v in result["final"].items() if not k.startswith("time/")}

    forked = run_one({**body, "name": "forked", "fork": True, "preload": ["gan_lab.gan"]})
    plain = run_one({**body, "name": "plain", "fork": False})
    assert (forked["started"], plain["started"]) == ("forked", "python -m")
    assert forked["global_step"] == plain["global_step"] == 40 and untimed(forked) == untimed(plain)
    weights = [torch.load(tmp_path / name / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
               for name in ("forked", "plain")]  # fmt: skip
    assert weights[0].keys() == weights[1].keys() and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    with pytest.raises(RuntimeError, match=r"^error: .*max_epochs"):
        run_one({**body, "name": "refused", "fork": True, "args": [*args, "--trainer.max_epochs=two"]})


@pytest.mark.slow
def test_a_failing_run_is_retried_then_recorded_with_its_last_error_line_while_the_set_goes_on(tmp_path):
    """A run that fails at run time (a checkpoint that is not there) is tried 1 + 2 times, then recorded as failed
    with its error's last line; the other run of the set finishes; the launcher exits 1; a stale record is rerun by
    --rerun-stale only."""
    exp = tiny_experiment(tmp_path, {"ok": {"trainer.max_epochs": 1}, "broken": {"ckpt_path": "/nowhere/x.ckpt"}})
    result = launch(exp, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = json.loads((tmp_path / "results" / "tiny" / "tiny-broken-s0.json").read_text())
    assert broken["status"] == "failed" and "/nowhere/x.ckpt" in broken["error"] and "\n" not in broken["error"]
    attempts = (tmp_path / "runs" / "tiny" / "tiny-broken-s0" / "console.log").read_text().count("$ python -m gan_lab")
    assert attempts == 3
    assert "tiny-broken-s0: failed: error:" in result.stdout and "| broken | 0 (1 failed) |" in result.stdout
    ok = tmp_path / "results" / "tiny" / "tiny-ok-s0.json"
    record = json.loads(ok.read_text())
    assert record["status"] == "finished"
    record["code_version"]["code"] = "0" * 12  # as if made by other code
    records.write(ok, record)
    kept = launch(exp, tmp_path, "--variants", "ok")
    assert kept.returncode == 0 and "1 reused, 0 to run" in kept.stdout
    assert "[stale: made by code 000000000000]" in kept.stdout, kept.stdout  # the hash, not the whole version
    rerun = launch(exp, tmp_path, "--variants", "ok", "--rerun-stale")
    assert rerun.returncode == 0 and "0 reused, 1 to run" in rerun.stdout
    again = json.loads(ok.read_text())
    assert not records.is_stale(again) and again["resumed_from_step"] is None and again["attempts"] == 1  # afresh


@pytest.mark.slow
def test_every_experiment_yaml_loads_and_every_variant_composes():
    """Each experiments/*.yaml loads, and the fit CLI resolves every variant's config files and overrides."""
    paths = sorted((REPO / "experiments").glob("*.yaml"))
    assert {p.stem for p in paths} >= {"ring", "grid", "grid_long", "families", "ablations", "stacked"}
    for path in paths:
        exp = specs.load(path, REPO)
        names = list(exp.variants)
        picked = names if len(names) <= 12 else names[:: len(names) // 8] + names[-1:]  # axes: a spread of them
        for run in exp.runs(seeds=exp.seeds[:1], variants=picked):
            config = records.resolve(run.lab, [arg.replace("--config=", f"--config={REPO}/") for arg in run.args])
            assert config["seed_everything"] == exp.seeds[0] and "model" in config, (path.name, run.variant)


def test_results_md_is_generated_from_the_committed_records():
    """RESULTS.md equals what `python -m lab results` builds from the records under results/ (no typed number); the
    check writes nothing (no table or figure beside the records)."""
    before = {p: p.stat().st_mtime_ns for p in (REPO / "results").rglob("*") if p.is_file()}
    result = run_module("lab", "results", "--check", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p: p.stat().st_mtime_ns for p in (REPO / "results").rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_every_committed_record_was_made_from_its_experiment_as_now_defined(monkeypatch):
    """Each record under results/ has the key of its run as the experiment's YAML and config files define it now, so
    no table shows runs of an older definition (a tuned default that would change them is pinned in the YAML, as
    gradient_flow.yaml pins its learning rate and clipping)."""
    monkeypatch.chdir(REPO)  # the launcher resolves the config files relative to the repository, as here
    for path in sorted((REPO / "experiments").glob("*.yaml")):
        exp = specs.load(path, REPO)
        found = table.load(exp, REPO / "results")
        variants = list(dict.fromkeys(record["variant"] for record in found))
        configs = {run.variant: records.resolve(run.lab, run.args) for run in exp.runs(seeds=[0], variants=variants)}
        for record in found:
            config = {**configs[record["variant"]], "seed_everything": record["seed"]}
            config.pop("run", None)
            assert record["key"] == records.config_key(config), (path.name, record["name"])
