"""A newcomer's first hour, as README.md gives it: each command README names, in README's order, at a tiny budget
(``configs/tiny.yaml``, two epochs, one or two seeds) and into a temporary folder. Each must exit 0 with no traceback
and no warning on its console; the make targets are run as make expands them (``make -n``), so a README command
that the Makefile no longer has fails here."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def make_command(target: str, *assignments: str) -> list[str]:
    """The command ``make <target> <VAR=value ...>`` runs (its last recipe line), with the test's Python."""
    dry = subprocess.run(["make", "-n", "--no-print-directory", target, *assignments], cwd=REPO, capture_output=True,
                         text=True, check=True)  # fmt: skip
    line = [line for line in dry.stdout.splitlines() if "-m " in line][-1]
    words = shlex.split(line.split("#")[0])
    return [sys.executable, *words[1:]]


def run(command: list[str], tmp: Path) -> str:
    env = {**os.environ, "WANDB_DIR": str(tmp), "RAY_TMPDIR": "/tmp"}
    env.pop("WANDB_MODE", None)  # a newcomer has no key and no mode: the suite picks offline and says so
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-3000:]
    assert "Traceback" not in console, console[-3000:]
    warnings = [line for line in console.splitlines() if "warning" in line.lower()]
    assert not warnings, warnings
    return console


@pytest.mark.slow
def test_readme_commands_in_order_without_a_traceback_or_a_warning(tmp_path, data_dir):
    for named in ("make train-wgan", "python -m gan_lab sample --ckpt", "make evaluate CKPT=", "make report",
                  "make train-lstm", "make experiment E=ring ARGS='--seeds 0 1 --set trainer.max_epochs=2'",
                  "make results", "make gradient-flow", "make help"):  # fmt: skip
        assert named in README, f"README no longer says {named!r}: update this walk"
    runs = tmp_path / "runs"
    tiny = f"ARGS=--config configs/tiny.yaml --run.root {runs}"
    console = run(make_command("train-wgan", tiny + " --run.wandb true"), tmp_path)  # W&B on, as make train-wgan has it
    run_dir = runs / "wgan-tiny-s0" / "version_0"
    assert f"Run: {run_dir}" in console and "python -m gan_lab evaluate --ckpt" in console  # the end-of-run summary
    assert "W&B: no API key, logging offline" in console and "wandb sync" in console
    last = run_dir / "checkpoints" / "last.ckpt"
    run([sys.executable, "-m", "gan_lab", "sample", "--ckpt", str(last), "--out", str(tmp_path / "grid.png")], tmp_path)
    assert (tmp_path / "grid.png").stat().st_size > 0
    run(make_command("evaluate", f"CKPT={last}", "ARGS=--n 256"), tmp_path)
    console = run(make_command("report", f"RUNS={runs}"), tmp_path)
    assert (runs / "report" / "report.md").is_file()
    run(make_command("train-lstm", tiny), tmp_path)
    experiment = f"ARGS=--seeds 0 1 --variants gan pacgan --set trainer.max_epochs=2 --runs {runs} --results " \
                 f"{tmp_path / 'results'}"  # fmt: skip
    console = run(make_command("experiment", "E=ring", experiment), tmp_path)
    assert list((tmp_path / "results").glob("ring*/table.md")) and "failed 0" in console, console[-2000:]
    run(make_command("results", f"ARGS=--out {tmp_path / 'RESULTS.md'}"), tmp_path)
    assert (tmp_path / "RESULTS.md").read_text().startswith("#")
    flow = tmp_path / "flow.png"
    run(make_command("gradient-flow", f"ARGS=--seq_len 12 --batch_size 8 --hidden_dim 8 --output {flow}"), tmp_path)
    assert flow.stat().st_size > 0
    targets = subprocess.run(["make", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for target in ("train-wgan", "test", "test-fast", "lint", "bench", "evaluate", "report", "experiment", "results",
                   "gradient-flow", "train-classifier"):  # fmt: skip
        assert f"  {target} " in targets or f" {target} " in targets + " ", target  # its own line or a family's


def test_readme_states_the_flagship_recipe_its_config_trains():
    """README's row for ``make train-wgan`` said n_critic 5 and 30 epochs for a while after the config changed: each
    setting the row names is read back from configs/gan/wgan.yaml and the optimiser file it names for both nets."""
    import yaml

    path = REPO / "configs" / "gan" / "wgan.yaml"
    config = yaml.safe_load(path.read_text())
    model = config["model"]["init_args"]
    assert model["generator_optimizer"] == model["discriminator_optimizer"], "README's row names one optimiser"
    optimiser = yaml.safe_load((path.parent / model["generator_optimizer"]).read_text())["init_args"]
    row = next(line for line in README.splitlines() if line.startswith("| `make train-wgan`"))
    hours, minutes, seconds = (int(part) for part in config["trainer"]["max_time"].split(":")[1:])
    assert not hours and f"{minutes} min {seconds} s of training wall time" in row, row
    assert ("one critic step per generator step" in row) == (model["n_critic"] == 1), row
    assert f"λ = {model['gp_weight']:g}" in row and f"({model['ema_decay']:g})" in row, row
    beta1, beta2 = optimiser["betas"]
    assert f"Adam {optimiser['lr']:.0e}".replace("e-0", "e-") in row and f"β ({beta1:g}, {beta2:g})" in row, row
