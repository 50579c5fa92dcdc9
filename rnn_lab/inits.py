"""Initialisations of the recurrent cells (rnn_lab/cells.py, hand-written and torch's alike): recurrent weights
(torch's uniform, orthogonal or identity blocks per gate) and chrono gate biases."""

from __future__ import annotations

import torch
from torch import Tensor, nn

RECURRENT_INITS = ("default", "orthogonal", "identity")
NONLINEARITIES = ("tanh", "relu")  # the vanilla RNN's; relu with identity recurrent weights is Le et al.'s IRNN


def check_recurrent_init(recurrent_init: str) -> None:
    """Raises a ValueError listing the options unless ``recurrent_init`` is one of RECURRENT_INITS."""
    if recurrent_init not in RECURRENT_INITS:
        raise ValueError(f"recurrent_init must be one of {', '.join(RECURRENT_INITS)}; got {recurrent_init!r}")


def init_recurrent_(weight_hh: Tensor, recurrent_init: str) -> None:
    """Initialises a stacked recurrent weight (G*H, H) in place.

    Args:
        weight_hh: the gates' H×H blocks stacked along dim 0, as in torch's ``weight_hh``.
        recurrent_init: ``default`` keeps U(-1/sqrt(H), 1/sqrt(H)) (torch's, already there); ``orthogonal`` sets each
            gate's H×H block with ``nn.init.orthogonal_``, independently of the others; ``identity`` sets each block
            to I (with a ReLU vanilla RNN: Le et al. 2015's IRNN).
    """
    check_recurrent_init(recurrent_init)
    if recurrent_init != "default":
        with torch.no_grad():
            for block in weight_hh.split(weight_hh.shape[1]):  # contiguous (H, H) views, one per gate
                (nn.init.orthogonal_ if recurrent_init == "orthogonal" else nn.init.eye_)(block)


def chrono_bias_(cell: str, bias_ih: Tensor, bias_hh: Tensor, hidden: int, t_max: int) -> None:
    """Chrono initialisation (Tallec and Ollivier, ICLR 2018) in place: the keep gate's bias b = log u with
    u ~ U(1, t_max - 1) per unit, so that unit's memory lasts about u steps at the start. LSTM (gates i, f, g, o):
    forget bias b, input bias -b. GRU (gates r, z, n; h' = (1 - z) n + z h, so z keeps): update bias b. torch adds
    ``bias_ih`` and ``bias_hh``: the draw goes into ``bias_ih`` and the same slices of ``bias_hh`` are zeroed."""
    with torch.no_grad():
        b = torch.empty(hidden).uniform_(1.0, float(t_max - 1)).log()
        keep = slice(hidden, 2 * hidden)  # f of (i, f, g, o); z of (r, z, n)
        bias_ih[keep], bias_hh[keep] = b, 0.0
        if cell == "lstm":
            bias_ih[:hidden], bias_hh[:hidden] = -b, 0.0
