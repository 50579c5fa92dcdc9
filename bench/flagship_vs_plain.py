"""The flagship against a plain MLP WGAN-GP loop with PyTorch-GAN's ``wgan_gp.py`` settings, at equal training time.

Side by side: two processes start together, one torch thread each, and train for the same ``--seconds``:

- **ours**: ``python -m gan_lab fit --config configs/base.yaml --config configs/gan/wgan.yaml`` (``make train-wgan``'s
  recipe), stopped by ``--trainer.max_time``, metrics and images off;
- **plain**: a hand-written loop with PyTorch-GAN's MLP WGAN-GP settings (written from its README and defaults, no
  code taken): G 100 -> 128 -> 256 -> 512 -> 1024 -> 784 (LeakyReLU 0.2, batch norm eps 0.8 after all but the first
  block, tanh), critic 784 -> 512 -> 256 -> 1 (LeakyReLU 0.2), batch 64, n_critic 5, lambda 10, both Adam lr 2e-4,
  betas (0.5, 0.999), MNIST in [-1, 1].

Then both generators are scored the same way (``gan_lab.evaluate``: the suite's IS, FID, KID and class coverage on
10,000 samples) and the IS ratio is printed.

    python bench/flagship_vs_plain.py [--seconds 150]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]


class PlainGenerator(nn.Module):
    def __init__(self, latent_dim: int = 100) -> None:
        super().__init__()
        self.latent_dim, self.image_shape, self.output_activation = latent_dim, (1, 28, 28), "tanh"
        layers: list[nn.Module] = []
        widths = [latent_dim, 128, 256, 512, 1024]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers += [nn.Linear(a, b)] + ([nn.BatchNorm1d(b, 0.8)] if i > 0 else []) + [nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(1024, 784), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 28, 28)


def plain_critic() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256),
                         nn.LeakyReLU(0.2), nn.Linear(256, 1))  # fmt: skip


def train_plain(seconds: float, out: Path, seed: int = 0) -> dict:
    """The plain loop for ``seconds`` of training; saves the generator to ``out``."""
    from datamodules.mnist import mnist_images

    torch.manual_seed(seed)
    data = mnist_images("train", 60000).float().div(127.5).sub(1)  # (60000, 1, 28, 28) in [-1, 1]
    g, d = PlainGenerator(), plain_critic()
    g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    batches, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for idx in torch.randperm(len(data)).split(64):
            real = data[idx]
            fake = g(torch.randn(len(real), 100)).detach()
            alpha = torch.rand(len(real), 1, 1, 1)
            x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
            penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
            d_loss = d(fake).mean() - d(real).mean() + 10 * penalty
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            batches += 1
            if batches % 5 == 0:
                g_loss = -d(g(torch.randn(len(real), 100))).mean()
                g_opt.zero_grad()
                g_loss.backward()
                g_opt.step()
            if time.perf_counter() - start >= seconds:
                break
    torch.save(g.state_dict(), out)
    return {"batches": batches, "seconds": round(time.perf_counter() - start, 1)}


class Sampler(nn.Module):
    """The plain generator behind the protocol ``gan_lab.evaluate`` reads (sample, latent_dim, data_range...)."""

    def __init__(self, g: PlainGenerator) -> None:
        super().__init__()
        self.g, self.latent_dim, self.image_shape, self.data_range = g.eval(), 100, (1, 28, 28), (-1.0, 1.0)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @torch.no_grad()
    def sample(self, n: int, z: torch.Tensor) -> torch.Tensor:
        return self.g(z)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--child", choices=("plain",), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "plain":
        print(json.dumps(train_plain(args.seconds, args.out)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    with tempfile.TemporaryDirectory() as tmp:
        m, s = divmod(int(args.seconds), 60)
        ours = subprocess.Popen(
            [sys.executable, "-m", "gan_lab", "fit", "--config", "configs/base.yaml", "--config",
             "configs/gan/wgan.yaml", "--trainer.max_epochs=1000", f"--trainer.max_time=00:00:{m:02d}:{s:02d}",
             "--model.init_args.metrics_every_n_epochs=0", "--model.init_args.sample_every_n_epochs=0",
             "--trainer.enable_progress_bar=false", f"--run.root={tmp}", "--run.name=ours", "--run.wandb=false"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        plain = subprocess.run(
            [sys.executable, __file__, "--child", "plain", "--seconds", str(args.seconds), "--out", f"{tmp}/plain.pt"],
            cwd=REPO, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        _, err = ours.communicate()
        if ours.returncode:
            sys.exit(f"error: our run failed: {err.strip().splitlines()[-1]}")
        from gan_lab.evaluate import evaluate
        from gan_lab.module import GANModule
        from lab.checkpoint import load_module

        torch.set_num_threads(2)
        ckpt = next(Path(tmp, "ours").glob("version_*/checkpoints/last.ckpt"))
        module = load_module(ckpt, GANModule, "a GAN")
        g = PlainGenerator()
        g.load_state_dict(torch.load(f"{tmp}/plain.pt", weights_only=True))
        results = {"ours": evaluate(module), "plain (PyTorch-GAN settings)": evaluate(Sampler(g))}
        stats = json.loads(plain.stdout.strip().splitlines()[-1])
    print(f"equal training time: {args.seconds:.0f} s each, side by side, one thread each; 10,000 samples each")
    print(f"{'':30}{'IS':>7}{'FID':>9}{'KID':>9}{'classes':>9}{'class-KL':>10}")
    for name, r in results.items():
        print(
            f"{name:30}{r['is']:7.2f}{r['fid']:9.2f}{r['kid']:9.3f}{int(r['classes_covered']):9d}{r['class_kl']:10.3f}"
        )
    print(f"plain loop: {stats['batches']} critic batches in {stats['seconds']} s")
    ratio = results["ours"]["is"] / results["plain (PyTorch-GAN settings)"]["is"]
    print(f"IS ours / plain: {ratio:.2f}x (real test digits: {results['ours']['is_real']:.2f})")


if __name__ == "__main__":
    main()
