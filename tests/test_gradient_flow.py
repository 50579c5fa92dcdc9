"""Gradient flow through time: the command's curves (h_t, the LSTM's c_t, per init, at init and after training),
the tanh RNN's bound, the callback, and refusals of bad input."""

import csv

import pytest
import torch
from conftest import run_module
from pytorch_lightning import Trainer
from pytorch_lightning.loggers import CSVLogger

from callbacks.gradient_flow import GradientFlow
from datamodules.palindrome import PalindromeDataModule
from rnn_lab.classifier import SequenceClassifier
from rnn_lab.gradient_flow import main as gradient_flow_main


def _columns(path) -> dict[str, torch.Tensor]:
    rows = list(csv.DictReader(open(path)))
    return {name: torch.tensor([float(r[name]) for r in rows], dtype=torch.float64) for name in rows[0]}


def test_gradient_flow_per_init_with_the_lstm_cell_path_at_length_100(tmp_path, capsys):
    """Length 100, seed 0, both inits: one CSV column per (cell, state, init), 100 rows; the default RNN's gradient
    falls by > 1e6 from the last step to the first, the orthogonal RNN's curve is much flatter, the LSTM's c_t curve
    is there; the bound line gives ||W_hh||_2 = 1 for the orthogonal RNN."""
    output = tmp_path / "flow.png"
    gradient_flow_main(["--output", str(output), "--batch_size", "32", "--hidden_dim", "64",
                        "--recurrent_init", "default", "orthogonal"])  # fmt: skip
    assert output.stat().st_size > 1000
    curves = _columns(output.with_suffix(".csv"))
    states = ["rnn h_t default", "rnn h_t orthogonal", "lstm h_t default", "lstm c_t default", "lstm h_t orthogonal",
              "lstm c_t orthogonal"]  # fmt: skip
    assert list(curves) == ["t"] + [f"{state} (init)" for state in states]
    assert all(len(values) == 100 for values in curves.values())
    rnn, orthogonal = curves["rnn h_t default (init)"], curves["rnn h_t orthogonal (init)"]
    lstm, cell_path = curves["lstm h_t default (init)"], curves["lstm c_t default (init)"]
    assert rnn[0] < 1e-6 * rnn[-1]
    assert (rnn[:50] < rnn[50:].mean()).all()  # decays along the whole way back, not just at one end
    assert lstm[0] / lstm[-1] > rnn[0] / rnn[-1]
    assert orthogonal[0] / orthogonal[-1] > 1e6 * rnn[0] / rnn[-1]  # flatter: far less lost over 100 steps
    assert not torch.allclose(orthogonal, rnn)
    assert (cell_path > 0).all() and torch.isfinite(cell_path).all()
    out = capsys.readouterr().out
    assert "||dh_T/dh_t|| <= (||W_hh||_2 * max tanh')^(T-t) = ||W_hh||_2^(T-t)" in out
    assert "measured ||W_hh||_2 = 1.0000" in out  # orthogonal: every singular value is 1
    assert "lstm c_t default (init): ||dL/dc_100||" in out


