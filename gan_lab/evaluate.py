"""``python -m gan_lab evaluate --ckpt PATH``: FID, KID, IS, precision / recall / density / coverage and class coverage
of a checkpoint beside the real data (``--samples FILE.pt``: of saved samples, ``gan_lab.evaluate_samples``).

Prints one table and writes the same numbers as JSON (default: ``<checkpoint>.eval.json`` beside the checkpoint);
when the checkpoint belongs to a run, the numbers (``eval/...``) are also added to that run: a row of its metrics.csv
(``report`` shows them) and its W&B summary (``--no-write-back`` to skip):

- ``fid``: generated vs the first N MNIST test images; ``fid_floor``: N training images vs the same test images,
  the value a generator that reproduced the training data would get (not zero: two finite samples always differ);
- ``kid`` and ``kid_floor``: the same with the Kernel Inception Distance (unbiased: comparable across N);
- ``is`` and ``is_real``: Inception Score of the generated and of the real test images (the ceiling);
- ``precision``, ``recall``, ``density``, ``coverage`` (Naeem et al. 2020, k = 5, on the FID features) and their
  ``_real`` values: the same N training images vs the test images, what a generator of real digits would get;
- ``classes_covered`` and ``class_kl``: digits the classifier finds among the samples, KL(histogram || uniform).

With ``--backbone inception`` the keys are ``fid_inception`` / ``kid_inception`` / ``is_inception`` (comparable with
papers). ``real_floor()`` gives the real-data column alone (no checkpoint): the FID floor of docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from datamodules.mnist import floor_draw, mnist_images
from lab.errors import LabError, check_output_path, fail
from lab.loggers import write_back
from lab.metrics.backbones import BACKBONES, resolve_inception_weights
from lab.metrics.functional import to_unit_range
from lab.metrics.image import ImageMetrics

MAX_N = 10000  # the size of the MNIST test split, which holds the real reference images
PRDC_KEYS = {"precision": "fidelity", "recall": "diversity", "density": "fidelity", "coverage": "diversity"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_lab evaluate", description=__doc__.splitlines()[0])
    parser.error = fail  # type: ignore[method-assign]  # one line and exit 2, like every other input error
    parser.add_argument("--ckpt", default=None, help="checkpoint written by `python -m gan_lab fit`")
    parser.add_argument("--samples", default=None, help="or saved samples (.pt): images N x 1|3 x 28 x 28 in [0, 1] "
                        "or points N x 2 (gan_lab.evaluate_samples), as `sample --out X.pt` writes")  # fmt: skip
    parser.add_argument("--data", default=None, help="the mixture of --samples points: ring or grid")
    parser.add_argument("--backbone", default="classifier", help="classifier (default, MNIST) or inception (papers)")
    parser.add_argument("--n", type=int, default=MAX_N, help=f"generated and real images each (2..{MAX_N})")
    parser.add_argument("--out", default=None, help="JSON file (default: <ckpt>.eval.json beside the checkpoint)")
    parser.add_argument("--inception-weights", default=None, help="InceptionV3 weights file, for offline use")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--kid-subset-size", type=int, default=None, help="images per KID subset (default 1000 or --n)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise and of the training-image draw")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--data-dir", default=None, help="folder holding MNIST/raw (default $LAB_DATA_DIR or ./data)")
    parser.add_argument("--no-write-back", action="store_true", help="do not add the results to the checkpoint's run")
    return parser


def check_args(args: argparse.Namespace) -> Path:
    """Validates the arguments before any work; returns the JSON output path."""
    if args.backbone not in BACKBONES:
        raise LabError(f"--backbone must be one of {', '.join(BACKBONES)}, got {args.backbone!r}")
    if not 2 <= args.n <= MAX_N:
        raise LabError(f"--n must be between 2 and {MAX_N} (the MNIST test split holds the real images), got {args.n}")
    if args.batch_size <= 0:
        raise LabError(f"--batch-size must be positive, got {args.batch_size}")
    args.kid_subset_size = min(1000, args.n) if args.kid_subset_size is None else args.kid_subset_size
    if not 2 <= args.kid_subset_size <= args.n:
        raise LabError(f"--kid-subset-size must be between 2 and --n ({args.n}), got {args.kid_subset_size}")
    if (args.ckpt is None) == (args.samples is None):
        raise LabError("give either --ckpt (a checkpoint) or --samples (a saved .pt tensor)")
    source = Path(args.ckpt or args.samples)
    if args.ckpt is not None and not source.is_file():
        raise LabError(f"checkpoint {source} does not exist")
    if args.ckpt is not None and args.data is not None:
        raise LabError("--data is for --samples points; a checkpoint knows its data")
    if args.backbone == "inception":
        args.inception_weights = resolve_inception_weights(args.inception_weights)  # fails in one line, never hangs
    return check_output_path(args.out or source.with_suffix(".eval.json"), (".json",))


@torch.no_grad()
def evaluate(
    module: Any,
    backbone: str = "classifier",
    n: int = MAX_N,
    seed: int = 0,
    batch_size: int = 500,
    inception_weights: str | None = None,
    data_dir: str | None = None,
    kid_subset_size: int = 1000,
    images: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Metrics of ``n`` samples of ``module`` (image-generator protocol), or of saved ``images`` (N, 1, 28, 28) in
    [0, 1] (``module`` None, ``n`` = N), beside the real data's (``real_floor``)."""
    if images is not None:
        return _evaluate(images, backbone, len(images), seed, batch_size, inception_weights, data_dir, kid_subset_size)
    if tuple(module.image_shape) != (1, 28, 28):
        raise LabError(f"evaluate needs a 1x28x28 MNIST generator, this checkpoint makes {tuple(module.image_shape)}")
    return _evaluate(module, backbone, n, seed, batch_size, inception_weights, data_dir, kid_subset_size)


