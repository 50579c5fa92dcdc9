"""``python -m rnn_lab gradient-flow`` (``make gradient-flow``): ||∂L/∂h_t|| (and the LSTM's ||∂L/∂c_t||) per cell and
recurrent init, at initialisation; one PNG and a CSV beside it. After training, the same curves come from the
``GradientFlow`` callback of ordinary ``fit`` runs: ``make experiment E=gradient_flow`` (no training path here).

The probe is a fixed batch of palindromes with ``--seq_len`` input digits, the loss the cross-entropy on the last
output (callbacks.gradient_flow), measured on a float64 copy of each model so that values far below float32's
smallest normal number (1e-38) do not underflow to 0. The LSTM's c_t comes from an unroll in plain autograd ops of
the cell's own weights (rnn_lab.cells.lstm_unrolled), since nn.LSTM hands c_t back beside h_t rather than under it.
For each tanh RNN the command also prints the bound
||∂h_T/∂h_t|| <= (||W_hh||_2 · max tanh')^(T-t) = ||W_hh||_2^(T-t) (tanh' <= 1) with the measured spectral norm
of W_hh.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lab.errors import LabError, check_output_path, fail, one_of
from rnn_lab.cells import CELLS, IMPLEMENTATIONS, recurrent_weights
from rnn_lab.inits import RECURRENT_INITS

if TYPE_CHECKING:  # Lightning loads only once the arguments are checked
    from rnn_lab.classifier import SequenceClassifier


def parse_args(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rnn_lab gradient-flow", description=__doc__.split("\n\n")[0])
    # Lists take nargs="*" and are checked below, so an empty or misspelt one is one clear line.
    parser.add_argument("--cells", nargs="*", default=["rnn", "lstm"], help=f"one or more of {', '.join(CELLS)}")
    parser.add_argument("--recurrent_init", nargs="*", default=["default"],
                        help=f"recurrent weights' init, one or more of {', '.join(RECURRENT_INITS)}")  # fmt: skip
    parser.add_argument("--seq_len", type=int, default=100, help="input steps of the probe sequences")
    parser.add_argument("--batch_size", type=int, default=128, help="probe sequences")
    parser.add_argument("--hidden_dim", type=int, default=128)
    parser.add_argument("--forget_bias", type=float, default=1.0, help="initial LSTM forget-gate bias")
    parser.add_argument("--implementation", default="torch", choices=IMPLEMENTATIONS)
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the probe batch")
    parser.add_argument("--output", default="runs/gradient-flow/gradient_flow.png", help="PNG path (a CSV goes beside)")
    parser.error = lambda message: fail(message)  # type: ignore[method-assign]
    opts = parser.parse_args(args)
    try:
        for name, what in (("cells", "cell"), ("recurrent_init", "init")):
            if not getattr(opts, name):
                raise LabError(f"--{name} needs at least one {what}")
        for cell in opts.cells:
            one_of("--cells", cell, CELLS)
        for init in opts.recurrent_init:
            one_of("--recurrent_init", init, RECURRENT_INITS)
        if opts.seq_len < 2 or opts.batch_size < 1 or opts.hidden_dim < 1:
            raise LabError("--seq_len must be >= 2, --batch_size and --hidden_dim >= 1")
        if Path(opts.output).suffix != ".png":
            raise LabError(f"--output {opts.output} must end with .png")
        Path(opts.output).parent.mkdir(parents=True, exist_ok=True)  # the last check: nothing written before it
        opts.output = check_output_path(opts.output, (".png",))
    except (ValueError, OSError) as err:
        fail(str(err))
    opts.cells, opts.recurrent_init = list(dict.fromkeys(opts.cells)), list(dict.fromkeys(opts.recurrent_init))
    return opts


def measure(model: SequenceClassifier, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """gradient_norms of a float64 copy of ``model`` on digits ``x`` (B, T): {"h_t": (T,), ...} in float64."""
    from callbacks.gradient_flow import gradient_norms
    from rnn_lab.classifier import SequenceClassifier

    probe = SequenceClassifier(**model.hparams).double()
    probe.load_state_dict(model.state_dict())
    return gradient_norms(probe, torch.nn.functional.one_hot(x, model.hparams.num_classes).double(), y)


def describe(label: str, norms: torch.Tensor) -> str:
    state = label.split()[1]  # h_t or c_t
    last, first = state.replace("_t", f"_{len(norms)}"), state.replace("_t", "_1")
    text = f"{label}: ||dL/d{last}|| = {norms[-1]:.3g}, ||dL/d{first}|| = {norms[0]:.3g}"
    if norms[0] > 0 and norms[-1] > 0:
        text += f", x{(norms[0] / norms[-1]).item() ** (1 / (len(norms) - 1)):.3f} per step back in time"
    return text


def rnn_bound(model: SequenceClassifier, seq_len: int) -> str:
    """The tanh RNN's bound with the measured spectral norm of W_hh."""
    norm = torch.linalg.matrix_norm(recurrent_weights(model.cell)[1].detach(), ord=2).item()
    return (
        f"  bound: ||dh_T/dh_t|| <= (||W_hh||_2 * max tanh')^(T-t) = ||W_hh||_2^(T-t) (tanh' <= 1), measured "
        f"||W_hh||_2 = {norm:.4f}: from h_1 to h_{seq_len}, <= {norm:.4f}^{seq_len - 1} = {norm ** (seq_len - 1):.3g}"
    )


