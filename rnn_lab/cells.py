"""Recurrent cells: hand-written RNN, LSTM and GRU, and a factory that also offers torch's own.

Every cell here has torch's interface and parameter layout (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``,
gates stacked in torch's order), so weights copy across and the tests compare against nn.RNN/nn.LSTM/nn.GRU:

- ``forward(x, state=None) -> (outputs, state)`` with ``x`` of shape (B, T, I) (batch first), ``outputs`` (B, T, H),
  ``state`` = ``h`` (1, B, H) for RNN and GRU, ``(h, c)`` for LSTM.

Speed: the input projection of all time steps is one matmul; each step does one fused matmul for all gates. The LSTM
runs inside a custom ``autograd.Function`` whose hand-written backward takes the weight gradients over all time steps
in one matmul each (see bench/rnn_cells.py for the measured ratios against nn.LSTM).

For gradient probes, ``lstm_unrolled`` recomputes an LSTM step by step in plain autograd ops from the weights of
either implementation (``recurrent_weights``), with c_t a node under h_t.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnn_lab.inits import NONLINEARITIES, check_recurrent_init, chrono_bias_, init_recurrent_

CELLS = ("rnn", "lstm", "gru")
IMPLEMENTATIONS = ("manual", "torch")


class _Recurrent(nn.Module):
    """Parameters in torch's single-layer layout, initialised as torch does: U(-1/sqrt(H), 1/sqrt(H)).

    ``recurrent_init`` then re-initialises ``weight_hh`` (see init_recurrent_); input weights and biases stay.
    """

    def __init__(self, input_size: int, hidden_size: int, gates: int, recurrent_init: str = "default") -> None:
        super().__init__()
        check_recurrent_init(recurrent_init)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gates * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(gates * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(gates * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)
        init_recurrent_(self.weight_hh, recurrent_init)

    def _initial_h(self, x: Tensor, state: Tensor | None) -> Tensor:
        if state is not None:
            return state[0]  # (B, H)
        return torch.zeros(x.shape[0], self.hidden_size, device=x.device, dtype=x.dtype)

    def _input_projection(self, x: Tensor) -> Tensor:
        """x W_ih^T + b_ih for every step in one matmul, time first for contiguous per-step slices."""
        return torch.addmm(self.bias_ih, x.transpose(0, 1).reshape(-1, self.input_size), self.weight_ih.t()).view(
            x.shape[1], x.shape[0], -1
        )  # (T, B, G*H)


class VanillaRNN(_Recurrent):
    """h_t = tanh(W_hx x_t + b_ih + W_hh h_{t-1} + b_hh) (or ReLU: ``nonlinearity="relu"``)."""

    def __init__(self, input_size: int, hidden_size: int, recurrent_init: str = "default",
                 nonlinearity: str = "tanh") -> None:  # fmt: skip
        super().__init__(input_size, hidden_size, gates=1, recurrent_init=recurrent_init)
        self.activation = torch.relu if nonlinearity == "relu" else torch.tanh

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self._initial_h(x, state)  # (B, H)
        projected = self._input_projection(x) + self.bias_hh  # (T, B, H)
        outputs = []
        for x_t in projected:
            h = self.activation(torch.addmm(x_t, h, self.weight_hh.t()))
            outputs.append(h)
        return torch.stack(outputs, dim=1), h.unsqueeze(0)  # (B, T, H), (1, B, H)


class GRU(_Recurrent):
    """r, z = σ(W_i{r,z} x + W_h{r,z} h + b); n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); h' = (1-z) ⊙ n + z ⊙ h."""

    def __init__(self, input_size: int, hidden_size: int, recurrent_init: str = "default") -> None:
        super().__init__(input_size, hidden_size, gates=3, recurrent_init=recurrent_init)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self._initial_h(x, state)  # (B, H)
        hidden = self.hidden_size
        outputs = []
        for x_t in self._input_projection(x):  # x_t: (B, 3H)
            h_part = torch.addmm(self.bias_hh, h, self.weight_hh.t())  # (B, 3H), one matmul for all gates
            rz = (x_t[:, : 2 * hidden] + h_part[:, : 2 * hidden]).sigmoid()
            r, z = rz[:, :hidden], rz[:, hidden:]
            n = torch.addcmul(x_t[:, 2 * hidden :], r, h_part[:, 2 * hidden :]).tanh()
            h = torch.lerp(n, h, z)  # (1 - z) n + z h
            outputs.append(h)
        return torch.stack(outputs, dim=1), h.unsqueeze(0)  # (B, T, H), (1, B, H)


