"""Palindrome generation speed: 1,000,000 samples of length 20 (goal <= 0.5 s), with a Python-loop baseline.

    python bench/palindrome_gen.py [--num_samples 1000000] [--seq_len 20]

Prints wall and CPU time (CPU time is steadier when other processes share the machine) of the vectorised generator
used by datamodules.palindrome, and the ratio to a straightforward per-sample Python loop timed on 1% of the samples.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from datamodules.palindrome import palindrome_splits  # noqa: E402


def python_loop(seq_len: int, num_samples: int, seed: int) -> list[list[int]]:
    """The per-sample baseline (without the train/val disjointness the real generator guarantees)."""
    rng = random.Random(seed)
    out = []
    for _ in range(num_samples):
        half = [rng.randrange(10) for _ in range((seq_len + 1) // 2)]
        out.append(half + half[: seq_len // 2][::-1])
    return out


def best_time(fn, repeats: int) -> tuple[float, float]:
    """Best (wall s, CPU s) over ``repeats`` calls."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_samples", type=int, default=1_000_000)
    parser.add_argument("--seq_len", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    wall, cpu = best_time(lambda: palindrome_splits(opts.seq_len, opts.num_samples, 0.8, seed=0), opts.repeats)
    small = opts.num_samples // 100
    loop_wall, _ = best_time(lambda: python_loop(opts.seq_len, small, seed=0), 1)
    loop_full = loop_wall * opts.num_samples / small
    print(f"{opts.num_samples:,} palindromes of length {opts.seq_len}, disjoint 80/20 split, {opts.threads} thread(s):")
    print(f"  vectorised: {wall:.3f} s wall, {cpu:.3f} s CPU  (goal <= 0.5 s: {'met' if wall <= 0.5 else 'NOT met'})")
    print(
        f"  Python loop (extrapolated from {small:,}): {loop_full:.2f} s"
        f" -> vectorised is {loop_full / wall:.0f}x faster"
    )


if __name__ == "__main__":
    main()
