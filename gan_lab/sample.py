"""``python -m gan_lab sample --ckpt PATH --n N --out FILE [--seed S]``: images from a trained GAN or VAE.

``.png`` writes a grid (``make_grid``); ``.pt`` writes a float tensor (N, C, H, W) with values in [0, 1].
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torchvision.utils import save_image

from lab.errors import LabError, check_output_path, fail


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        fail(f"{message} (see python -m gan_lab sample --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gan_lab sample", description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint written by `python -m gan_lab fit`")
    parser.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("--out", required=True, help="output file: .png (grid) or .pt (tensor in [0, 1])")
    parser.add_argument("--seed", type=int, default=0, help="noise seed: same seed, same images (default 0)")
    parser.add_argument("--nrow", type=int, default=None, help="images per grid row (default ~sqrt(n))")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return parser


def sample_images(module, n: int, seed: int) -> torch.Tensor:
    """(n, C, H, W) images in [0, 1] from seeded noise (the same for any device)."""
    z = torch.randn(n, module.latent_dim, generator=torch.Generator().manual_seed(seed))
    return module.to_unit(module.sample(n, z=z)).cpu()


def main(args: list[str]) -> None:
    parser = build_parser()
    ns = parser.parse_args(args)
    try:
        if ns.n < 1:
            raise LabError(f"--n must be >= 1, got {ns.n}")
        if Path(ns.out).suffix not in (".png", ".pt"):
            raise LabError(f"output {ns.out} must end with one of .png, .pt")
        from gan_lab.checkpoint import load_module

        module = load_module(ns.ckpt, map_location=ns.device)  # the inputs first: nothing is created for a bad one
        out = check_output_path(ns.out, (".png", ".pt"))
    except LabError as err:
        fail(str(err))
        return
    images = sample_images(module, ns.n, ns.seed)  # (n, C, H, W) in [0, 1]
    if out.suffix == ".png":
        save_image(images, out, nrow=ns.nrow or math.ceil(math.sqrt(ns.n)), padding=2, pad_value=1.0)
    else:
        torch.save(images, out)
    print(f"wrote {ns.n} samples of shape {tuple(images.shape[1:])} from {ns.ckpt} to {out}")
