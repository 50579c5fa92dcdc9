"""Stacked MNIST: real digits stacked are classified to their mode; the configs run through the CLI."""

import pytest
import torch

from datamodules.stacked_mnist import StackedMNISTDataModule
from lab.metrics.backbones import load_classifier
from lab.metrics.functional import classify_stacked, stacked_mode_stats


def test_batches_are_three_stacked_digits_with_their_mode(data_dir):
    """A batch is (B, 3, 28, 28) in [-1, 1]; each channel is the MNIST digit its mode label names."""
    from torchvision.datasets import MNIST

    dm = StackedMNISTDataModule(data_dir=data_dir, num_samples=256, batch_size=64, seed=1)
    images, modes = next(iter(dm.train_dataloader()))
    assert images.shape == (64, 3, 28, 28) and images.min() >= -1 and images.max() <= 1
    assert modes.min() >= 0 and modes.max() < 1000
    triple = dm.train_set.triples[0]
    mnist = MNIST(data_dir, train=True, download=False)
    image, mode = dm.train_set[0]
    assert torch.equal(image, mnist.data[triple])
    assert mode == sum(int(mnist.targets[i]) * w for i, w in zip(triple.tolist(), (100, 10, 1), strict=True))


def test_three_real_digits_are_classified_to_the_right_mode(data_dir):
    """Stacked real test digits are classified (channel by channel) to their true mode for >= 95% of samples."""
    from torchvision.datasets import MNIST

    mnist = MNIST(data_dir, train=False, download=False)
    generator = torch.Generator().manual_seed(0)
    triples = torch.randint(len(mnist.data), (300, 3), generator=generator)
    images = mnist.data[triples].float() / 255  # (300, 3, 28, 28) in [0, 1]
    digits = classify_stacked(images, load_classifier())
    truth = mnist.targets[triples]
    assert digits.shape == (300, 3)
    assert (digits == truth).all(dim=1).float().mean() >= 0.95
    assert stacked_mode_stats(digits)["modes"] == stacked_mode_stats(truth)["modes"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    ["stacked/metz", "stacked/metz+stacked/metz.dhalf+stacked/metz.unrolled", "stacked/veegan+stacked/veegan.pac2",
     "gan/unrolled", "gan/madgan"],
)  # fmt: skip
def test_config_fits_with_fast_dev_run(config, data_dir, tmp_path, monkeypatch):
    """Each Stacked MNIST / Unrolled / MAD-GAN config runs `fit` with fast_dev_run through the real CLI."""
    from conftest import CONFIGS

    from gan_lab.__main__ import main

    monkeypatch.chdir(tmp_path)
    files = [CONFIGS / "base.yaml", *(CONFIGS / f"{part}.yaml" for part in config.split("+")), CONFIGS / "tiny.yaml"]
    args = [arg for path in files for arg in ("--config", str(path))]
    if "unrolled" in config:
        args += ["--model.init_args.unroll_steps=1"]  # the unrolled path, at a tenth of the cost
    if config.startswith("stacked"):
        args += ["--data.init_args.num_samples=256", "--data.init_args.batch_size=16"]
        small = tmp_path / "small_modes.yaml"  # 200 samples instead of the protocol's 26,000
        small.write_text("trainer:\n  callbacks:\n    - class_path: callbacks.modes.StackedMNISTModes\n"
                         "      init_args: {n_samples: 200, batch_size: 100}\n")  # fmt: skip
        args += ["--config", str(small)]
    else:
        args += ["--data.init_args.subset=64", "--data.init_args.val_size=32", "--data.init_args.batch_size=16"]
    main(["fit", *args, "--trainer.fast_dev_run=true", f"--run.root={tmp_path}"])
    if config.startswith("stacked"):
        import json

        (found,) = tmp_path.rglob("modes.json")
        final = json.loads(found.read_text())["final"]
        assert 1 <= final["modes"] <= 200 and final["kl"] >= 0


def test_the_papers_nets_have_the_published_shapes_and_the_table_labels_their_parameter_counts():
    """gan_lab/nets/stacked.py: the VEEGAN setting's DCGAN (5x5 kernels, 2x2 -> 28x28) and the Unrolled GAN setting's
    small nets; every parameter count that experiments/stacked*.yaml prints in a label is the net's own."""
    import re

    import torch
    from conftest import REPO

    from gan_lab.nets.stacked import MetzDiscriminator, MetzGenerator, VeeganDiscriminator, VeeganGenerator
    from lab.experiment import spec

    def count(net: torch.nn.Module) -> str:
        return f"{sum(p.numel() for p in net.parameters()):,}"

    nets = {"G": MetzGenerator(), "quarter": MetzDiscriminator((2, 4, 8)), "half": MetzDiscriminator((4, 8, 16)),
            "pac quarter": MetzDiscriminator((2, 4, 8), (6, 28, 28)),
            "pac half": MetzDiscriminator((4, 8, 16), (6, 28, 28)),
            "vG": VeeganGenerator(), "vD": VeeganDiscriminator(),
            "vpac": VeeganDiscriminator(64, (6, 28, 28))}  # fmt: skip
    for name in ("G", "vG"):
        z = torch.randn(4, nets[name].latent_dim)
        assert nets[name](z).shape == (4, 3, 28, 28)
    assert nets["quarter"](torch.rand(4, 3, 28, 28)).shape == (4,) and nets["vpac"](torch.rand(4, 6, 28, 28)).shape == (
        4,
    )
    stacked = spec.load(REPO / "experiments" / "stacked.yaml", REPO)
    assert count(nets["G"]) in stacked.budget
    expected = {"dcgan.quarter": "quarter", "pac2.quarter": "pac quarter", "unrolled.k5.quarter": "quarter",
                "unrolled.k10.quarter": "quarter", "dcgan.half": "half", "pac2.half": "pac half",
                "unrolled.k5.half": "half", "unrolled.k10.half": "half"}  # fmt: skip
    for variant, net in expected.items():
        assert re.search(rf"\(D {count(nets[net])}( parameters)?\)", stacked.label(variant)), variant
    veegan = spec.load(REPO / "experiments" / "stacked_veegan.yaml", REPO)
    assert count(nets["vG"]) in veegan.budget and count(nets["vD"]) in veegan.label("dcgan")
    assert count(nets["vpac"]) in veegan.label("pac2")
