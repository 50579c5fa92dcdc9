"""The RNN lab's two CPU settings, measured: one training step (forward, backward, Adam) of the palindrome study's
networks at initialisation, with each setting off and on, side by side.

    python bench/rnn_cpu.py [--length 300] [--repeats 3] [--threads 1 2] [--arms lstm:chrono ...]

`SequenceClassifier.setup` turns both on while a trainer runs it:
- flush-to-zero: a gradient that vanishes through many steps turns denormal (below 1.2e-38 in float32), and x86
  CPUs compute with denormals many times slower;
- freed memory kept in the heap (glibc ``mallopt``: no ``mmap`` for large blocks, no trimming): an LSTM's
  activations at L = 300 (steps x batch x 4 x hidden floats, 78 MB) are above glibc's largest mmap threshold (32 MB),
  so by default every step maps them afresh and the kernel zeroes every page again (tens of thousands of page
  faults a step).
Each row times the same network, batch and step under the three settings, each in a fresh process with the setting
made before the first step (as the trainer makes it), after one untimed step: IEEE with the default allocator, then
flush-to-zero, then flush-to-zero with the heap kept. (Switching the allocator in one process after large blocks had
come from mmap left L = 1,000's blocks on mmap: 261,000 faults a step either way.) Ratios are the first time over each
other (above 1: faster). Faults are the minor page faults of one step. With ``--threads 1 2`` each arm is timed on one
thread then two (a row each), so the last column of seconds is also what a study run costs a step (the flush + heap
settings are the trainer's) on one core or two.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.__main__ import positive_int  # noqa: E402
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


def measure(cell: str, kwargs: dict, length: int, threads: int, flush: bool, heap: bool, repeats: int):
    """In a fresh process (the allocator's state is per process: a heap that earlier steps left behind, or maps they
    left around it, would decide the later settings' times): the settings first, as a trainer sets them before its
    first step, then one untimed step and ``repeats`` timed ones. Returns (median seconds, median minor faults)."""
    torch.set_num_threads(threads)
    torch.set_flush_denormal(flush)
    keep_freed_memory(heap)
    torch.manual_seed(0)
    x = torch.nn.functional.one_hot(torch.randint(0, 10, (128, length - 1)), 10).float()  # batch 128, one-hot
    y = torch.randint(0, 10, (128,))
    model = SequenceClassifier(cell=cell, **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0)  # lr 0: every step sees the same weights
    step(model, optimizer, x, y)
    times, faults = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        step(model, optimizer, x, y)
        times.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return statistics.median(times), statistics.median(faults)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=positive_int, default=300, help="palindrome length L (steps per sequence)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed steps per setting")
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1], help="torch threads, a row each (1)")
    parser.add_argument("--arms", nargs="+", default=None, help="cell:init to time, e.g. lstm:chrono (all)")
    args = parser.parse_args()
    known = [f"{cell}:{label}" for cell, label, _ in ARMS]
    if args.arms and set(args.arms) - set(known):
        parser.error(f"unknown arms {sorted(set(args.arms) - set(known))}: choose from {', '.join(known)}")
    print(f"one training step (Adam), batch 128, hidden 128, L = {args.length}, median of {args.repeats}")
    names = " ".join(f"{name + ' s':>20}" for name, *_ in SETTINGS)
    print(f"{'cell':5} {'init':11} {'threads':>7} {names} {'flush x':>8} {'both x':>7} {'faults':>15}")
    runs = [(arm, n) for arm in ARMS if not args.arms or f"{arm[0]}:{arm[1]}" in args.arms for n in args.threads]
    spawn = multiprocessing.get_context("spawn")
    for (cell, label, kwargs), threads in runs:
        chrono = {"chrono_t_max": args.length} if kwargs.get("chrono_t_max") == "L" else {}
        measured = []
        for _, flush, heap in SETTINGS:
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                measured.append(pool.submit(measure, cell, {**kwargs, **chrono}, args.length, threads, flush, heap,
                                            args.repeats).result())  # fmt: skip
        median = [seconds for seconds, _ in measured]
        shown = " ".join(f"{m:20.3f}" for m in median)
        ratios = f"{median[0] / median[1]:8.2f} {median[0] / median[2]:7.2f}"
        fault = f"{measured[0][1]:.0f} -> {measured[2][1]:.0f}"
        print(f"{cell:5} {label:11} {threads:7} {shown} {ratios} {fault:>15}", flush=True)


if __name__ == "__main__":
    main()
