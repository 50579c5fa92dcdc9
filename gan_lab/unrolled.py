"""Unrolled GAN (Metz et al. 2017): the generator is trained against the discriminator as it will be after k more steps.

The generator loss is ``-log D_{theta_k}(G(z))`` where ``theta_0`` is a functional copy of the discriminator's current
weights and ``theta_{i+1} = update(theta_i, grad_theta L_D(theta_i; x, G(z)))`` for the same real batch ``x`` and fakes
``G(z)``. With ``second_order: true`` the k updates are kept in the autograd graph (``create_graph=True``), so the
generator's gradient includes how the discriminator would react to its samples (the paper's method); with ``false``
only the final unrolled weights are used (the common first-order shortcut). The real discriminator is untouched by the
unrolling and gets its ordinary update in ``discriminator_step``; ``unroll_steps: 0`` is exactly the vanilla GAN.

Unrolled update rule (``unroll_optimizer``):

- ``adam`` (default, as in the paper): Adam steps that start from the real discriminator optimizer's moments and step
  count and use its ``lr``, ``betas`` and ``eps`` (weight decay is ignored); the denominator is
  ``sqrt(v_hat + eps^2)`` rather than ``sqrt(v_hat) + eps`` so the second-order graph stays finite where ``v_hat = 0``.
- ``sgd``: plain gradient steps ``theta - unroll_lr * grad`` (a common simplification).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.func import functional_call

from gan_lab import losses
from gan_lab.gan import GAN
from lab.errors import one_of

UNROLL_OPTIMIZERS = ("adam", "sgd")


class UnrolledGAN(GAN):
    """GAN whose generator looks ``unroll_steps`` discriminator updates ahead. Extra args (the rest as in GAN):

    Args:
        unroll_steps: k, discriminator updates unrolled inside each generator step (0: the vanilla GAN).
        second_order: back-propagate through the unrolled updates (True, the paper) or not (False, first-order).
        unroll_optimizer: ``adam`` (from the real optimizer's state, the paper's choice) or ``sgd``.
        unroll_lr: learning rate of the unrolled steps (None: the discriminator optimizer's lr).
        *args, **kwargs: as in GAN.
    """

    family = "unrolled"

    def __init__(
        self,
        *args: Any,
        unroll_steps: int = 5,
        second_order: bool = True,
        unroll_optimizer: str = "adam",
        unroll_lr: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if unroll_steps < 0:
            raise ValueError(f"unroll_steps must be >= 0, got {unroll_steps}")
        one_of("unroll_optimizer", unroll_optimizer, UNROLL_OPTIMIZERS)
        if unroll_lr is not None and unroll_lr <= 0:
            raise ValueError(f"unroll_lr must be > 0 (or null), got {unroll_lr}")
        self.unroll_steps, self.second_order = unroll_steps, second_order
        self.unroll_optimizer, self.unroll_lr = unroll_optimizer, unroll_lr

    def generator_step(self, real: Tensor, g_opt: Any, d_opt: Any) -> dict[str, Tensor]:
        """One generator update against D unrolled ``unroll_steps`` times on (``real``, the fakes) from ``d_opt``'s
        state; ``unroll_steps: 0`` is the GAN's step."""
        if self.unroll_steps == 0:
            return super().generator_step(real, g_opt, d_opt)
        with self.toggled_optimizer(g_opt):
            loss = self.unrolled_generator_loss(self.generator(self.sample_noise(real.shape[0])), real, d_opt)
            self._optimize(g_opt, loss)
        self.after_generator_step()
        return {"g_loss": loss.detach()}

    def unrolled_generator_loss(self, fake: Tensor, real: Tensor, d_opt: Any) -> Tensor:
        """The generator's loss against D after ``unroll_steps`` updates on (``real``, ``fake``) from ``d_opt``."""
        params = self.unrolled_parameters(real, fake, d_opt)
        # maximize log D_{theta_k}(G(z)) (non-saturating) or minimize log(1 - D_{theta_k}(G(z)))
        return self.generator_loss_fn(self._functional_discriminate(params, fake))

    def _functional_discriminate(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """D_params(x + instance noise): logits (B,) of the discriminator with ``params`` in place of its weights."""
        sigma = self.instance_noise_sigma() if self.training else 0.0
        if sigma > 0:
            x = x + sigma * torch.randn_like(x)
        return functional_call(self.discriminator, params, (x,))

    def unrolled_parameters(self, real: Tensor, fake: Tensor, d_opt: Any) -> dict[str, Tensor]:
        """theta_k: ``unroll_steps`` updates of a functional copy of D on (real, fake), in the graph of ``fake``,
        from the state (Adam moments, learning rate) of the discriminator's optimizer ``d_opt``.

        The copy is one flat vector (the weights are views of it), so an update is a handful of tensor ops rather
        than a handful per weight, and real and fake are scored in one call when D has no buffers (no batch norm).
        """
        names = [name for name, _ in self.discriminator.named_parameters()]
        live = [p for _, p in self.discriminator.named_parameters()]
        shapes, sizes = [p.shape for p in live], [p.numel() for p in live]
        flat = torch.cat([p.detach().reshape(-1) for p in live]).requires_grad_(True)
        adam = self._adam_state(live, d_opt) if self.unroll_optimizer == "adam" else None
        lr = self.unroll_lr if self.unroll_lr is not None else float(d_opt.param_groups[0]["lr"])
        fakes = fake if self.second_order else fake.detach()
        # one call on real + fake unless D has buffers (batch norm would mix real and fake statistics)
        both = torch.cat([real, fakes]) if next(self.discriminator.buffers(), None) is None else None

        def unflatten(vector: Tensor) -> dict[str, Tensor]:
            chunks = vector.split(sizes)
            return {name: c.view(shape) for name, c, shape in zip(names, chunks, shapes, strict=True)}

        for _ in range(self.unroll_steps):
            params = unflatten(flat)
            if both is not None:
                logits = self._functional_discriminate(params, both)
                real_logits, fake_logits = logits[: real.shape[0]], logits[real.shape[0] :]
            else:
                real_logits = self._functional_discriminate(params, real)
                fake_logits = self._functional_discriminate(params, fakes)
            d_loss = losses.bce_discriminator_loss(real_logits, fake_logits, self.real_label)
            (grad,) = torch.autograd.grad(d_loss, flat, create_graph=self.second_order)
            flat = flat - (self._adam_step(grad, adam, lr) if adam is not None else lr * grad)
            if not self.second_order:
                flat = flat.detach().requires_grad_(True)
        return unflatten(flat)

    @staticmethod
    def _adam_state(live: list[Tensor], d_opt: Any) -> dict[str, Any]:
        """Flat copies of the discriminator optimizer's Adam moments and per-weight step counts (zeros before its
        first step), in the order of ``live``."""
        group = d_opt.param_groups[0]
        inner = getattr(d_opt, "optimizer", d_opt)  # unwrap Lightning's LightningOptimizer
        state = [inner.state.get(p, {}) for p in live]

        def moment(key: str) -> Tensor:
            parts = [
                s[key].detach().reshape(-1) if key in s else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                for s, p in zip(state, live, strict=True)
            ]
            return torch.cat(parts)

        steps = [float(s["step"]) if "step" in s else 0.0 for s in state]
        t = torch.cat(
            [
                torch.full((p.numel(),), step, dtype=live[0].dtype, device=live[0].device)
                for step, p in zip(steps, live, strict=True)
            ]
        )
        return {
            "m": moment("exp_avg"),
            "v": moment("exp_avg_sq"),
            "t": t,
            "betas": tuple(group.get("betas", (0.9, 0.999))),
            "eps": float(group.get("eps", 1e-8)),
        }

    @staticmethod
    def _adam_step(grad: Tensor, adam: dict[str, Any], lr: float) -> Tensor:
        """One Adam step at ``lr`` on the flat weights (updates ``adam`` in place; the moments stay in the graph when
        second order)."""
        beta1, beta2 = adam["betas"]
        adam["t"] = adam["t"] + 1
        adam["m"] = beta1 * adam["m"] + (1 - beta1) * grad
        adam["v"] = beta2 * adam["v"] + (1 - beta2) * grad * grad
        m_hat = adam["m"] / (1 - beta1 ** adam["t"])
        v_hat = adam["v"] / (1 - beta2 ** adam["t"])
        return lr * m_hat / torch.sqrt(v_hat + adam["eps"] ** 2)
