"""``make train-classifier``: trains the MNIST classifier behind the suite's metrics (``lab.metrics.backbones``).

Its committed weights (``lab/weights/mnist_classifier.pt``, provenance beside them in ``mnist_classifier.json``)
make every user compute the same FID / IS / class coverage. This regenerates them:

    python -m gan_lab.classifier --out lab/weights/mnist_classifier.pt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from lab.errors import fail
from lab.metrics.backbones import WEIGHTS, MNISTClassifier, load_classifier  # noqa: F401 - re-exported for tests
from lab.paths import default_data_dir

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def load_mnist_split(data_dir: str | Path, train: bool) -> tuple[Tensor, Tensor]:
    """The official MNIST split as uint8 images (N, 28, 28) and int64 labels (N,), read without downloading."""
    from torchvision.datasets import MNIST

    raw = Path(data_dir) / "MNIST" / "raw"
    if not (raw / RAW_FILES[0 if train else 2]).is_file():
        raise FileNotFoundError(f"MNIST not found under {raw}: set LAB_DATA_DIR to the folder that holds MNIST/raw")
    dataset = MNIST(str(data_dir), train=train, download=False)
    return dataset.data, dataset.targets.long()


def md5s(data_dir: str | Path) -> dict[str, str]:
    """md5 of each raw MNIST file, recorded in the weights' provenance."""
    raw = Path(data_dir) / "MNIST" / "raw"
    return {name: hashlib.md5((raw / name).read_bytes()).hexdigest() for name in RAW_FILES}


def augment(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random affine jitter of a batch (B, 1, 28, 28): rotation +-10 deg, scale 0.9-1.1, shift +-2 px."""
    b = x.shape[0]
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(b, generator=generator) * 2 - 1) * 0.1
    shift = (torch.rand(b, 2, generator=generator) * 2 - 1) * (2 / 14)  # grid units: 14 px per unit
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, 28, 28, 2)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def accuracy(model: MNISTClassifier, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on uint8 images (N, 28, 28)."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].unsqueeze(1).float() / 255  # (B, 1, 28, 28)
        correct += (model.predict(x) == labels[start : start + batch_size]).sum().item()
    model.train(was_training)
    return correct / len(images)


def train_classifier(
    data_dir: str | Path,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    subset: int | None = None,
) -> tuple[MNISTClassifier, dict]:
    """Trains on the MNIST train split (Adam, one-cycle schedule, affine jitter); returns the model and its record.

    ``subset`` keeps the first ``subset`` training images (smoke tests); the committed weights use all 60,000.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_x, train_y = load_mnist_split(data_dir, train=True)
    train_x, train_y = train_x[:subset], train_y[:subset]
    test_x, test_y = load_mnist_split(data_dir, train=False)
    model = MNISTClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(train_x) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        total = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            x = augment(train_x[idx].unsqueeze(1).float() / 255, generator)  # (B, 1, 28, 28)
            loss = F.cross_entropy(model(x), train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
            if (i + 1) % 100 == 0:
                print(f"  step {i + 1}/{steps_per_epoch}  loss {loss.item():.4f}  {time.perf_counter() - start:.0f}s")
        test_acc = accuracy(model, test_x, test_y)
        print(f"epoch {epoch + 1}/{epochs}  train loss {total / steps_per_epoch:.4f}  test acc {test_acc:.4f}")
    model.eval()
    record = {
        "command": "python -m gan_lab.classifier " + " ".join(sys.argv[1:]),
        "seed": seed,
        "epochs": epochs,
        "train_images": len(train_x),
        "batch_size": batch_size,
        "lr": lr,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_seconds": round(time.perf_counter() - start, 1),
        "test_accuracy": accuracy(model, test_x, test_y),
        "train_accuracy": accuracy(model, train_x, train_y),
        "data_md5": md5s(data_dir),
    }
    return model, record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gan_lab.classifier", description=__doc__.splitlines()[0])
    parser.error = fail  # type: ignore[method-assign]  # one line, exit 2
    parser.add_argument("--data-dir", default=None, help="folder holding MNIST/raw (default $LAB_DATA_DIR or ./data)")
    parser.add_argument("--out", default=str(WEIGHTS), help="weights file; provenance goes beside it as .json")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", type=int, default=None, help="train on the first N images only (smoke tests)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.suffix != ".pt" or not out.parent.is_dir():
        parser.error(f"--out {out} must be a .pt file in an existing folder")
    if args.epochs <= 0 or (args.subset is not None and args.subset <= 0):
        parser.error("--epochs and --subset must be positive")
    try:
        model, record = train_classifier(
            args.data_dir or default_data_dir(), epochs=args.epochs, seed=args.seed, subset=args.subset
        )
    except FileNotFoundError as err:
        fail(str(err))
    torch.save(model.state_dict(), out)
    record["weights_md5"] = hashlib.md5(out.read_bytes()).hexdigest()
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"test accuracy {record['test_accuracy']:.4f}; weights in {out}, provenance in {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
