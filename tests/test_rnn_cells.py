"""Hand-written RNN/LSTM/GRU cells against torch's: same outputs and gradients with copied weights."""

import math

import pytest
import torch

from rnn_lab.cells import lstm_unrolled, make_cell, recurrent_weights
from rnn_lab.classifier import SequenceClassifier


def _copy_weights(manual, reference):
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(reference.rnn, f"{name}_l0").copy_(getattr(manual, name))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("recurrent_init", ["default", "orthogonal"])
def test_manual_cell_matches_torch(cell, with_state, recurrent_init):
    """Outputs, final states and gradients (input, weights, initial state) agree with nn.RNN/LSTM/GRU to 1e-5."""
    torch.manual_seed(0)
    manual = make_cell(cell, "manual", 10, 32, forget_bias=0.7, recurrent_init=recurrent_init)
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


def _weight_hh(module, implementation):
    return module.weight_hh if implementation == "manual" else module.rnn.weight_hh_l0


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("implementation", ["manual", "torch"])
def test_orthogonal_recurrent_init_makes_each_gate_block_orthogonal(cell, implementation):
    """recurrent_init="orthogonal": every gate's H×H block W of weight_hh has W W^T = I, and the blocks differ."""
    torch.manual_seed(0)
    module = make_cell(cell, implementation, 5, 16, recurrent_init="orthogonal")
    blocks = _weight_hh(module, implementation).detach().split(16)
    assert len(blocks) == {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    for block in blocks:
        torch.testing.assert_close(block @ block.t(), torch.eye(16), atol=1e-5, rtol=0)
    for a, b in zip(blocks[:-1], blocks[1:], strict=True):
        assert not torch.allclose(a, b)  # each gate drawn independently


@pytest.mark.parametrize("implementation", ["manual", "torch"])
def test_default_recurrent_init_is_torchs_uniform(implementation):
    """recurrent_init="default" keeps weight_hh inside U(-1/sqrt(H), 1/sqrt(H)), i.e. not orthogonal."""
    torch.manual_seed(0)
    weight = _weight_hh(make_cell("lstm", implementation, 5, 16), implementation).detach()
    assert weight.abs().max() <= 0.25
    block = weight[:16]
    assert not torch.allclose(block @ block.t(), torch.eye(16), atol=0.1)


@pytest.mark.parametrize("implementation", ["manual", "torch"])
def test_forget_bias_still_applies_with_orthogonal_init(implementation):
    """The LSTM forget slices of bias_ih + bias_hh start at forget_bias with recurrent_init="orthogonal" too."""
    cell = make_cell("lstm", implementation, 4, 6, forget_bias=1.5, recurrent_init="orthogonal")
    params = cell if implementation == "manual" else cell.rnn
    suffix = "" if implementation == "manual" else "_l0"
    bias = getattr(params, "bias_ih" + suffix) + getattr(params, "bias_hh" + suffix)
    torch.testing.assert_close(bias[6:12], torch.full((6,), 1.5))


def test_unknown_recurrent_init_lists_the_options():
    """A misspelt recurrent_init raises a ValueError naming every option and the value given."""
    for implementation in ("manual", "torch"):
        with pytest.raises(ValueError, match="recurrent_init must be one of default, orthogonal, identity; got 'foo'"):
            make_cell("gru", implementation, 4, 4, recurrent_init="foo")


def test_classifier_passes_recurrent_init_to_its_cell():
    """SequenceClassifier(recurrent_init="orthogonal") builds its cell with orthogonal gate blocks and records it."""
    model = SequenceClassifier(cell="gru", implementation="manual", hidden_dim=8, recurrent_init="orthogonal")
    assert model.hparams.recurrent_init == "orthogonal"
    for block in model.cell.weight_hh.detach().split(8):
        torch.testing.assert_close(block @ block.t(), torch.eye(8), atol=1e-5, rtol=0)


@pytest.mark.parametrize("implementation", ["manual", "torch"])
def test_lstm_unrolled_matches_the_cell_and_its_c_t_carries_the_h_t_path(implementation):
    """The plain-op unroll used by gradient probes gives the cell's own h_t and c_T (to 1e-5), and its c_t sits under
    h_t: at the last step ∂L/∂c_T = ∂L/∂h_T ⊙ o_T ⊙ (1 - tanh² c_T), with o_T = h_T / tanh(c_T)."""
    torch.manual_seed(0)
    cell = make_cell("lstm", implementation, 10, 16, recurrent_init="orthogonal")
    x = torch.randn(4, 7, 10)
    out, (_, c_n) = cell(x)
    hs, cs = lstm_unrolled(x, recurrent_weights(cell))
    torch.testing.assert_close(torch.stack(hs, dim=1), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cs[-1], c_n[0], atol=1e-5, rtol=1e-5)
    loss = (hs[-1] * torch.linspace(-1, 1, 16)).sum()
    d_h, d_c = torch.autograd.grad(loss, [hs[-1], cs[-1]])
    tanh_c = cs[-1].detach().tanh()
    torch.testing.assert_close(d_c, d_h * (hs[-1].detach() / tanh_c) * (1 - tanh_c**2), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("implementation", ["manual", "torch"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chrono_init_sets_the_keep_gate_bias_to_log_u_and_the_lstm_input_gate_to_its_negative(cell, implementation):
    """chrono_t_max = T: the effective keep-gate bias (bias_ih + bias_hh: LSTM forget, GRU update) is log u with
    u in [1, T - 1] and spread over that range; the LSTM's input gate is its negative; the other gates keep torch's
    U(-1/sqrt(H), 1/sqrt(H)); the draw is not doubled by torch's two bias vectors."""
    torch.manual_seed(0)
    hidden, t_max = 256, 300
    bias_ih, bias_hh = recurrent_weights(make_cell(cell, implementation, 4, hidden, chrono_t_max=t_max))[2:]
    total = (bias_ih + bias_hh).detach()
    keep = total[hidden : 2 * hidden]
    assert keep.min() >= 0 and keep.max() <= math.log(t_max - 1) + 1e-6
    assert keep.exp().mean().item() == pytest.approx((t_max - 2) / 2 + 1, rel=0.1)  # u ~ U(1, T - 1)
    assert torch.equal(bias_hh[hidden : 2 * hidden].detach(), torch.zeros(hidden))
    if cell == "lstm":
        torch.testing.assert_close(total[:hidden], -keep)
    rest = total[2 * hidden :]
    assert rest.abs().max() <= 2 / math.sqrt(hidden)  # two uniform biases added


@pytest.mark.parametrize("implementation", ["manual", "torch"])
def test_identity_relu_rnn_is_the_irnn(implementation):
    """recurrent_init="identity" with nonlinearity="relu": weight_hh = I and h_t = relu(W x_t + b + h_{t-1}); the
    hand-written cell and nn.RNN(nonlinearity="relu") agree on outputs and gradients."""
    torch.manual_seed(0)
    module = make_cell("rnn", implementation, 5, 16, recurrent_init="identity", nonlinearity="relu")
    weight_ih, weight_hh, bias_ih, bias_hh = recurrent_weights(module)
    assert torch.equal(weight_hh.detach(), torch.eye(16))
    x = torch.randn(3, 7, 5)
    out, _ = module(x)
    h = torch.zeros(3, 16)
    for t in range(7):
        h = torch.relu(x[:, t] @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)
    torch.testing.assert_close(out[:, -1], h)
    if implementation == "manual":
        reference = make_cell("rnn", "torch", 5, 16, recurrent_init="identity", nonlinearity="relu")
        _copy_weights(module, reference)
        x.requires_grad_(True)
        grads = [torch.autograd.grad(m(x)[0].square().sum(), x)[0] for m in (module, reference)]
        torch.testing.assert_close(*grads)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "lstm", "nonlinearity": "relu"}, "relu for the rnn cell only"),
        ({"cell": "rnn", "nonlinearity": "sigmoid"}, "nonlinearity must be one of tanh, relu"),
        ({"cell": "rnn", "chrono_t_max": 100}, "chrono_t_max needs a gated cell"),
        ({"cell": "gru", "chrono_t_max": 2}, "a length >= 3"),
    ],
)
def test_inits_a_cell_cannot_take_are_refused(kwargs, message):
    """A ReLU LSTM, an unknown nonlinearity, or chrono for the vanilla RNN or a too short length: a ValueError."""
    cell = kwargs.pop("cell")
    with pytest.raises(ValueError, match=message):
        make_cell(cell, "torch", 4, 4, **kwargs)


def test_the_classifier_passes_the_inits_to_its_cell():
    """SequenceClassifier(chrono_t_max=..., nonlinearity=..., recurrent_init="identity") builds that cell."""
    lstm = SequenceClassifier(cell="lstm", chrono_t_max=50)
    bias_ih, bias_hh = recurrent_weights(lstm.cell)[2:]
    assert (bias_ih + bias_hh)[128:256].min() >= 0
    irnn = SequenceClassifier(cell="rnn", recurrent_init="identity", nonlinearity="relu")
    assert (
        torch.equal(recurrent_weights(irnn.cell)[1].detach(), torch.eye(128)) and irnn.cell.rnn.nonlinearity == "relu"
    )
