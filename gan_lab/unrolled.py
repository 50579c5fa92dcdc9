"""Unrolled GAN (Metz et al. 2017): the generator is trained against the discriminator as it will be after k more steps.

``theta_0`` is a functional copy of the discriminator's weights and ``theta_{i+1} = update(theta_i, grad_theta
L_D(theta_i; x, G(z)))`` for the same real batch ``x`` and fakes ``G(z)``, where ``L_D`` is the discriminator's loss.
With ``second_order: true`` the k updates are kept in the autograd graph (``create_graph=True``), so the generator's
gradient includes how the discriminator would react to its samples (the paper's method); with ``false`` only the final
unrolled weights are used (the common first-order shortcut). The real discriminator is untouched by the unrolling and
gets exactly one ordinary update per iteration in ``discriminator_step``.

The generator's objective (``objective``):

- ``paper`` (default): the value function at the unrolled weights, ``f(theta_G, theta_K) = E_x log D_K(x) +
  E_z log(1 - D_K(G(z)))``, minimised by the generator; it is ``-L_D(theta_K)`` (the official code's loss; with
  ``real_label < 1`` the smoothed real term of ``L_D``). The real term depends on ``theta_G`` through ``theta_K``.
  The unroll starts from the weights and optimizer state that the discriminator's own step of this iteration starts
  from (saved before that step), so the two players update simultaneously as in the paper. ``unroll_steps: 0`` is
  the minimax GAN with simultaneous updates (the generator minimises ``E log(1 - D(G(z)))``).
- ``nonsaturating``: ``-log D_K(G(z))`` (the fake term only, with ``generator_loss_type``'s loss), unrolled from the
  discriminator after this iteration's step; ``unroll_steps: 0`` is exactly the vanilla GAN.

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
from gan_lab.packing import n_packs, pack
from lab.errors import one_of

UNROLL_OPTIMIZERS = ("adam", "sgd")
OBJECTIVES = ("paper", "nonsaturating")


class UnrolledGAN(GAN):
    """GAN whose generator looks ``unroll_steps`` discriminator updates ahead. Extra args (the rest as in GAN):

    Args:
        unroll_steps: k, discriminator updates unrolled inside each generator step.
        second_order: back-propagate through the unrolled updates (True, the paper) or not (False, first-order).
        unroll_optimizer: ``adam`` (from the real optimizer's state, the paper's choice) or ``sgd``.
        unroll_lr: learning rate of the unrolled steps (None: the discriminator optimizer's lr).
        objective: ``paper`` (the value function at theta_K, unrolled from the pre-step discriminator) or
            ``nonsaturating`` (-log D_K(G(z)), unrolled from the post-step discriminator); see the module docstring.
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
        objective: str = "paper",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if unroll_steps < 0:
            raise ValueError(f"unroll_steps must be >= 0, got {unroll_steps}")
        one_of("unroll_optimizer", unroll_optimizer, UNROLL_OPTIMIZERS)
        one_of("objective", objective, OBJECTIVES)
        if unroll_lr is not None and unroll_lr <= 0:
            raise ValueError(f"unroll_lr must be > 0 (or null), got {unroll_lr}")
        self.unroll_steps, self.second_order = unroll_steps, second_order
        self.unroll_optimizer, self.unroll_lr, self.objective = unroll_optimizer, unroll_lr, objective
        self._start: dict[str, Any] | None = None  # the paper objective's unroll start, saved before the critic step

    def discriminator_step(self, real: Tensor, d_opt: Any) -> dict[str, Tensor]:
        """The ordinary critic step; with the paper objective, first saves theta_D and ``d_opt``'s state (the unroll
        of the next generator step starts there, as the critic's own step does)."""
        if self.objective == "paper":
            self._start = self.unroll_start(d_opt)
        return super().discriminator_step(real, d_opt)

    def generator_step(self, real: Tensor, g_opt: Any, d_opt: Any) -> dict[str, Tensor]:
        """One generator update against D unrolled ``unroll_steps`` times on (``real``, the fakes): from the state
        saved before the critic step (paper; the live state if none was saved) or from ``d_opt``'s live state
        (nonsaturating; ``unroll_steps: 0`` is then the GAN's step)."""
        start, self._start = self._start, None
        if self.objective == "nonsaturating" and self.unroll_steps == 0:
            return super().generator_step(real, g_opt, d_opt)
        with self.toggled_optimizer(g_opt):
            fake = self.generator(self.sample_noise(real.shape[0]))
            loss = self.unrolled_generator_loss(fake, real, d_opt, start)
            self._optimize(g_opt, loss)
        self.after_generator_step()
        return {"g_loss": loss.detach()}

    def unrolled_generator_loss(
        self, fake: Tensor, real: Tensor, d_opt: Any, start: dict[str, Any] | None = None
    ) -> Tensor:
        """The generator's loss against D after ``unroll_steps`` updates on (``real``, ``fake``) from ``start``
        (``unroll_start``; None: from ``d_opt``'s current state). In float32 with autocast off (under mixed precision
        the k second-order updates would compound half-precision rounding), so the unroll is the same in every
        precision."""
        with torch.autocast(real.device.type, enabled=False):
            return self._unrolled_generator_loss(fake.float(), real.float(), d_opt, start)

    def _unrolled_generator_loss(
        self, fake: Tensor, real: Tensor, d_opt: Any, start: dict[str, Any] | None = None
    ) -> Tensor:
        params = self.unrolled_parameters(real, fake, d_opt, start)
        if self.objective == "nonsaturating":
            # maximize log D_{theta_k}(G(z)) (non-saturating) or minimize log(1 - D_{theta_k}(G(z)))
            return self.generator_loss_fn(self._functional_discriminate(params, fake))
        # minimize E log D_{theta_k}(x) + E log(1 - D_{theta_k}(G(z))) = -L_D(theta_k)
        real_logits, fake_logits = self._score(params, real, fake)
        return -losses.bce_discriminator_loss(real_logits, fake_logits, self.real_label)

    def _functional_discriminate(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """D_params(pack(x + instance noise)): logits (B / packing,) of the discriminator with ``params`` in place of
        its weights."""
        sigma = self.instance_noise_sigma() if self.training else 0.0
        if sigma > 0:
            x = x + sigma * torch.randn_like(x)
        return functional_call(self.discriminator, params, (pack(x, self.packing),))

    def _score(
        self, params: dict[str, Tensor], real: Tensor, fake: Tensor, both: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """(real logits, fake logits) at ``params``: one call on real + fake (``both``, their concatenation, when
        given) unless D has buffers (batch norm would mix real and fake statistics)."""
        if next(self.discriminator.buffers(), None) is not None:
            return self._functional_discriminate(params, real), self._functional_discriminate(params, fake)
        logits = self._functional_discriminate(params, both if both is not None else torch.cat([real, fake]))
        n = n_packs(real.shape[0], self.packing)  # real packs first: none mixes real and fake samples
        return logits[:n], logits[n:]

    def unroll_start(self, d_opt: Any) -> dict[str, Any]:
        """Copies of what the unroll starts from: D's weights as one flat vector, ``d_opt``'s Adam state (``adam``
        unrolling) and the unrolled learning rate."""
        live = list(self.discriminator.parameters())
        return {
            "flat": torch.cat([p.detach().reshape(-1) for p in live]),
            "adam": self._adam_state(live, d_opt) if self.unroll_optimizer == "adam" else None,
            "lr": self.unroll_lr if self.unroll_lr is not None else float(d_opt.param_groups[0]["lr"]),
        }

    def unrolled_parameters(
        self, real: Tensor, fake: Tensor, d_opt: Any, start: dict[str, Any] | None = None
    ) -> dict[str, Tensor]:
        """theta_k: ``unroll_steps`` updates of a functional copy of D on (real, fake), in the graph of ``fake``,
        from ``start`` (``unroll_start``; None: the current weights and state of the discriminator's ``d_opt``).

        The copy is one flat vector (the weights are views of it), so an update is a handful of tensor ops rather
        than a handful per weight, and real and fake are scored in one call when D has no buffers (no batch norm).
        """
        start = start if start is not None else self.unroll_start(d_opt)
        named = list(self.discriminator.named_parameters())
        names, shapes, sizes = [n for n, _ in named], [p.shape for _, p in named], [p.numel() for _, p in named]
        flat = start["flat"].clone().requires_grad_(True)
        adam = dict(start["adam"]) if start["adam"] is not None else None
        fakes = fake if self.second_order else fake.detach()
        both = torch.cat([real, fakes])  # concatenated once: one gradient accumulation into the fakes

        def unflatten(vector: Tensor) -> dict[str, Tensor]:
            chunks = vector.split(sizes)
            return {name: c.view(shape) for name, c, shape in zip(names, chunks, shapes, strict=True)}

        for _ in range(self.unroll_steps):
            real_logits, fake_logits = self._score(unflatten(flat), real, fakes, both)
            d_loss = losses.bce_discriminator_loss(real_logits, fake_logits, self.real_label)
            (grad,) = torch.autograd.grad(d_loss, flat, create_graph=self.second_order)
            flat = flat - (self._adam_step(grad, adam, start["lr"]) if adam is not None else start["lr"] * grad)
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