def _evaluate(source: Any, backbone: str, n: int, seed: int, batch_size: int, inception_weights: str | None,
              data_dir: str | None, kid_subset_size: int) -> dict[str, Any]:  # fmt: skip
    """``evaluate``'s work: ``source`` a module (its samples from seeded noise) or a tensor of images in [0, 1]."""
    device = source.device
    metrics = ImageMetrics(
        backbone, inception_weights=inception_weights, batch_size=batch_size, kid_subset_size=kid_subset_size
    ).to(device)
    suffix = metrics.suffix
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    floor = score_real(metrics, n, seed, gen, data_dir)  # the noise below follows the training-image draw on gen
    real = mnist_images("test", n, data_dir).to(device).float() / 255  # (n, 1, 28, 28)
    metrics.update(real, real=False)
    real_is = metrics.compute(seed=seed, with_prdc=False)  # precision etc. of a set against itself: trivial
    metrics.reset()
    if isinstance(source, torch.Tensor):
        for batch in source.split(batch_size):
            metrics.update(batch.to(device), real=False)
    else:
        for z in torch.randn(n, source.latent_dim, generator=gen).split(batch_size):
            images = source.sample(len(z), z=z.to(device))  # (B, C, H, W) in data_range
            metrics.update(to_unit_range(images, source.data_range), real=False)
    out = metrics.compute(seed=seed)
    out["classes"] = out.get("classes_covered")
    out.update(
        {
            f"fid{suffix}_floor": floor[f"fid{suffix}"],
            f"kid{suffix}_floor": floor[f"kid{suffix}"],
            f"is{suffix}_real": real_is[f"is{suffix}"],
            f"is{suffix}_real_std": real_is[f"is{suffix}_std"],
            **{f"{key}{suffix}_real": floor[f"{key}{suffix}"] for key in PRDC_KEYS},
            "classes_covered_real": real_is.get("classes_covered"),
            "class_kl_real": real_is.get("class_kl"),
            "backbone": backbone,
            "n": n,
            "seed": seed,
            "seconds": round(time.perf_counter() - start, 2),
        }
    )
    return out


def score_real(
    metrics: ImageMetrics, n: int, seed: int, gen: torch.Generator, data_dir: str | None = None
) -> dict[str, Any]:
    """Loads the first ``n`` test images as ``metrics``' real set and scores ``n`` training images (``floor_draw`` on
    ``gen``, seeded with ``seed``) as if generated: what a generator that reproduced the training data would get.
    ``metrics`` is reset afterwards and keeps the real statistics."""
    device = next(metrics.classifier.parameters()).device
    metrics.update(mnist_images("test", n, data_dir).to(device).float() / 255, real=True)  # (n, 1, 28, 28)
    train, _ = floor_draw(n, data_dir=data_dir, generator=gen)  # disjoint from test
    metrics.update(train.to(device).float() / 255, real=False)
    try:
        return metrics.compute(seed=seed)
    finally:
        metrics.reset()


