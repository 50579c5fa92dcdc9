"""The PacGAN / VEEGAN protocol's networks (maxout discriminator, 4 x 400 batch-norm generator) and MAD-GAN with 25
shared-trunk generators: shapes, maxout against a loop over pieces, packing, and a few batches through the real CLI."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import CONFIGS
from torch import nn

from gan_lab.madgan import MultiGenerator
from gan_lab.nets.mixture import Maxout, MaxoutDiscriminator, MixtureGenerator
from gan_lab.packing import check_packing


def test_maxout_is_the_max_over_pieces_of_linear_maps():
    """Unit j is max_p (x W_{j,p} + b_{j,p}), checked against an independent loop over units and pieces."""
    torch.manual_seed(0)
    layer, x = Maxout(3, 4, pieces=5), torch.randn(7, 3)
    weight, bias = layer.linear.weight.view(4, 5, 3), layer.linear.bias.view(4, 5)  # (unit, piece, in)
    expected = torch.stack(
        [torch.stack([x @ weight[j, p] + bias[j, p] for p in range(5)], dim=1).max(dim=1).values for j in range(4)],
        dim=1,
    )  # (7, 4)
    out = layer(x)
    assert out.shape == (7, 4)
    torch.testing.assert_close(out, expected)
    one = Maxout(3, 4, pieces=1)
    torch.testing.assert_close(one(x), one.linear(x))  # one piece: a plain linear layer


def test_maxout_refuses_fewer_than_one_piece():
    """pieces < 1 is refused with the value."""
    with pytest.raises(ValueError, match="pieces must be >= 1, got 0"):
        Maxout(2, 4, pieces=0)


@pytest.mark.parametrize("packing", [1, 2, 4])
def test_maxout_discriminator_takes_packs_of_m_points(packing):
    """in_dim 2 m: (B, 2 m) -> (B,) logits, accepted by check_packing; a (B, k + 1) head for MAD-GAN."""
    d = MaxoutDiscriminator(in_dim=2 * packing, hidden_dim=8, n_layers=3, pieces=5)
    assert d(torch.randn(6, 2 * packing)).shape == (6,)
    assert check_packing(packing, d, (2,)) == packing
    assert [type(m) for m in d.net][:3] == [Maxout] * 3
    assert MaxoutDiscriminator(2, 8, 2, 3, n_outputs=26)(torch.randn(5, 2)).shape == (5, 26)
    if packing > 1:
        with pytest.raises(ValueError, match=f"in_dim: {2 * packing}"):
            check_packing(packing, MaxoutDiscriminator(in_dim=2, hidden_dim=8), (2,))


def test_protocol_generator_has_batch_norm_and_the_protocol_initialisation():
    """batch_norm: a BatchNorm1d before each of the n_layers ReLUs and no hidden biases; init_std: N(0, std) weights,
    zero biases; latent 2 -> 2-D points."""
    torch.manual_seed(0)
    g = MixtureGenerator(latent_dim=2, hidden_dim=400, n_layers=4, batch_norm=True, init_std=0.02)
    linears = [m for m in g.modules() if isinstance(m, nn.Linear)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in g.trunk) == 4 and len(linears) == 5
    assert all(m.bias is None for m in linears[:-1]) and torch.all(g.head.bias == 0)
    assert abs(float(linears[1].weight.std()) - 0.02) < 1e-3
    assert g(torch.randn(10, 2)).shape == (10, 2)
    with pytest.raises(ValueError, match="init_std must be a positive number"):
        MixtureGenerator(init_std=0.0)


def test_shared_trunk_runs_the_trunk_once_and_each_head_on_its_rows():
    """With a batch-norm trunk and 25 heads, row j of forward(z) is head j mod 25 of the trunk (eval mode), and in
    training mode a batch of 128 (about 5 rows per head) trains every head."""
    torch.manual_seed(0)
    multi = MultiGenerator(MixtureGenerator(2, 16, 2, batch_norm=True), n_generators=25, shared_trunk=True)
    multi.eval()
    z = torch.randn(60, 2)
    out = multi(z)
    for i in (0, 7, 24):
        torch.testing.assert_close(out[i::25], multi.forward_one(i, z[i::25]))
    multi.train()
    multi(torch.randn(128, 2)).pow(2).sum().backward()
    assert all(head.weight.grad is not None and head.weight.grad.abs().sum() > 0 for head in multi.heads)


def fit_on_grid(family: list[str], tmp_path, *overrides: str):
    from gan_lab.__main__ import build, main

    files = [CONFIGS / "base.yaml", CONFIGS / "mixtures" / "grid.yaml", *(CONFIGS / "mixtures" / f for f in family)]
    args = [f"--config={p}" for p in [*files, CONFIGS / "tiny.yaml"]] + [f"--run.root={tmp_path}", *overrides]
    model = build(args).model
    main(["fit", *args, "--trainer.limit_train_batches=4"])
    (found,) = tmp_path.rglob("modes.json")
    return model, json.loads(found.read_text())["final"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "family",
    [
        ["gan.yaml", "gan.protocol.yaml"],
        ["pacgan.yaml", "pacgan.protocol.yaml"],
        ["pacgan.yaml", "pacgan.protocol_m4.yaml"],
    ],
)
def test_protocol_families_train_a_few_batches_on_the_grid(family, tmp_path):
    """gan.protocol and pacgan.protocol compose into the protocol's nets and fit 4 batches through the real CLI."""
    model, final = fit_on_grid(family, tmp_path)
    assert isinstance(model.discriminator, MaxoutDiscriminator) and model.latent_dim == 2
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.generator.modules()) == 4
    assert model.discriminator.net[0].linear.in_features == 2 * model.packing
    assert 0 <= final["modes"] <= 25


@pytest.mark.slow
def test_madgan_with_25_generators_trains_a_few_batches_on_the_grid(tmp_path):
    """madgan.g25: 25 heads on one trunk and a 26-way discriminator fit 4 batches through the real CLI."""
    model, final = fit_on_grid(["madgan.yaml", "madgan.g25.yaml"], tmp_path)
    assert model.generator.shared_trunk and len(model.generator.heads) == 25
    assert model.discriminator(torch.zeros(3, 2)).shape == (3, 26)
    assert 0 <= final["modes"] <= 25