class LSTM(_Recurrent):
    """i, f, o = σ(W_i· x + W_h· h + b); g = tanh(...); c_t = f ⊙ c_{t-1} + i ⊙ g; h_t = o ⊙ tanh(c_t).

    Gates are stacked (i, f, g, o) as in nn.LSTM. ``forget_bias`` is put in the forget slice of ``bias_ih`` (the
    forget slice of ``bias_hh`` is zeroed) so that the effective forget bias starts at exactly that value.
    """

    def __init__(self, input_size: int, hidden_size: int, recurrent_init: str = "default") -> None:
        super().__init__(input_size, hidden_size, gates=4, recurrent_init=recurrent_init)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h0 = self._initial_h(x, None if state is None else state[0])  # (B, H)
        c0 = self._initial_h(x, None if state is None else state[1])  # (B, H)
        out, h, c = LSTMFunction.apply(x, h0, c0, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out, (h.unsqueeze(0), c.unsqueeze(0))  # (B, T, H), ((1, B, H), (1, B, H))


class LSTMFunction(torch.autograd.Function):
    """A whole LSTM sequence as one autograd node with a hand-written backward.

    Forward: tanh(z) is computed as 2σ(2z) − 1 (a single-thread tanh costs about 3 sigmoids here), so the g rows of the
    weights are doubled in a private copy and one ``sigmoid_`` per step activates all four gates (absolute error
    about 2e-7 in float32); tanh(c_t) is kept for the backward.
    Backward: the factors of ∂L/∂(pre-activation) that do not depend on the incoming gradient are computed for all
    steps at once into the buffer that then becomes ∂L/∂(pre-activation); the loop does one matmul per step for
    ∂L/∂h_{t-1}; the weight gradients take one matmul each over the (T*B) rows, with the small input dimension on
    the outside (``x^T G`` then transposed: ``G^T x`` was 8x slower with 10 inputs).
    """

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):  # type: ignore[override]
        batch, steps, _ = x.shape
        hidden = h0.shape[1]
        x_tb = x.transpose(0, 1)  # (T, B, I)
        gates = torch.addmm(bias_ih + bias_hh, x_tb.reshape(steps * batch, -1), weight_ih.t())
        gates = gates.view(steps, batch, 4 * hidden)  # (T, B, 4H): pre-activations, activated in place below
        gates[:, :, 2 * hidden : 3 * hidden] *= 2  # g block: 2z, for tanh(z) = 2σ(2z) - 1
        w_hh_t = weight_hh.clone()
        w_hh_t[2 * hidden : 3 * hidden] *= 2
        w_hh_t = w_hh_t.t()  # (H, 4H)
        hs = x.new_empty(steps + 1, batch, hidden)  # (T+1, B, H): h_0 .. h_T
        cs = x.new_empty(steps + 1, batch, hidden)  # (T+1, B, H): c_0 .. c_T
        tanh_cs = x.new_empty(steps, batch, hidden)  # (T, B, H): tanh(c_1) .. tanh(c_T)
        hs[0], cs[0] = h0, c0
        for t in range(steps):
            act = gates[t]  # (B, 4H)
            act.addmm_(hs[t], w_hh_t)
            act.sigmoid_()  # i, f, σ(2 z_g), o
            i, f, g, o = act.split(hidden, dim=1)
            g.mul_(2).sub_(1)  # tanh(z_g)
            torch.addcmul(f * cs[t], i, g, out=cs[t + 1])
            tanh_c = torch.mul(cs[t + 1], 2, out=tanh_cs[t]).sigmoid_().mul_(2).sub_(1)
            torch.mul(o, tanh_c, out=hs[t + 1])
        ctx.save_for_backward(x_tb, weight_ih, weight_hh, gates, hs, cs, tanh_cs)
        out = hs[1:].transpose(0, 1)  # (B, T, H)
        return out, hs[steps].clone(), cs[steps].clone()

    @staticmethod
    def backward(ctx, d_out, d_h, d_c):  # type: ignore[override]
        x_tb, weight_ih, weight_hh, acts, hs, cs, tanh_c = ctx.saved_tensors
        steps, batch, hidden = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        i, f, g, o = acts.split(hidden, dim=2)  # each (T, B, H), activated
        # d pre-activation = [dc*g*σ'(i), dc*c_prev*σ'(f), dc*i*tanh'(g), dh*tanh(c)*σ'(o)]: the factors of dc and dh
        # first, for all steps, as x - x*y forms; one reused temporary.
        d_gates = acts.new_empty(steps, batch, 4 * hidden)  # (T, B, 4H)
        factor_i, factor_f, factor_g, factor_o = d_gates.split(hidden, dim=2)
        tmp = torch.mul(o, tanh_c)
        dc_from_h = torch.addcmul(o, tmp, tanh_c, value=-1)  # (T, B, H): o (1 - tanh²c), ∂c-path factor of ∂L/∂h_t
        torch.addcmul(tmp, tmp, o, value=-1, out=factor_o)  # tanh(c) o (1 - o)
        torch.mul(g, i, out=tmp)
        torch.addcmul(tmp, tmp, i, value=-1, out=factor_i)  # g i (1 - i)
        torch.addcmul(i, tmp, g, value=-1, out=factor_g)  # i (1 - g²)
        torch.mul(cs[:-1], f, out=tmp)
        torch.addcmul(tmp, tmp, f, value=-1, out=factor_f)  # c_prev f (1 - f)
        d_out = torch.zeros_like(hs[1:]) if d_out is None else d_out.transpose(0, 1)  # (T, B, H)
        dh = d_out[steps - 1] if d_h is None else d_out[steps - 1] + d_h  # (B, H)
        dc = torch.zeros_like(dh) if d_c is None else d_c  # (B, H)
        by_gate = d_gates.view(steps, batch, 4, hidden)
        for t in range(steps - 1, -1, -1):
            dc = torch.addcmul(dc, dh, dc_from_h[t])
            by_gate[t, :, :3].mul_(dc.unsqueeze(1))  # i, f, g rows scale with dc
            by_gate[t, :, 3].mul_(dh)  # o with dh
            dc = dc * f[t]
            dh = torch.addmm(d_out[t - 1], d_gates[t], weight_hh) if t > 0 else d_gates[t] @ weight_hh
        flat = d_gates.view(steps * batch, 4 * hidden)  # (T*B, 4H)
        d_weight_hh = (hs[:-1].reshape(steps * batch, hidden).t() @ flat).t()
        d_weight_ih = (x_tb.reshape(steps * batch, -1).t() @ flat).t()
        d_bias = flat.sum(0)
        d_x = None
        if ctx.needs_input_grad[0]:
            d_x = (weight_ih.t() @ flat.t()).t().view(steps, batch, -1).transpose(0, 1)  # (B, T, I)
        return d_x, dh, dc, d_weight_ih, d_weight_hh, d_bias, d_bias


