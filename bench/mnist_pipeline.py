"""MNIST batches/s at batch 64: our in-memory uint8 pipeline vs torchvision's per-sample ToTensor/Normalize loader.

Both read the same files from $LAB_DATA_DIR (or ./data), shuffle, and yield normalised float batches (B, 1, 28, 28).

    python bench/mnist_pipeline.py [--batches 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from datamodules.mnist import MNISTDataModule
from lab.paths import default_data_dir


def seconds(loader: DataLoader, batches: int) -> float:
    """Seconds to draw ``batches`` batches (a fresh epoch iterator, as training does)."""
    start = time.perf_counter()
    iterator = iter(loader)
    for _ in range(batches):
        images, _labels = next(iterator)
    assert images.shape[1:] == (1, 28, 28) and images.dtype == torch.float32
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ours = MNISTDataModule(batch_size=64, val_size=0).train_dataloader()
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    reference = DataLoader(
        datasets.MNIST(default_data_dir(), train=True, transform=transform), batch_size=64, shuffle=True
    )
    ours_s, ref_s = [], []
    for _ in range(args.repeats):
        ref_s.append(seconds(reference, args.batches))
        ours_s.append(seconds(ours, args.batches))
    mine, ref = statistics.median(ours_s), statistics.median(ref_s)
    threads = torch.get_num_threads()
    print(f"MNIST train batches of 64, {args.batches} batches x {args.repeats} runs (medians), {threads} torch threads")
    print(f"torchvision ToTensor/Normalize DataLoader: {args.batches / ref:8.0f} batches/s")
    print(f"datamodules.mnist in-memory uint8       : {args.batches / mine:8.0f} batches/s")
    print(f"speed-up = {ref / mine:.1f}x")


if __name__ == "__main__":
    main()
