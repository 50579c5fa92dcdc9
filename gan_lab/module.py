"""GANModule: the one manual-optimization loop shared by every adversarial family.

The image-generator protocol (``lab.protocol.ImageGenerator``) is implemented by ``gan_lab.generator``.

The loop (``training_step``; one training batch = one critic step; a loader item may hold a stack of k batches
``(k, B, ...)``, e.g. ``GaussianMixtureDataModule(batches_per_item=k)``, and then takes k critic steps, exactly as k
items of one batch would: same data, same noise, same schedule, same weights; only Lightning's per-batch work is paid
once per item):

1. ``discriminator_step(real, d_opt)``: fake = G(z) without grad; ``discriminator_loss(real, fake)``; toggle/
   zero_grad/manual_backward/[clip]/step; then ``after_discriminator_step()`` (WGAN's weight clipping lives there).
2. every ``n_critic``-th batch, ``generator_step(real, g_opt, d_opt)``: ``generator_loss(G(z), real)``; toggle/
   zero_grad/manual_backward/[clip]/step; then ``after_generator_step()``.

So each critic iteration sees a fresh real batch, as in the WGAN papers' Algorithm 1, and the generator takes one step
per ``n_critic`` batches (an epoch of N batches makes N critic and N // n_critic generator steps). The phase comes
from ``critic_steps`` (critic steps taken so far), which is saved in checkpoints, so a resumed run continues exactly.

Hooks a family overrides (everything else is shared):

- ``discriminator_loss(real, fake) -> (loss, metrics)`` and ``generator_loss(fake, real) -> (loss, metrics)`` (``real``:
  the batch of the critic step just taken, for objectives that score it too): metrics is a
  dict of detached scalars logged as ``train/<name>`` (``d_loss``/``g_loss`` are added by the loop; families add
  ``d_real``, ``d_fake``, ``wasserstein``, ``gp``...). Use ``self.discriminate(x)`` (adds instance noise and packs
  ``packing`` samples per discriminator input, PacGAN) to score.
- ``after_discriminator_step()`` / ``after_generator_step()``: no-ops by default.
- ``generator_step`` / ``discriminator_step`` as a whole, for families that need more (unrolling): the optimizers are
  arguments, never fetched from the trainer, so a step can be called and tested on its own.

``configure_optimizers`` returns (generator optimizer, discriminator optimizer), in that order, always. Networks are
separate submodules ``generator`` and ``discriminator`` (plain nn.Modules injected by ``class_path``), so DDP can wrap
the module without routing every parameter through one forward.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from typing import Any

import torch
from pytorch_lightning import LightningModule
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from gan_lab.generator import ImageGeneratorMixin, check_metrics_args, check_value_range
from gan_lab.packing import check_packing, pack
from gan_lab.steps import direct_steps, partial_ema, toggled
from lab.errors import check_optimizer, one_of


class GANModule(ImageGeneratorMixin, LightningModule):
    """The shared adversarial training loop (see the module docstring for the protocol and the hooks).

    Args:
        generator: z (B, latent_dim) -> images (B, C, H, W); must have ``latent_dim``, ``image_shape`` and
            ``output_activation`` attributes (all nets in ``gan_lab.nets`` do). ``latent_dim`` is read from it.
        discriminator: images (B, C, H, W) -> logits/scores (B,).
        generator_optimizer: callable params -> optimizer (default: the family's, e.g. Adam 2e-4, betas (0.5, 0.999)).
        discriminator_optimizer: callable params -> optimizer (default: the family's).
        n_critic: discriminator steps (each on a fresh real batch) per generator step.
        value_range: the data scaling, linked from ``data.init_args.value_range`` by the CLI; must match the
            generator's output activation (None: take it from the generator).
        instance_noise: sigma of Gaussian noise added to every discriminator input at the start (0: off).
        instance_noise_steps: critic steps over which sigma is annealed linearly to 0.
        gradient_clip_val: clip the global gradient norm of both networks to this value (None: no clipping).
        sample_every_n_epochs: cadence of the sample-grid and interpolation images (0: none).
        metrics_every_n_epochs: cadence of FID, IS and class coverage on MNIST-shaped images (0: none).
        metrics_samples: generated images per metric evaluation (10,000: the usual FID sample size).
        lr_schedule: ``constant`` (default) or ``linear``: both learning rates stay at their initial value for the
            first ``lr_decay_start`` fraction of the run's training batches (``trainer.max_epochs``), then fall
            linearly to 0 at the last batch; stepped once per critic step through
            ``torch.optim.lr_scheduler.LambdaLR`` (its state is in checkpoints, so a resumed run continues the decay).
            Lets a generator settle on sharp modes instead of jittering around them at the end of a budget.
        lr_decay_start: fraction of the run (0 <= f < 1) before the linear decay starts.
        family: the name in run names, W&B groups and tables (default: the class's, e.g. ``gan``); a config that
            only swaps the nets (DCGAN) names itself here instead of needing a class.
        packing: m, samples per discriminator input (PacGAN, ``gan_lab.packing``; 1: none): the discriminator scores
            m real or m fake samples concatenated along the channel/feature axis, so it must take m times the
            channels (checked here) and the batch size must be divisible by m (checked against the datamodule).
        ema_decay: keep an exponential moving average of the generator's weights (and batch-norm statistics) with
            this decay per generator step (e.g. 0.999, warmed up as ``gan_lab.steps.partial_ema`` says; 0: off) in
            ``generator_ema`` (``torch.optim.swa_utils.AveragedModel``); samples, grids and metrics then come from the
            average, training from the live weights. Averaging removes the step-to-step jitter of adversarial
            training (Yazici et al. 2019).
    """

    family = "gan"
    default_optimizer: Any = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        generator_optimizer: OptimizerCallable | None = None,
        discriminator_optimizer: OptimizerCallable | None = None,
        n_critic: int = 1,
        value_range: str | None = None,
        instance_noise: float = 0.0,
        instance_noise_steps: int = 10000,
        gradient_clip_val: float | None = None,
        sample_every_n_epochs: int = 1,
        metrics_every_n_epochs: int = 1,
        metrics_samples: int = 10000,
        lr_schedule: str = "constant",
        lr_decay_start: float = 0.0,
        family: str | None = None,
        packing: int = 1,
        ema_decay: float = 0.0,
    ) -> None:
        super().__init__()
        for name in ("latent_dim", "image_shape", "output_activation"):
            if not hasattr(generator, name):
                raise ValueError(f"the generator {type(generator).__name__} needs a `{name}` attribute")
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if instance_noise < 0 or instance_noise_steps < 1:
            raise ValueError("instance_noise must be >= 0 and instance_noise_steps >= 1")
        one_of("lr_schedule", lr_schedule, ("constant", "linear"))
        if not 0.0 <= lr_decay_start < 1.0:
            raise ValueError(f"lr_decay_start must be in [0, 1), got {lr_decay_start}")
        if gradient_clip_val is not None and gradient_clip_val <= 0:
            raise ValueError(f"gradient_clip_val must be > 0 (or null), got {gradient_clip_val}")
        with warnings.catch_warnings():
            # Nets are hyperparameters on purpose: under LabCLI the saved value is their class_path + init_args
            # config, which load_from_checkpoint re-instantiates; built in Python, they are pickled whole.
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        self.family = family or type(self).family
        self.packing = check_packing(packing, discriminator, generator.image_shape)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim: int = generator.latent_dim
        self.image_shape = tuple(generator.image_shape)
        self.value_range = check_value_range(value_range, generator.output_activation)
        self.generator_optimizer = generator_optimizer or self.default_optimizer
        self.discriminator_optimizer = discriminator_optimizer or self.default_optimizer
        check_optimizer(self.generator_optimizer, "generator_optimizer")
        check_optimizer(self.discriminator_optimizer, "discriminator_optimizer")
        self.n_critic = n_critic
        self.instance_noise = instance_noise
        self.instance_noise_steps = instance_noise_steps
        self.gradient_clip_val = gradient_clip_val
        self.lr_schedule, self.lr_decay_start = lr_schedule, lr_decay_start
        self.sample_every_n_epochs = sample_every_n_epochs
        self.metrics_every_n_epochs, self.metrics_samples = check_metrics_args(metrics_every_n_epochs, metrics_samples)
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.ema_decay = ema_decay
        self.generator_ema = (
            AveragedModel(generator, multi_avg_fn=partial_ema(ema_decay), use_buffers=True).requires_grad_(False)
            if ema_decay > 0
            else None  # an average of weights, never trained by a gradient
        )
        self.critic_steps = 0  # critic steps taken so far; the n_critic phase is derived from it (saved in checkpoints)
        self.automatic_optimization = False

    # ---- protocol -------------------------------------------------------------------------------------------------
    def generate(self, z: Tensor) -> Tensor:
        """G(z): (B, latent_dim) -> (B, C, H, W) in ``data_range``; in eval mode from the weight average when
        ``ema_decay`` > 0."""
        if self.generator_ema is not None and not self.training:
            return self.generator_ema.module(z)
        return self.generator(z)

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def instance_noise_sigma(self) -> float:
        """The current instance-noise sigma: linear decay from ``instance_noise`` to 0 over the first steps."""
        if self.instance_noise == 0:
            return 0.0
        return self.instance_noise * max(0.0, 1.0 - self.critic_steps / self.instance_noise_steps)

    def discriminate(self, images: Tensor, packed: bool = False) -> Tensor:
        """D(pack(x + noise)): logits/scores (B / packing,), with instance noise while training; ``packed``: the
        images are packs already (B / packing, packing C, ...)."""
        sigma = self.instance_noise_sigma() if self.training else 0.0
        if sigma > 0:
            images = images + sigma * torch.randn_like(images)
        return self.discriminator(images if packed else pack(images, self.packing))

    def check_datamodule(self, datamodule: Any) -> None:
        """Remembers the datamodule (``ImageGeneratorMixin.check_datamodule``) and refuses one whose ``batch_size`` is
        not divisible by ``packing`` (the CLI calls this before anything is written)."""
        super().check_datamodule(datamodule)
        batch_size = getattr(datamodule, "batch_size", None)
        if isinstance(batch_size, int) and batch_size % self.packing:
            raise ValueError(f"batch_size {batch_size} is not divisible by the packing degree {self.packing}")

    # ---- hooks for families ---------------------------------------------------------------------------------------
    def discriminator_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The discriminator/critic loss to minimise and the metrics to log (without the ``train/`` prefix)."""
        raise NotImplementedError(f"{type(self).__name__} must define discriminator_loss")

    def generator_loss(self, fake: Tensor, real: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The generator loss to minimise on ``fake = G(z)`` (``real``: the last critic batch) and the metrics."""
        raise NotImplementedError(f"{type(self).__name__} must define generator_loss")

    def after_discriminator_step(self) -> None:
        """Runs after every discriminator optimizer step (WGAN clips the critic's weights here)."""

    def after_generator_step(self) -> None:
        """Runs after every generator optimizer step."""

    # ---- the loop -------------------------------------------------------------------------------------------------
    def toggled_optimizer(self, optimizer: Any) -> contextlib.AbstractContextManager[None]:
        """Lightning's ``toggled_optimizer`` in half the time (``gan_lab.steps.toggled``): once per generator step."""
        return toggled(self, optimizer)

    def _optimize(self, optimizer: Any, loss: Tensor) -> None:
        direct = getattr(self, "_direct", None)  # gan_lab.steps: the same step minus Lightning's routing, where exact
        optimizer.zero_grad(set_to_none=True)
        direct.backward(loss) if direct else self.manual_backward(loss)
        if self.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm")
        direct.step(optimizer) if direct else optimizer.step()

    def discriminator_step(self, real: Tensor, d_opt: Any) -> dict[str, Tensor]:
        """One critic update with ``d_opt`` on a real batch and a fresh fake batch; returns the metrics to log.

        No optimizer toggling here: the fakes are drawn without a graph, so no gradient reaches the generator.
        """
        with torch.no_grad():
            fake = self.generator(self.sample_noise(real.shape[0]))
        loss, metrics = self.discriminator_loss(real, fake)
        self._optimize(d_opt, loss)
        self.critic_steps += 1
        self.after_discriminator_step()
        return {"d_loss": loss.detach(), **metrics}

    def generator_step(self, real: Tensor, g_opt: Any, d_opt: Any) -> dict[str, Tensor]:
        """One generator update with ``g_opt`` on a fresh noise batch of ``real``'s size; returns the metrics to log.

        ``d_opt`` is the discriminator's optimizer, for families whose generator objective reads its state.
        """
        with self.toggled_optimizer(g_opt):
            loss, metrics = self.generator_loss(self.generator(self.sample_noise(real.shape[0])), real)
            self._optimize(g_opt, loss)
        self.after_generator_step()
        return {"g_loss": loss.detach(), **metrics}

    def training_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> None:
        item = batch[0] if isinstance(batch, (tuple, list)) else batch  # (B, C, H, W), or a stack (k, B, C, H, W)
        g_opt, d_opt = self.optimizers()
        schedulers = self._schedulers()
        stacked = item.dim() == len(self.image_shape) + 2  # k batches in one loader item: one critic step each
        metrics: dict[str, Tensor] = {}
        for real in item.unbind(0) if stacked else (item,):
            if stacked and 0 <= self.trainer.max_steps <= self.trainer.global_step:
                break  # a step budget ends inside a stack exactly where it would end with one batch per item
            metrics = self.discriminator_step(real, d_opt)
            if self.critic_steps % self.n_critic == 0:
                self._generator_metrics = self.generator_step(real, g_opt, d_opt)
                if self.generator_ema is not None:
                    self.generator_ema.update_parameters(self.generator)
            for scheduler in schedulers:
                scheduler.step()
        if self._should_log():
            # the latest generator metrics are logged with every critic step that is logged
            metrics.update(getattr(self, "_generator_metrics", {}))
            self.log_dict({f"train/{k}": v for k, v in metrics.items()}, batch_size=real.shape[0])

    def _should_log(self) -> bool:
        """True on the batches whose step values Lightning writes (every ``log_every_n_steps``).

        ``self.log`` costs about as much as a small critic step on CPU; values logged on other batches would be
        dropped anyway, so skipping them keeps the loop within a few percent of a plain PyTorch loop.
        """
        connector = getattr(self.trainer, "_logger_connector", None)
        return connector is None or bool(connector.should_update_logs)

    def _schedulers(self) -> list[Any]:
        if self.lr_schedule == "constant":
            return []
        schedulers = self.lr_schedulers()
        return list(schedulers) if isinstance(schedulers, list) else [schedulers]

    def configure_optimizers(self) -> Any:
        """(generator optimizer, discriminator optimizer), in that order; with ``lr_schedule: linear`` also their two
        LambdaLR schedulers (``([g_opt, d_opt], [g_sched, d_sched])``)."""
        optimizers = [
            self.generator_optimizer(self.generator.parameters()),
            self.discriminator_optimizer(self.discriminator.parameters()),
        ]
        if self.lr_schedule == "constant":
            return tuple(optimizers)
        total = self.trainer.estimated_stepping_batches  # training batches of the run (or max_steps, when fewer)
        trainer, per_item = self.trainer, getattr(self.trainer.datamodule, "batches_per_item", 1)
        if per_item > 1 and trainer.max_epochs not in (None, -1):  # loader items are stacks of k batches: count those
            budget = trainer.max_steps if trainer.max_steps >= 0 else math.inf
            total = min(trainer.num_training_batches * per_item * max(trainer.max_epochs, 1), budget)
        if not math.isfinite(total) or total < 1:
            raise ValueError("lr_schedule 'linear' needs a finite run: set trainer.max_epochs")
        start = self.lr_decay_start * total

        def linear(batches_done: int) -> float:
            return min(1.0, max(0.0, (total - batches_done) / (total - start)))

        return optimizers, [torch.optim.lr_scheduler.LambdaLR(opt, linear) for opt in optimizers]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Nothing per batch: ``validate`` / ``test`` compute FID, KID, IS and coverage against the held-out split in
        ``GenerativeMetrics`` at the end of the loop."""

    test_step = validation_step

    def on_fit_start(self) -> None:
        # A fit computes its val/ metrics in callbacks after each training epoch; a loop over the validation batches
        # would only iterate, and would move checkpointing ahead of those metrics.
        self.trainer.limit_val_batches = 0
        self._direct = direct_steps(self)

    def on_fit_end(self) -> None:
        self._direct = None

    def on_train_epoch_end(self) -> None:
        # the budget every family table states: generator steps (critic steps // n_critic), beside time/train_s
        self.log("progress/generator_steps", float(self.critic_steps // self.n_critic), rank_zero_only=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_critic_steps"] = self.critic_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.critic_steps = int(checkpoint.get("gan_critic_steps", 0))
