"""The metric calibration table: FID, KID and IS of real digits under known damage (docs/evaluation.md, RESULTS.md).

    python tools/calibrate_metrics.py [--n 10000]

Reference: the first n test digits; scored: n training digits (a seeded draw), damaged by each row. Prints a
markdown table and whether every metric moves monotonically with every damage.
"""

from __future__ import annotations

import argparse
import time

from datamodules.mnist import MNISTDataModule, floor_draw
from lab.metrics.calibration import calibrate, is_monotone


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="images per set (2..10000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 2 <= args.n <= 10000:
        parser.exit(2, f"error: --n must be between 2 and 10000, got {args.n}\n")
    start = time.perf_counter()
    test = MNISTDataModule(val_size=0, download=False).dataset("test").tensors[0][: args.n].float() / 255
    images, labels = floor_draw(args.n, args.seed)  # the floor's draw, as gan_lab.evaluate's
    rows = calibrate(test, images.float() / 255, labels, seed=args.seed)
    print(f"n = {args.n} per set, classifier backbone; reference: test digits; scored: training digits, damaged")
    print("| damage | FID | KID | IS | classes | class-KL |\n|---|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['row']} | {r['fid']:.2f} | {r['kid']:.4f} | {r['is']:.2f} | {r['classes_covered']} "
              f"| {r['class_kl']:.3f} |")  # fmt: skip
    verdict = is_monotone(rows)
    print("monotone: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in verdict.items()))
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
