"""The length sweep and the gradient-flow measurements write their files and show the expected behaviour."""

import csv

import pytest
import torch
from pytorch_lightning import Trainer
from pytorch_lightning.loggers import CSVLogger

from callbacks.gradient_flow import GradientFlow
from datamodules.palindrome import PalindromeDataModule
from rnn_lab.classifier import SequenceClassifier
from rnn_lab.gradient_flow import main as gradient_flow_main
from rnn_lab.sweep import sweep_main


@pytest.mark.slow
def test_sweep_writes_csv_markdown_png_and_learns_short_palindromes(tmp_path, capsys):
    """Two tiny lengths, one seed: one CSV row per run, a markdown table, a PNG, and accuracy far above chance."""
    args = ["--lengths", "3", "4", "--seeds", "0", "--max_steps", "150", "--val_every", "50", "--num_samples", "2000"]
    run_dir = sweep_main([*args, "--hidden_dim", "32", "--jobs", "1", "--root", str(tmp_path)])
    rows = list(csv.DictReader(open(run_dir / "results.csv")))
    assert {(r["cell"], r["seq_len"]) for r in rows} == {("rnn", "3"), ("rnn", "4"), ("lstm", "3"), ("lstm", "4")}
    assert all(float(r["best_val_acc"]) > 0.5 for r in rows)  # chance is 0.1: no "stuck at 10%" evaluation bug
    table = (run_dir / "results.md").read_text()
    assert "| 3 |" in table and "| 4 |" in table and "lstm accuracy" in table
    assert (run_dir / "accuracy_vs_length.png").stat().st_size > 1000
    assert capsys.readouterr().out.count("] ") >= 4  # one line per finished run


def test_gradient_flow_command_writes_png_and_rnn_gradients_vanish(tmp_path):
    """Over 100 steps the RNN's ||dL/dh_t|| falls by > 1e6 from the last step to the first; the LSTM's by less."""
    output = tmp_path / "flow.png"
    gradient_flow_main(["--output", str(output), "--batch_size", "32", "--hidden_dim", "64"])
    assert output.stat().st_size > 1000
    rows = list(csv.DictReader(open(output.with_suffix(".csv"))))
    assert len(rows) == 100
    rnn = torch.tensor([float(r["rnn"]) for r in rows])
    lstm = torch.tensor([float(r["lstm"]) for r in rows])
    assert rnn[0] < 1e-6 * rnn[-1]
    assert (rnn[:50] < rnn[50:].mean()).all()  # decays along the whole way back, not just at one end
    assert lstm[0] / lstm[-1] > rnn[0] / rnn[-1]


def test_gradient_flow_callback_logs_and_saves_png(tmp_path):
    """As a Trainer callback it logs the first/last ratio at start and end and saves a PNG in the run directory."""
    torch.manual_seed(0)
    data = PalindromeDataModule(seq_len=5, num_samples=512, batch_size=64)
    model = SequenceClassifier(cell="rnn", hidden_dim=16)
    logger = CSVLogger(tmp_path, name="flow")
    trainer = Trainer(
        accelerator="cpu", max_steps=2, limit_val_batches=1, logger=logger, callbacks=[GradientFlow(seq_len=30)],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    run_dir = tmp_path / "flow" / "version_0"
    assert (run_dir / "gradient_flow.png").stat().st_size > 1000
    metrics = (run_dir / "metrics.csv").read_text()
    assert "gradient_flow/start_first_over_last" in metrics and "gradient_flow/end_first_over_last" in metrics