class TorchCell(nn.Module):
    """nn.RNN / nn.LSTM / nn.GRU (one layer, batch first) behind the same interface as the hand-written cells."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, recurrent_init: str = "default",
                 nonlinearity: str = "tanh") -> None:  # fmt: skip
        super().__init__()
        check_recurrent_init(recurrent_init)
        module = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = module(input_size, hidden_size, batch_first=True, **extra)
        init_recurrent_(self.rnn.weight_hh_l0, recurrent_init)

    def forward(self, x: Tensor, state=None):
        return self.rnn(x, state)


def recurrent_weights(module: nn.Module) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(weight_ih, weight_hh, bias_ih, bias_hh) of a cell built by make_cell, hand-written or torch's: torch's layout,
    gates stacked along dim 0."""
    if isinstance(module, TorchCell):
        rnn = module.rnn
        return rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
    return module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh


def lstm_unrolled(x: Tensor, weights: tuple[Tensor, Tensor, Tensor, Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """An LSTM from zero state unrolled in plain autograd ops from its weights (``recurrent_weights``): every h_t and
    c_t, each (B, H), for x (B, T, I).

    For gradient probes: here h_t = o_t ⊙ tanh(c_t) is computed from the tensor c_t, so ∂L/∂c_t taken by autograd is
    the cell path's full gradient (through h_t and c_{t+1}). nn.LSTM, nn.LSTMCell and LSTMFunction return c_t beside
    h_t as sibling outputs, where that gradient would miss the h_t path. Same values as those cells (tested).
    """
    weight_ih, weight_hh, bias_ih, bias_hh = weights
    h = x.new_zeros(x.shape[0], weight_hh.shape[1])  # (B, H)
    c = torch.zeros_like(h)
    projected = torch.addmm(bias_ih + bias_hh, x.reshape(-1, x.shape[-1]), weight_ih.t()).view(*x.shape[:2], -1)
    hs, cs = [], []
    for t in range(x.shape[1]):
        i, f, g, o = (projected[:, t] + h @ weight_hh.t()).chunk(4, dim=1)  # each (B, H), torch's gate order
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        hs.append(h)
        cs.append(c)
    return hs, cs


def gate_biases(module: nn.Module) -> tuple[Tensor, Tensor]:
    """A cell's (bias_ih, bias_hh), gates stacked along dim 0 as torch stacks them, for either implementation."""
    params = module.rnn if isinstance(module, TorchCell) else module
    return (params.bias_ih_l0, params.bias_hh_l0) if isinstance(module, TorchCell) else (params.bias_ih, params.bias_hh)


def make_cell(
    cell: str,
    implementation: str,
    input_size: int,
    hidden_size: int,
    forget_bias: float = 1.0,
    recurrent_init: str = "default",
    nonlinearity: str = "tanh",
    chrono_t_max: int | None = None,
) -> nn.Module:
    """Builds a recurrent cell by name.

    Args:
        cell: one of ``rnn``, ``lstm``, ``gru``.
        implementation: ``manual`` (hand-written, this file) or ``torch`` (nn.RNN/nn.LSTM/nn.GRU).
        input_size: features per time step.
        hidden_size: hidden units.
        forget_bias: initial effective forget-gate bias of an LSTM (ignored by the other cells), set after
            ``recurrent_init``.
        recurrent_init: ``default`` (torch's U(-1/sqrt(H), 1/sqrt(H))), ``orthogonal`` (each gate's H×H block of
            ``weight_hh`` orthogonal) or ``identity`` (each block I); input weights and biases are initialised as
            torch does either way.
        nonlinearity: the vanilla RNN's, ``tanh`` or ``relu`` (only the RNN takes ``relu``).
        chrono_t_max: chrono initialisation of the gate biases for sequences up to this length (``chrono_bias_``;
            LSTM and GRU only; replaces ``forget_bias``); None keeps torch's biases (and the LSTM's ``forget_bias``).

    Raises:
        ValueError: unknown cell, implementation, recurrent_init or nonlinearity, a ReLU or chrono init for a cell
            that cannot take it, or non-positive sizes.
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {cell!r}")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {', '.join(IMPLEMENTATIONS)}; got {implementation!r}")
    if input_size < 1 or hidden_size < 1:
        raise ValueError(f"input and hidden sizes must be positive; got {input_size} and {hidden_size}")
    check_recurrent_init(recurrent_init)
    if nonlinearity not in NONLINEARITIES or (nonlinearity != "tanh" and cell != "rnn"):
        raise ValueError(f"nonlinearity must be one of {', '.join(NONLINEARITIES)} (relu for the rnn cell only); "
                         f"got {nonlinearity!r} for {cell}")  # fmt: skip
    if chrono_t_max is not None and (cell == "rnn" or chrono_t_max < 3):
        raise ValueError(f"chrono_t_max needs a gated cell (lstm, gru) and a length >= 3; got {chrono_t_max} for "
                         f"{cell}")  # fmt: skip
    if implementation == "torch":
        module: nn.Module = TorchCell(cell, input_size, hidden_size, recurrent_init, nonlinearity)
    elif cell == "rnn":
        module = VanillaRNN(input_size, hidden_size, recurrent_init, nonlinearity)
    else:
        module = {"lstm": LSTM, "gru": GRU}[cell](input_size, hidden_size, recurrent_init)
    bias_ih, bias_hh = gate_biases(module)
    if chrono_t_max is not None:
        chrono_bias_(cell, bias_ih, bias_hh, hidden_size, chrono_t_max)
    elif cell == "lstm":
        with torch.no_grad():
            bias_ih[hidden_size : 2 * hidden_size] = forget_bias
            bias_hh[hidden_size : 2 * hidden_size] = 0.0
    return module