def main(args: list[str]) -> None:
    """``python -m rnn_lab gradient-flow``: ||∂L/∂h_t|| (||∂L/∂c_t|| for the LSTM) per cell and init on one plot."""
    opts = parse_args(args)
    from callbacks.gradient_flow import palindrome_batch, save_csv, save_panels
    from rnn_lab.classifier import SequenceClassifier

    x, y = palindrome_batch(opts.seq_len, opts.batch_size, opts.seed)
    stages = ["init"]
    panels: dict[str, dict[str, torch.Tensor]] = {stage: {} for stage in stages}
    styles, colours = {}, {"rnn h_t": "C0", "lstm h_t": "C1", "lstm c_t": "C3", "gru h_t": "C2"}
    dashes = dict(zip(RECURRENT_INITS, ("-", "--", ":", "-."), strict=False))  # a line style per init
    for cell in opts.cells:
        for init in opts.recurrent_init:
            torch.manual_seed(opts.seed)
            model = SequenceClassifier(
                cell=cell, implementation=opts.implementation, hidden_dim=opts.hidden_dim,
                forget_bias=opts.forget_bias, recurrent_init=init,
            )  # fmt: skip
            for stage in stages:
                for state, norms in measure(model, x, y).items():
                    label = f"{cell} {state} {init}"
                    panels[stage][label] = norms
                    styles[label] = {"color": colours[f"{cell} {state}"], "linestyle": dashes[init]}
                    print(describe(f"{label} ({stage})", norms))
                if cell == "rnn":
                    print(rnn_bound(model, opts.seq_len))
    output = opts.output
    title = f"Gradient flow: {opts.seq_len} steps, hidden {opts.hidden_dim}, loss on the last output"
    save_panels({f"at {s}" if s == "init" else s: curves for s, curves in panels.items()}, output, title, styles)
    save_csv({f"{label} ({stage})": norms for stage, curves in panels.items() for label, norms in curves.items()},
             output.with_suffix(".csv"))  # fmt: skip
    print(f"saved {output} and {output.with_suffix('.csv')}")


def experiment_figure(exp, table: list[dict], path: Path, panels: str = "cell", lines: str = "init") -> None:
    """The gradient-flow experiment's figure from its records: log10 ||∂L/∂h_t|| / ||∂L/∂h_T|| against t (log
    scale), the mean over seeds with its 95% t interval, a panel per ``panels`` value, a line per ``lines`` value; the
    top row at initialisation, the bottom row at the end of the run's training (the ``GradientFlow`` callback's
    ``gradient_flow/<when>_log10_h<t>_over_last`` metrics)."""
    import math
    import re

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lab.stats import interval

    rows = [row for row in table if row["variant"] in exp.variants and row["finals"]]
    names = list(dict.fromkeys(exp.variants[row["variant"]]["axis_labels"][panels] for row in rows))
    if not names:
        return
    fig, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names) + 1, 6.6), sharey="row", squeeze=False)
    for r, when in enumerate(("start", "end")):
        pattern = re.compile(rf"gradient_flow/{when}_log10_h(\d+)_over_last$")
        for row in rows:
            labels = exp.variants[row["variant"]]["axis_labels"]
            steps = sorted({int(m[1]) for final in row["finals"] for key in final if (m := pattern.match(key))})
            points = []
            for t in steps:
                values = [f[key] for f in row["finals"] if (key := f"gradient_flow/{when}_log10_h{t}_over_last") in f]
                values = [v for v in values if not math.isnan(v)]
                if values:
                    mean, half = interval(values)
                    points.append((t, mean, half or 0.0))
            if points:
                ts, means, halves = zip(*points, strict=True)
                axes[r][names.index(labels[panels])].errorbar(ts, means, yerr=halves, marker="o", ms=3, capsize=2,
                                                             label=labels[lines])  # fmt: skip
        for name, ax in zip(names, axes[r], strict=True):
            ax.set_xscale("log")
            ax.set_xlabel("time step t")
            ax.set_title(f"{name}, {'at initialisation' if when == 'start' else 'after training'}", fontsize=9)
            ax.axhline(0, color="grey", lw=0.5)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        axes[r][0].set_ylabel("log10 ||dL/dh_t|| / ||dL/dh_T||\n(mean over seeds, 95% t)", fontsize=8)
    fig.suptitle(f"{exp.title} ({exp.budget})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