def test_gradient_flow_callback_logs_and_saves_png(tmp_path):
    """As a Trainer callback it logs the first/last ratio at start and end and saves a PNG in the run directory."""
    torch.manual_seed(0)
    data = PalindromeDataModule(seq_len=5, num_samples=512, batch_size=64)
    model = SequenceClassifier(cell="lstm", hidden_dim=16)
    logger = CSVLogger(tmp_path, name="flow")
    flow = GradientFlow(seq_len=30)
    trainer = Trainer(
        accelerator="cpu", max_steps=2, limit_val_batches=1, logger=logger, callbacks=[flow],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    run_dir = tmp_path / "flow" / "version_0"
    assert (run_dir / "gradient_flow.png").stat().st_size > 1000
    metrics = (run_dir / "metrics.csv").read_text()
    assert "gradient_flow/start_first_over_last" in metrics and "gradient_flow/end_first_over_last" in metrics
    assert "gradient_flow/end_log10_first_over_last" in metrics  # what experiments/gradient_flow.yaml tabulates
    header = (run_dir / "gradient_flow.csv").read_text().splitlines()[0]
    assert header == "t,lstm h_t (start),lstm c_t (start),lstm h_t (end),lstm c_t (end)"
    assert all(curve.dtype == torch.float64 for curve in flow.curves.values())  # a float64 probe: no underflow to 0
    # the curve itself goes into the run's metrics (so into its record) at t = 1, 2, 5, 10, 20, 30
    curves = _columns(run_dir / "gradient_flow.csv")
    logged = {k: float(v) for row in csv.DictReader(open(run_dir / "metrics.csv")) for k, v in row.items() if v}
    for when in ("start", "end"):
        norms = curves[f"lstm h_t ({when})"]
        keys = sorted(k for k in logged if k.startswith(f"gradient_flow/{when}_log10_h"))
        assert len(keys) == 6 and logged[f"gradient_flow/{when}_log10_h30_over_last"] == 0.0
        expected = torch.log10(norms[4] / norms[-1]).item()
        assert logged[f"gradient_flow/{when}_log10_h5_over_last"] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_the_experiment_figure_draws_the_mean_curve_per_init_at_start_and_end(tmp_path):
    """experiments/gradient_flow.yaml's figure from records alone: a panel per cell, a line per init, two rows."""
    import numpy as np
    from conftest import REPO
    from PIL import Image

    from lab.experiment import spec, table
    from lab.report.figures import experiment_figure

    exp = spec.load(REPO / "experiments" / "gradient_flow.yaml", REPO)
    found = [{"variant": name, "seed": seed, "status": "finished", "seconds": 1.0, "reached": {},
              "final": {f"gradient_flow/{when}_log10_h{t}_over_last": -0.05 * (100 - t) * (1 + seed) / (1 + i)
                        for when in ("start", "end") for t in (1, 2, 5, 10, 20, 50, 100)},
              "code_version": {}} for i, name in enumerate(exp.variants) for seed in (0, 1, 2)]  # fmt: skip
    experiment_figure(exp, table.rows(exp, found), tmp_path / "flow.png")
    image = np.asarray(Image.open(tmp_path / "flow.png").convert("L"))
    assert image.shape[0] > 6 * 110 and image.shape[1] > 3 * 3.6 * 110 and image.std() > 20


REFUSALS = [
    (["--cells", "rnn", "lstn"], "error: --cells must be one of rnn, lstm, gru, got 'lstn'"),
    (
        ["--recurrent_init", "xavier"],
        "error: --recurrent_init must be one of default, orthogonal, identity, got 'xavier'",
    ),
    (["--recurrent_init"], "error: --recurrent_init needs at least one init"),
    (["--seq_len", "1"], "error: --seq_len must be >= 2, --batch_size and --hidden_dim >= 1"),
    (["--train_steps", "3"], "error: unrecognized arguments: --train_steps 3"),  # trained curves: the experiment
]


@pytest.mark.parametrize(("args", "line"), REFUSALS, ids=["cell", "init", "no init", "seq_len", "train_steps"])
def test_gradient_flow_refuses_bad_input_in_one_line_before_writing(args, line, tmp_path):
    """`python -m rnn_lab gradient-flow` with a bad value: exactly one stderr line, exit 2, no folder created."""
    output = tmp_path / "out" / "flow.png"
    result = run_module("rnn_lab", "gradient-flow", *args, "--output", str(output), timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [line]
    assert not output.parent.exists()


def test_a_non_png_output_is_refused_before_its_folder_is_made(tmp_path, capsys):
    """--output must end with .png; the folder it names is not created."""
    with pytest.raises(SystemExit) as stop:
        gradient_flow_main(["--output", str(tmp_path / "out" / "flow.jpg")])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: --output {tmp_path / 'out' / 'flow.jpg'} must end with .png\n"
    assert not (tmp_path / "out").exists()
