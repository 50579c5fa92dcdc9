"""Hand-written RNN/LSTM/GRU cells against torch's: same outputs and gradients with copied weights."""

import pytest
import torch

from rnn_lab.cells import make_cell


def _copy_weights(manual, reference):
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(reference.rnn, f"{name}_l0").copy_(getattr(manual, name))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("with_state", [False, True])
def test_manual_cell_matches_torch(cell, with_state):
    """Outputs, final states and gradients (input, weights, initial state) agree with nn.RNN/LSTM/GRU to 1e-5."""
    torch.manual_seed(0)
    manual = make_cell(cell, "manual", 10, 32, forget_bias=0.7)
    reference = make_cell(cell, "torch", 10, 32)
    _copy_weights(manual, reference)
    x = torch.randn(8, 12, 10, requires_grad=True)
    state = None
    if with_state:
        h0 = torch.randn(1, 8, 32, requires_grad=True)
        state = (h0, torch.randn(1, 8, 32, requires_grad=True)) if cell == "lstm" else h0
    leaves = [x] + ([] if state is None else list(state) if cell == "lstm" else [state])
    results = []
    for module in (manual, reference):
        out, final = module(x, state)
        finals = final if cell == "lstm" else (final,)
        weights = torch.linspace(-1, 1, 32)
        loss = (out * weights).sum() + sum((f**2).sum() for f in finals)  # gradients reach outputs and states
        params = [getattr(manual, n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        if module is reference:
            params = [getattr(reference.rnn, f"{n}_l0") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        results.append((out, finals, torch.autograd.grad(loss, leaves + params)))
    (out_a, fin_a, grad_a), (out_b, fin_b, grad_b) = results
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    for a, b in zip(fin_a, fin_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for a, b in zip(grad_a, grad_b, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("implementation", ["manual", "torch"])
def test_lstm_forget_bias_is_the_effective_bias(implementation):
    """The forget slices of bias_ih + bias_hh start at exactly forget_bias."""
    cell = make_cell("lstm", implementation, 4, 6, forget_bias=1.5)
    params = cell if implementation == "manual" else cell.rnn
    bias_ih = getattr(params, "bias_ih" if implementation == "manual" else "bias_ih_l0")
    bias_hh = getattr(params, "bias_hh" if implementation == "manual" else "bias_hh_l0")
    torch.testing.assert_close((bias_ih + bias_hh)[6:12], torch.full((6,), 1.5))


def test_unknown_cell_and_implementation_list_the_options():
    """A misspelt cell or implementation raises a ValueError naming every option."""
    with pytest.raises(ValueError, match="rnn, lstm, gru"):
        make_cell("lstn", "torch", 4, 4)
    with pytest.raises(ValueError, match="manual, torch"):
        make_cell("lstm", "cudnn", 4, 4)
