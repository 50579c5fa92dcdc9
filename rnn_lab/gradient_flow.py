"""``python -m rnn_lab gradient-flow`` (``make gradient-flow``): ||dL/dh_t|| of freshly initialised cells, one plot."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from callbacks.gradient_flow import gradient_norms, palindrome_batch, save_csv, save_plot
from lab.errors import LabError, check_output_path, fail
from rnn_lab.cells import CELLS
from rnn_lab.classifier import SequenceClassifier


def main(args: list[str]) -> None:
    """``python -m rnn_lab gradient-flow``: ||∂L/∂h_t|| of freshly initialised cells on one plot."""
    parser = argparse.ArgumentParser(prog="python -m rnn_lab gradient-flow", description=main.__doc__)
    parser.add_argument("--cells", nargs="+", default=["rnn", "lstm"], choices=CELLS, help="cells to compare")
    parser.add_argument("--seq_len", type=int, default=100, help="input steps of the probe sequences")
    parser.add_argument("--batch_size", type=int, default=128, help="probe sequences")
    parser.add_argument("--hidden_dim", type=int, default=128)
    parser.add_argument("--forget_bias", type=float, default=1.0, help="initial LSTM forget-gate bias")
    parser.add_argument("--implementation", default="torch", choices=("manual", "torch"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and of the probe batch")
    parser.add_argument("--output", default="runs/gradient-flow/gradient_flow.png", help="PNG path (a CSV goes beside)")
    parser.error = lambda message: fail(message)  # type: ignore[method-assign]
    opts = parser.parse_args(args)
    try:
        if opts.seq_len < 2 or opts.batch_size < 1 or opts.hidden_dim < 1:
            raise LabError("--seq_len must be >= 2, --batch_size and --hidden_dim >= 1")
        Path(opts.output).parent.mkdir(parents=True, exist_ok=True)
        output = check_output_path(opts.output, (".png",))
    except (LabError, OSError) as err:
        fail(str(err))
    x, y = palindrome_batch(opts.seq_len, opts.batch_size, opts.seed)
    curves = {}
    for cell in opts.cells:
        torch.manual_seed(opts.seed)
        model = SequenceClassifier(
            cell=cell, implementation=opts.implementation, hidden_dim=opts.hidden_dim, forget_bias=opts.forget_bias
        )
        norms = gradient_norms(model, x, y)
        curves[cell] = norms
        decay = (norms[0] / norms[-1]).log10().item() / (len(norms) - 1)
        print(
            f"{cell}: ||dL/dh_T|| = {norms[-1]:.3g}, ||dL/dh_1|| = {norms[0]:.3g}, "
            f"x{10**decay:.3f} per step back in time"
        )
    title = f"Gradient flow at initialisation: {opts.seq_len} steps, hidden {opts.hidden_dim}"
    save_plot(curves, output, title)
    save_csv(curves, output.with_suffix(".csv"))
    print(f"saved {output} and {output.with_suffix('.csv')}")
