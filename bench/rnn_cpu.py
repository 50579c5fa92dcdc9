"""The RNN lab's two CPU settings, measured: one training step (forward, backward, Adam) of the palindrome study's
networks at initialisation, with each setting off and on, side by side.

    python bench/rnn_cpu.py [--length 300] [--repeats 3]

`SequenceClassifier.setup` turns both on while a trainer runs it:
- flush-to-zero: a gradient that vanishes through many steps turns denormal (below 1.2e-38 in float32), and x86
  CPUs compute with denormals many times slower;
- freed memory kept in the heap (glibc ``mallopt``: no ``mmap`` for large blocks, no trimming): an LSTM's
  activations at L = 300 (steps x batch x 4 x hidden floats, 78 MB) are above glibc's largest mmap threshold (32 MB),
  so by default every step maps them afresh and the kernel zeroes every page again (tens of thousands of page
  faults a step).
Each row times the same network, batch and step under the three settings in turn (each after an untimed step under
the same setting), on one thread: IEEE with the default allocator, then flush-to-zero, then flush-to-zero with the
heap kept. Ratios are the first time over each other (above 1: faster). Faults are the minor page faults of one
step.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rnn_lab.classifier import SequenceClassifier, keep_freed_memory  # noqa: E402

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
SETTINGS = [("IEEE, default heap", False, False), ("flush", True, False), ("flush + heap", True, True)]


def step(model, optimizer, x, y) -> None:
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def timed_step(model, optimizer, x, y, flush: bool, heap: bool) -> tuple[float, int]:
    """Seconds and minor page faults of a training step under the given settings, after one untimed step under
    them (the step that fills the heap; in a run every step but the first finds it filled)."""
    torch.set_flush_denormal(flush)
    keep_freed_memory(heap)
    step(model, optimizer, x, y)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    step(model, optimizer, x, y)
    seconds = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    torch.set_flush_denormal(False)
    keep_freed_memory(False)
    return seconds, faults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=300, help="palindrome length L (steps per sequence)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per setting (the three in turn)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.nn.functional.one_hot(torch.randint(0, 10, (128, args.length - 1)), 10).float()  # batch 128, one-hot
    y = torch.randint(0, 10, (128,))
    print(f"one training step (Adam), batch 128, hidden 128, L = {args.length}, 1 thread, median of {args.repeats}")
    names = " ".join(f"{name + ' s':>20}" for name, *_ in SETTINGS)
    print(f"{'cell':5} {'init':11} {names} {'flush x':>8} {'both x':>7} {'faults':>15}")
    for cell, label, kwargs in ARMS:
        chrono = {"chrono_t_max": args.length} if kwargs.get("chrono_t_max") == "L" else {}
        model = SequenceClassifier(cell=cell, **{**kwargs, **chrono})
        optimizer = torch.optim.Adam(model.parameters(), lr=0.0)  # lr 0: every step sees the same weights
        for _, flush, heap in SETTINGS:
            timed_step(model, optimizer, x, y, flush, heap)  # warm-up
        times: list[list[float]] = [[] for _ in SETTINGS]
        faults: list[list[int]] = [[] for _ in SETTINGS]
        for _ in range(args.repeats):
            for i, (_, flush, heap) in enumerate(SETTINGS):
                seconds, count = timed_step(model, optimizer, x, y, flush, heap)
                times[i].append(seconds)
                faults[i].append(count)
        median = [statistics.median(t) for t in times]
        shown = " ".join(f"{m:20.3f}" for m in median)
        fault = f"{statistics.median(faults[0]):.0f} -> {statistics.median(faults[2]):.0f}"
        print(f"{cell:5} {label:11} {shown} {median[0] / median[1]:8.2f} {median[0] / median[2]:7.2f} {fault:>15}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
