"""Gradient flow through time: ||∂L/∂h_t|| (and an LSTM's ||∂L/∂c_t||) for every step t, the loss on the last output.

The measured counterpart of the bound for a tanh RNN h_t = tanh(W_hh h_{t-1} + ...):
||∂h_T/∂h_t|| <= (||W_hh||_2 · max tanh')^(T-t) = ||W_hh||_2^(T-t), since tanh' <= 1 (the sigmoid's 0.25 does not
apply to tanh). A vanilla RNN's values fall geometrically as t moves away from the loss, an LSTM's cell path much
more slowly.

- ``gradient_norms(module, x, y)``: the values for one batch, one curve per state (module protocol:
  ``unrolled_forward(x) -> (logits, {"h_t": [...], "c_t": [...]})``, as rnn_lab.classifier.SequenceClassifier
  provides; ``c_t`` only for cells that have one);
- ``GradientFlow``: a callback that records them at the start and the end of training, logs them and saves a PNG
  and a CSV in the run directory;
- ``python -m rnn_lab gradient-flow`` (``make gradient-flow``, in ``rnn_lab.gradient_flow``): cells and recurrent
  inits on one plot, at initialisation and after training.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor

from datamodules.palindrome import NUM_DIGITS, make_palindromes
from lab.loggers import publish_png, scalar_step
from lab.paths import run_dir


def palindrome_batch(seq_len: int, batch_size: int, seed: int, device: torch.device | str = "cpu"):
    """A fixed batch of palindromes with ``seq_len`` input digits: x (B, seq_len) int64, y (B,) int64."""
    generator = torch.Generator().manual_seed(seed)
    half = (seq_len + 2) // 2
    keys = torch.randint(0, NUM_DIGITS ** min(half, 18), (batch_size,), generator=generator)
    full = make_palindromes(seq_len + 1, keys, generator).long()  # (B, seq_len + 1)
    return full[:, :-1].to(device), full[:, -1].to(device)


def gradient_norms(module: LightningModule, x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """Mean over the batch of ||∂ℓ_i/∂s_t|| for t = 1..T and each state s (``h_t``, and ``c_t`` for an LSTM), with
    ℓ_i the cross-entropy of sample i: ``{"h_t": (T,), ...}``.

    Parameter gradients are left untouched (``torch.autograd.grad`` on the states only).
    """
    was_training = module.training
    module.eval()
    try:
        with torch.enable_grad():
            logits, states = module.unrolled_forward(x)  # {"h_t": T tensors (1, B, H) or (B, H), ...}
            loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")  # per-sample gradients, unscaled
            grads = torch.autograd.grad(loss, [node for nodes in states.values() for node in nodes])
    finally:
        module.train(was_training)
    norms, start = {}, 0
    for name, nodes in states.items():
        per_step = grads[start : start + len(nodes)]
        norms[name] = torch.stack([g.reshape(-1, g.shape[-1]).norm(dim=-1).mean() for g in per_step]).detach().cpu()
        start += len(nodes)
    return norms  # each (T,)


def save_panels(
    panels: dict[str, dict[str, Tensor]], path: Path, title: str, styles: dict[str, dict] | None = None
) -> None:
    """One log-scale panel per entry of ``panels`` (its title -> curves), time step on x, a shared y axis and one
    legend; ``styles`` maps a curve's label to matplotlib line options (colour, line style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.5), sharey=True, squeeze=False)
    for ax, (panel, curves) in zip(axes[0], panels.items(), strict=True):
        for label, values in curves.items():
            options = (styles or {}).get(label, {})
            exact = values.double().clamp_min(torch.finfo(torch.float64).tiny)  # no floor but 0 (log scale)
            ax.plot(range(1, len(values) + 1), exact.numpy(), label=label, **options)
        ax.set_yscale("log")
        ax.set_xlabel("time step t (loss on the last output)")
        ax.set_title(panel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("||dL/dh_t||, ||dL/dc_t||")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_plot(curves: dict[str, Tensor], path: Path, title: str) -> None:
    """One log-scale line per curve, time step on x."""
    save_panels({title: curves}, path, "")


def save_csv(curves: dict[str, Tensor], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", *curves])
        for t, row in enumerate(zip(*(values.tolist() for values in curves.values()), strict=True), start=1):
            writer.writerow([t, *row])


def probe_steps(length: int) -> list[int]:
    """The steps t (from 1) at which the curve is logged as a metric: 1, 2, 5, 10, 20, 50, ... below ``length``,
    and ``length``."""
    steps = [m * 10**e for e in range(len(str(length))) for m in (1, 2, 5) if m * 10**e < length]
    return [*steps, length]


class GradientFlow(Callback):
    """Records ||∂L/∂h_t|| (and an LSTM's ||∂L/∂c_t||) on a fixed batch of long palindromes at the start and the end
    of training, on a float64 copy of the module (a float32 gradient below 1e-38 would read as 0).

    Logs ``gradient_flow/<when>_first_over_last`` (= ||∂L/∂h_1|| / ||∂L/∂h_T||), its log10 and the log10 of
    ||∂L/∂h_t|| / ||∂L/∂h_T|| at the ``probe_steps`` t (``..._log10_h<t>_over_last``) to every logger, adds
    the plot to W&B when it is active, and saves ``gradient_flow.png`` and ``gradient_flow.csv`` in the run directory.

    Args:
        seq_len: input steps of the probe sequences.
        batch_size: probe sequences.
        seed: seed of the probe batch.
    """

    def __init__(self, seq_len: int = 100, batch_size: int = 128, seed: int = 0) -> None:
        if seq_len < 2 or batch_size < 1:
            raise ValueError(f"gradient flow needs seq_len >= 2 and batch_size >= 1; got {seq_len}, {batch_size}")
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed
        self.curves: dict[str, Tensor] = {}

    def _record(self, trainer: Trainer, module: LightningModule, when: str) -> None:
        x, y = palindrome_batch(self.seq_len, self.batch_size, self.seed, module.device)
        # a float64 copy: gradients that vanish below float32's range (1e-38 and less) stay measurable, not 0
        args = {k: v for k, v in module.hparams.items() if not k.startswith("_")}  # the CLI adds _instantiator
        probe = type(module)(**args).double().to(module.device)
        probe.load_state_dict(module.state_dict())
        curves = gradient_norms(probe, torch.nn.functional.one_hot(x, module.hparams.num_classes).double(), y)
        for state, norms in curves.items():
            self.curves[f"{getattr(module, 'family', 'model')} {state} ({when})"] = norms
        norms = curves["h_t"]
        ratio = (norms[0] / norms[-1].clamp_min(torch.finfo(norms.dtype).tiny)).item()
        values = {f"gradient_flow/{when}_first_over_last": ratio,
                  f"gradient_flow/{when}_log10_first_over_last": math.log10(max(ratio, 1e-300))}  # fmt: skip
        for t in probe_steps(len(norms)):  # the curve itself, at log-spaced steps: into the run's record
            relative = (norms[t - 1] / norms[-1].clamp_min(torch.finfo(norms.dtype).tiny)).item()
            values[f"gradient_flow/{when}_log10_h{t}_over_last"] = math.log10(max(relative, 1e-300))
        for logger in trainer.loggers:
            logger.log_metrics(values, step=scalar_step(trainer))

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._record(trainer, pl_module, "start")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._record(trainer, pl_module, "end")
        if not trainer.is_global_zero:
            return
        folder = run_dir(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        png = folder / "gradient_flow.png"
        save_plot(self.curves, png, f"Gradient flow, {self.seq_len} steps")
        save_csv(self.curves, folder / "gradient_flow.csv")
        publish_png(trainer, "gradient_flow", png, f"||dL/dh_t|| at the start and the end, step {scalar_step(trainer)}")
