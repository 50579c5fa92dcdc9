"""WGAN-GP training speed: our GANModule under Lightning vs a plain PyTorch loop, side by side in one process.

Both use the configs/gan/wgan.yaml nets, the same losses (gan_lab.losses), batch size, optimisers and n_critic, and
the same MNIST batches served from memory by datamodules.mnist. Runs alternate (plain, ours, plain, ours, ...) so
that background load hits both alike; the best (least disturbed) run of each is compared, medians shown too.
Prints batches/s and the ours/plain time ratio.

    python bench/gan_throughput.py [--batches 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from pytorch_lightning import Callback, Trainer

from datamodules.mnist import MNISTDataModule
from gan_lab import losses
from gan_lab.nets.mlp import MLPDiscriminator, MLPGenerator
from gan_lab.wgan import WGANGP

ADAM = {"lr": 1e-4, "betas": (0.0, 0.9)}


def nets(seed: int) -> tuple[MLPGenerator, MLPDiscriminator]:
    torch.manual_seed(seed)
    return MLPGenerator(100, (256, 512, 1024)), MLPDiscriminator((512, 256))


def plain_loop(data: MNISTDataModule, batches: int, n_critic: int = 5, gp_weight: float = 10.0) -> float:
    """Seconds for ``batches`` batches of the textbook loop: one critic step per batch, G every n_critic-th."""
    generator, critic = nets(0)
    g_opt, d_opt = torch.optim.Adam(generator.parameters(), **ADAM), torch.optim.Adam(critic.parameters(), **ADAM)
    start = time.perf_counter()
    for i, (real, _) in enumerate(data.train_dataloader()):
        if i == batches:
            break
        with torch.no_grad():
            fake = generator(torch.randn(real.shape[0], 100))
        real_scores, fake_scores = critic(real), critic(fake)
        penalty = losses.gradient_penalty(critic, real, fake)
        d_loss = losses.wasserstein_critic_loss(real_scores, fake_scores) + gp_weight * penalty
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        if (i + 1) % n_critic == 0:
            for p in critic.parameters():
                p.requires_grad_(False)
            g_loss = losses.wasserstein_generator_loss(critic(generator(torch.randn(real.shape[0], 100))))
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
            for p in critic.parameters():
                p.requires_grad_(True)
        _ = (d_loss.item(), real_scores.mean().item(), fake_scores.mean().item())  # what a logger would read
    return time.perf_counter() - start


def ours(data: MNISTDataModule, batches: int) -> float:
    """Seconds for ``batches`` batches of WGANGP.fit's training loop (logging on, checkpoints/progress bar off)."""
    generator, critic = nets(0)
    module = WGANGP(
        generator,
        critic,
        generator_optimizer=lambda p: torch.optim.Adam(p, **ADAM),
        discriminator_optimizer=lambda p: torch.optim.Adam(p, **ADAM),
        sample_every_n_epochs=0,
        metrics_every_n_epochs=0,  # the plain loop computes no FID/IS/coverage either
    )
    trainer = Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=batches, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=20,
    )  # fmt: skip
    clock = TrainClock()
    trainer.callbacks.append(clock)
    trainer.fit(module, datamodule=data)
    return clock.seconds


class TrainClock(Callback):
    """Times the training loop itself (on_train_start -> on_train_end), not the Trainer's one-off setup."""

    def on_train_start(self, trainer: Trainer, pl_module: object) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer: Trainer, pl_module: object) -> None:
        self.seconds = time.perf_counter() - self.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    data = MNISTDataModule(batch_size=64, val_size=0)
    data.setup()
    ours(data, 10), plain_loop(data, 10)  # warm-up
    plain_times, our_times = [], []
    for _ in range(args.repeats):
        plain_times.append(plain_loop(data, args.batches))
        our_times.append(ours(data, args.batches))
    plain, mine = min(plain_times), min(our_times)
    threads = torch.get_num_threads()
    print(f"WGAN-GP MLP, batch 64, n_critic 5, {args.batches} batches x {args.repeats} runs, {threads} threads")
    for name, median, times in (("plain PyTorch loop", plain, plain_times), ("GANModule+Trainer", mine, our_times)):
        runs = ", ".join(f"{t:.2f}s" for t in times)
        print(f"{name:18s}: {args.batches / median:7.1f} batches/s best run  (runs: {runs})")
    median_ratio = statistics.median(our_times) / statistics.median(plain_times)
    print(
        f"time ratio ours/plain = {mine / plain:.3f} best-of-{args.repeats} (goal <= 1.05); medians: {median_ratio:.3f}"
    )


if __name__ == "__main__":
    main()
