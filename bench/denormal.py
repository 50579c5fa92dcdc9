"""Why the RNN lab flushes denormals to zero: one training step (forward and backward) of the study's networks at
initialisation, with IEEE denormals and with flush-to-zero, side by side.

    python bench/denormal.py [--length 300] [--repeats 3]

A gradient that vanishes through many steps turns denormal (below 1.2e-38 in float32) and x86 CPUs compute with
denormals many times slower; `SequenceClassifier.setup` turns flush-to-zero on while a trainer runs it. Each row
times the same network, batch and backward pass both ways, alternated, on one thread; the ratio is IEEE time over
flush-to-zero time (above 1: flushing is faster). The inits are the palindrome study's (experiments/palindrome.yaml).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rnn_lab.classifier import SequenceClassifier  # noqa: E402

ARMS = [  # (cell, init label, SequenceClassifier arguments)
    ("rnn", "torch's", {"recurrent_init": "default"}),
    ("rnn", "orthogonal", {"recurrent_init": "orthogonal"}),
    ("rnn", "IRNN", {"recurrent_init": "identity", "nonlinearity": "relu"}),
    ("lstm", "torch's", {"recurrent_init": "default"}),
    ("lstm", "orthogonal", {"recurrent_init": "orthogonal"}),
    ("lstm", "chrono", {"recurrent_init": "orthogonal", "chrono_t_max": "L"}),
    ("gru", "torch's", {"recurrent_init": "default"}),
    ("gru", "orthogonal", {"recurrent_init": "orthogonal"}),
    ("gru", "chrono", {"recurrent_init": "orthogonal", "chrono_t_max": "L"}),
]


def step_seconds(model: SequenceClassifier, x: torch.Tensor, y: torch.Tensor, flush: bool) -> float:
    torch.set_flush_denormal(flush)
    model.zero_grad()
    start = time.perf_counter()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    seconds = time.perf_counter() - start
    torch.set_flush_denormal(False)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=300, help="palindrome length L (steps per sequence)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per side (alternated)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.nn.functional.one_hot(torch.randint(0, 10, (128, args.length - 1)), 10).float()  # batch 128, one-hot
    y = torch.randint(0, 10, (128,))
    print(f"one training step, batch 128, hidden 128, L = {args.length}, 1 thread, median of {args.repeats} each")
    print(f"{'cell':5} {'init':11} {'IEEE s':>8} {'flush s':>8} {'ratio':>6}")
    for cell, label, kwargs in ARMS:
        chrono = {"chrono_t_max": args.length} if kwargs.get("chrono_t_max") == "L" else {}
        model = SequenceClassifier(cell=cell, **{**kwargs, **chrono})
        step_seconds(model, x, y, True)  # warm-up
        ieee, flush = [], []
        for _ in range(args.repeats):
            ieee.append(step_seconds(model, x, y, False))
            flush.append(step_seconds(model, x, y, True))
        a, b = statistics.median(ieee), statistics.median(flush)
        print(f"{cell:5} {label:11} {a:8.3f} {b:8.3f} {a / b:6.2f}", flush=True)


if __name__ == "__main__":
    main()