@torch.no_grad()
def real_floor(
    backbone: str = "classifier", n: int = MAX_N, seed: int = 0, data_dir: str | None = None, **metric_args: Any
) -> dict[str, Any]:
    """The real-data column of ``evaluate`` without a checkpoint: ``n`` training images vs the first ``n`` test images
    (``fid`` of it is the FID floor of docs/evaluation.md); ``metric_args`` go to ``ImageMetrics``."""
    metrics = ImageMetrics(backbone, **metric_args)
    return score_real(metrics, n, seed, torch.Generator().manual_seed(seed), data_dir) | {"n": n, "seed": seed}


def format_table(result: dict[str, Any]) -> str:
    """A small text table: generated vs real for every metric."""
    s = "" if result["backbone"] == "classifier" else "_inception"
    rows = [
        (f"FID{s} (lower is better)", result[f"fid{s}"], result[f"fid{s}_floor"]),
        (f"KID{s} (lower is better)", result[f"kid{s}"], result[f"kid{s}_floor"]),
        (f"IS{s} (higher is better)", result[f"is{s}"], result[f"is{s}_real"]),
        *((f"{key}{s} ({PRDC_KEYS[key]})", result.get(f"{key}{s}"), result.get(f"{key}{s}_real")) for key in PRDC_KEYS),
        ("classes covered (of 10)", result.get("classes_covered"), result.get("classes_covered_real")),
        ("KL(classes || uniform)", result.get("class_kl"), result.get("class_kl_real")),
    ]
    lines = [f"{'metric':<32}{'generated':>12}{'real data':>12}"]
    for name, gen, real in rows:
        lines.append(f"{name:<32}{_fmt(gen):>12}{_fmt(real):>12}")
    lines.append(f"n={result['n']} per set, backbone={result['backbone']}; real data: training vs test images "
                 "(FID/KID: the floor), IS and classes: the test images")  # fmt: skip
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    kind, samples = None, None
    try:
        if args.samples is not None and args.ckpt is None:  # the file is read and checked before anything is written
            from gan_lab.evaluate_samples import load_samples

            kind, samples = load_samples(args.samples, args.data)
            if kind == "mnist" and len(samples) > MAX_N:
                raise LabError(f"{args.samples} holds {len(samples)} images; at most {MAX_N} (the test split's size)")
        out = check_args(args)
        if kind in ("mixture", "stacked_mnist"):
            from gan_lab.evaluate_samples import score_points, score_stacked

            result = (
                score_points(samples, args.data) if kind == "mixture" else score_stacked(samples, device=args.device)
            )
            result["samples"] = str(args.samples)
            out.write_text(json.dumps(result, indent=2) + "\n")
            shown = {k: v for k, v in result.items() if k not in ("counts", "samples")}
            print(", ".join(f"{k} {_fmt(v) if not isinstance(v, str) else v}" for k, v in shown.items()))
            print(f"written {out}")
            return
        module = None
        if args.ckpt is not None:
            from gan_lab.checkpoint import load_module

            module = load_module(args.ckpt, map_location=args.device).to(args.device)
        result = evaluate(module, args.backbone, args.n, args.seed, args.batch_size, args.inception_weights,
                          args.data_dir, args.kid_subset_size,
                          None if samples is None else samples.to(args.device))  # fmt: skip
    except (LabError, FileNotFoundError, ValueError) as err:
        fail(str(err))
    result["ckpt" if args.ckpt else "samples"] = str(args.ckpt or args.samples)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"written {out}")
    if args.ckpt is None:
        return
    version = Path(args.ckpt).resolve().parent.parent  # <root>/<run>/version_N/checkpoints/<file>.ckpt
    if (version / "metrics.csv").is_file() and not args.no_write_back:
        numbers = {f"eval/{k}": v for k, v in result.items() if isinstance(v, int | float) and k not in ("n", "seed")}
        print("added to the run: " + ", ".join(write_back(version, numbers)))


if __name__ == "__main__":
    main()
