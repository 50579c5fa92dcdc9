"""FID of 10,000 vs 10,000 MNIST images with the classifier backbone, the real-data floors, and Inception's cost.

    python bench/fid.py [--n 10000] [--threads 1 2] [--inception-images 8]

Prints:
- the wall and CPU time of a classifier-backbone FID (features of both sets, statistics, Fréchet distance) for
  ``n`` test images vs ``n`` training images (the floor's draw, ``floor_draw``: at n = 10,000 the value is the FID
  floor of docs/evaluation.md);
- the Inception Score of the ``n`` real test images on the classifier logits (the ceiling of ``val/is``);
- the per-image time of the InceptionV3 backbone (randomly initialised: same architecture and cost, so no download
  is needed) on a handful of images, measured in the same run, and the ratio of the two per-image costs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from callbacks.metrics import ClassifierFeatures, ImageMetrics, SharedInception, mnist_images  # noqa: E402
from datamodules.mnist import floor_draw  # noqa: E402
from gan_lab.classifier import load_classifier  # noqa: E402


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def classifier_fid(real: torch.Tensor, fake: torch.Tensor, batch_size: int) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=ClassifierFeatures(load_classifier()).eval(), reset_real_features=False)
    with torch.no_grad():
        for images, is_real in ((real, True), (fake, False)):
            for batch in images.split(batch_size):
                fid.update(batch.float() / 255, real=is_real)  # uint8 -> [0, 1]
        return float(fid.compute())


def random_inception() -> SharedInception:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None

    from torchmetrics.image.fid import NoTrainInceptionV3

    path = Path(tempfile.gettempdir()) / "bench_fid_inception_random.pth"
    empty = path.with_suffix(".empty.pth")
    torch.save({}, empty)
    torch.save(Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty)).state_dict(), path)
    net = NoTrainInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"], str(path), antialias=False)
    return SharedInception(net)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts timed side by side")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--inception-images", type=int, default=8)
    args = parser.parse_args()
    test = mnist_images("test", args.n)  # (n, 1, 28, 28) uint8
    train = floor_draw(args.n)[0]  # (n, 1, 28, 28) uint8, the training images every floor uses
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, n = {args.n} vs {args.n}")

    classifier_fid(test[:1000], train[:1000], args.batch_size)  # warm-up
    walls = {}
    for threads in args.threads:  # side by side: on a shared machine, OpenMP threads may spin instead of compute
        torch.set_num_threads(threads)
        floor, walls[threads], cpu = timed(lambda: classifier_fid(test, train, args.batch_size))
        print(f"FID, {args.n} vs {args.n}, {threads} thread(s): {walls[threads]:.2f} s wall, {cpu:.2f} s CPU")
    wall = min(walls.values())
    print(f"best: {wall:.2f} s wall (goal <= 5 s on 2 cores)")
    print(f"FID of test vs train images (n = {args.n}; the floor at 10,000): {floor:.4f}")

    metrics = ImageMetrics("classifier", batch_size=args.batch_size)
    metrics.update(test.float() / 255, real=True)
    metrics.update(test.float() / 255, real=False)
    values = metrics.compute()
    print(f"real-data IS (test images, classifier logits, 10 splits): {values['is']:.3f} +- {values['is_std']:.3f}")
    print(f"real-data classes covered {values['classes_covered']}/10, KL(classes || uniform) {values['class_kl']:.5f}")

    k = args.inception_images
    inception = random_inception()
    x = test[:k].float() / 255
    with torch.no_grad():
        inception.outputs(x[:1].clone())  # warm-up
        _, inc_wall, _ = timed(lambda: inception.outputs(x.clone()))
    per_clf, per_inc = wall / (2 * args.n), inc_wall / k
    print(f"InceptionV3 backbone: {per_inc * 1e3:.1f} ms/image ({k} images) vs classifier {per_clf * 1e3:.3f} ms/image")
    print(f"ratio Inception / classifier per image: {per_inc / per_clf:.0f}x; an Inception FID of {args.n} vs {args.n}")
    print(f"  would take about {per_inc * 2 * args.n / 60:.0f} min here")


if __name__ == "__main__":
    main()
