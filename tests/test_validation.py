"""Bad input fails before training: one `error:` line on stderr, a non-zero exit, and no run directory left behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gan_lab.__main__ import main as gan_main
from rnn_lab.__main__ import run as rnn_main

REPO = Path(__file__).resolve().parents[1]


def configs(*names: str) -> list[str]:
    return [f"--config={REPO / 'configs' / name}" for name in ("base.yaml", *names, "tiny.yaml")]


WGAN = configs("gan/wgan.yaml")
G = "--model.init_args.generator.init_args"

# (case id, arguments after `fit` + configs, a phrase the one-line error must contain)
GAN_CASES = [
    ("unknown key", [f"{G}.latent_dimm=5"], "latent_dimm"),
    ("misspelled trainer key", ["--trainer.max_epoch=3"], "max_epoch"),
    ("wrong type", ["--trainer.max_epochs=many"], "max_epochs"),
    ("latent_dim 0", [f"{G}.latent_dim=0"], "error: latent_dim must be >= 1, got 0"),
    ("negative hidden size", [f"{G}.hidden_dims=[256,-4]"], "hidden"),
    ("batch size 0", ["--data.init_args.batch_size=0"], "error: batch_size must be >= 1, got 0"),
    ("negative batch size", ["--data.init_args.batch_size=-4"], "error: batch_size must be >= 1, got -4"),
    ("negative subset", ["--data.init_args.subset=-1"], "subset"),
    ("n_critic 0", ["--model.init_args.n_critic=0"], "error: n_critic must be >= 1, got 0"),
    ("negative learning rate", ["--model.init_args.generator_optimizer.init_args.lr=-1e-4"], "learning rate"),
    ("zero learning rate", ["--model.init_args.discriminator_optimizer.init_args.lr=0"], "learning rate"),
    ("value range mismatch", ["--data.init_args.value_range=sigmoid"], "value_range"),
    ("unknown value range", ["--data.init_args.value_range=unit"], "value_range"),
    ("negative gp weight", ["--model.init_args.gp_weight=-1"], "gp_weight"),
    ("unknown W&B run id", ["--run.wandb=true", "--run.wandb_id=nope"], "--run.wandb_id nope: no offline W&B run"),
    (
        "unknown precision",
        ["--trainer.precision=bf17"],
        "error: trainer.precision must be one of transformer-engine, transformer-engine-float16, 16-true, 16-mixed, "
        "bf16-true, bf16-mixed, 32-true, 64-true, 64, 32, 16, bf16, got 'bf17'",
    ),
    (
        "unknown backbone",
        [
            "--model.init_args.metrics_every_n_epochs=1",
            "--trainer.callbacks+=callbacks.metrics.GenerativeMetrics",
            "--trainer.callbacks.backbone=resnet",
        ],
        "error: backbone must be one of classifier, inception, got 'resnet'",
    ),
    ("ema decay 1", ["--model.init_args.ema_decay=1.0"], "error: ema_decay must be in [0, 1), got 1.0"),
    ("packing without a packed critic", ["--model.init_args.packing=2"], "image_shape: [2, 28, 28]"),
]


RING = configs("mixtures/ring.yaml")
MIXTURE_CASES = [
    (
        "unroll steps < 0",
        ["--config=" + str(REPO / "configs/mixtures/unrolled.yaml"), "--model.init_args.unroll_steps=-1"],
        "unroll_steps",
    ),
    (
        "unknown objective name",
        ["--config=" + str(REPO / "configs/mixtures/unrolled.yaml"), "--model.init_args.objective=minimax"],
        "error: objective must be one of paper, nonsaturating, got 'minimax'",
    ),
    (
        "packing 0",
        ["--config=" + str(REPO / "configs/mixtures/pacgan.yaml"), "--model.init_args.packing=0"],
        "error: packing must be >= 1, got 0",
    ),
    (
        "discriminator not sized for the packing",
        ["--config=" + str(REPO / "configs/mixtures/pacgan.yaml"), "--model.init_args.packing=3"],
        "MixtureDiscriminator in_dim: 6",
    ),
    (
        "batch size not divisible by the packing",
        ["--config=" + str(REPO / "configs/mixtures/pacgan.yaml"), "--data.init_args.batch_size=127"],
        "error: batch_size 127 is not divisible by the packing degree 2",
    ),
    (
        "no generators",
        ["--config=" + str(REPO / "configs/mixtures/madgan.yaml"), f"{G}.n_generators=0"],
        "error: n_generators must be >= 1, got 0",
    ),
]
# The protocol's nets, MAD-GAN g25 and PacDCGAN2, each composed as its family is: (case id, config files between
# base.yaml and tiny.yaml, overrides, the phrase or whole line)
D = "--model.init_args.discriminator.init_args"
GAN_PROTOCOL = ["mixtures/grid.yaml", "mixtures/gan.yaml", "mixtures/gan.protocol.yaml"]
PACGAN_PROTOCOL = ["mixtures/grid.yaml", "mixtures/pacgan.yaml", "mixtures/pacgan.protocol.yaml"]
MADGAN_G25 = ["mixtures/grid.yaml", "mixtures/madgan.yaml", "mixtures/madgan.g25.yaml"]
PACDCGAN2 = ["stacked/metz.yaml", "stacked/metz.pac2.yaml"]
PROTOCOL_CASES = [
    ("maxout pieces 0", GAN_PROTOCOL, [f"{D}.pieces=0"], "error: pieces must be >= 1, got 0"),
    ("maxout n_layers 0", GAN_PROTOCOL, [f"{D}.n_layers=0"],
     "error: in_dim, hidden_dim, n_layers and n_outputs must all be >= 1"),
    ("maxout init_std < 0", GAN_PROTOCOL, [f"{D}.init_std=-0.5"],
     "error: init_std must be a positive number (or null), got -0.5"),
    ("generator init_std 0", GAN_PROTOCOL, [f"{G}.init_std=0"],
     "error: init_std must be a positive number (or null), got 0.0"),
    ("generator batch_norm not a bool", GAN_PROTOCOL, [f"{G}.batch_norm=maybe"], "batch_norm"),
    ("protocol packing 0", PACGAN_PROTOCOL, ["--model.init_args.packing=0"], "error: packing must be >= 1, got 0"),
    ("maxout not sized for the packing", PACGAN_PROTOCOL, ["--model.init_args.packing=3"], "in_dim: 6"),
    ("protocol batch not divisible by the packing", PACGAN_PROTOCOL, ["--data.init_args.batch_size=201",
     "--data.init_args.samples_per_epoch=20100"],
     "error: batch_size 201 is not divisible by the packing degree 2"),
    ("g25 no generators", MADGAN_G25, [f"{G}.n_generators=0"], "error: n_generators must be >= 1, got 0"),
    ("g25 discriminator not k + 1", MADGAN_G25, [f"{G}.n_generators=24"],
     "error: the MAD-GAN discriminator must return (B, n_generators + 1) = (B, 25) logits, got (2, 26): set its "
     "n_outputs to 25"),
    ("pacdcgan2 packing 0", PACDCGAN2, ["--model.init_args.packing=0"], "error: packing must be >= 1, got 0"),
    ("pacdcgan2 batch not divisible", PACDCGAN2, ["--data.init_args.batch_size=63"],
     "error: batch_size 63 is not divisible by the packing degree 2"),
    ("metz discriminator with two convs", PACDCGAN2, [f"{D}.channels=[2,4]"],
     "error: channels must be three positive filter counts, got [2, 4]"),
]  # fmt: skip
LSTM = configs("rnn/lstm.yaml")
RNN_CASES = [
    ("seq_len 1", ["--data.seq_len=1"], "seq_len"),
    ("num_samples 0", ["--data.num_samples=0"], "num_samples"),
    ("hidden_dim 0", ["--model.hidden_dim=0"], "hidden"),
    ("unknown cell", ["--model.cell=transformer"], "cell"),
    ("unknown implementation", ["--model.implementation=cuda"], "implementation"),
    ("negative learning rate", ["--model.optimizer.init_args.lr=-0.1"], "learning rate"),
    ("train fraction 1", ["--data.train_fraction=1.0"], "train_fraction"),
]


PARSER_NOISE = ("Union", "Namespace(", "Subtypes", "ValueError:", "TypeError:", "Given value")


def assert_refused(capsys, stop, phrase: str, root: Path) -> None:
    """Exit 2, exactly one `error:` line naming ``phrase`` (the whole line when ``phrase`` starts with ``error:``)
    without the config parser's wrapping, and nothing written under ``root``."""
    assert stop.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert err[0] == phrase if phrase.startswith("error:") else phrase in err[0], err[0]
    assert not any(noise in err[0] for noise in PARSER_NOISE), err[0]
    assert not root.exists() or not any(root.iterdir()), "a refused run must leave nothing behind"


@pytest.mark.parametrize("overrides, phrase", [c[1:] for c in MIXTURE_CASES], ids=[c[0] for c in MIXTURE_CASES])
def test_bad_mixture_config_fails_in_one_line(tmp_path, capsys, overrides, phrase):
    """Unrolled GAN with k < 0 or an unknown objective, PacGAN with a bad packing and MAD-GAN with no generator are
    refused before training."""
    with pytest.raises(SystemExit) as stop:
        gan_main(["fit", *RING[:-1], overrides[0], RING[-1], f"--run.root={tmp_path}", *overrides[1:]])
    assert_refused(capsys, stop, phrase, tmp_path)


@pytest.mark.parametrize(
    "files, overrides, phrase", [c[1:] for c in PROTOCOL_CASES], ids=[c[0] for c in PROTOCOL_CASES]
)
def test_bad_protocol_config_fails_in_one_line(tmp_path, capsys, files, overrides, phrase):
    """The protocol's maxout/batch-norm nets, PacGAN with them, MAD-GAN with 25 generators and PacDCGAN2 refuse a bad
    value before training."""
    with pytest.raises(SystemExit) as stop:
        gan_main(["fit", *configs(*files), f"--run.root={tmp_path}", *overrides])
    assert_refused(capsys, stop, phrase, tmp_path)


@pytest.mark.parametrize("overrides, phrase", [c[1:] for c in RNN_CASES], ids=[c[0] for c in RNN_CASES])
def test_bad_rnn_config_fails_in_one_line(tmp_path, capsys, overrides, phrase):
    """Each bad value in an LSTM palindrome run gives one error line naming it, exit 2, and writes nothing."""
    with pytest.raises(SystemExit) as stop:
        rnn_main(["fit", *LSTM, f"--run.root={tmp_path}", *overrides])
    assert_refused(capsys, stop, phrase, tmp_path)


@pytest.mark.parametrize("overrides, phrase", [c[1:] for c in GAN_CASES], ids=[c[0] for c in GAN_CASES])
def test_bad_gan_config_fails_in_one_line(tmp_path, capsys, overrides, phrase):
    """Each bad value or key in a WGAN-GP run gives one error line naming it, exit 2, and writes nothing."""
    with pytest.raises(SystemExit) as stop:
        gan_main(["fit", *WGAN, f"--run.root={tmp_path}", *overrides])
    assert_refused(capsys, stop, phrase, tmp_path)


def test_missing_mnist_offline_fails_in_one_line(tmp_path, capsys):
    """A data folder without MNIST (and no network) names the four files and the folder."""
    with pytest.raises(SystemExit) as stop:
        gan_main(["fit", *WGAN, f"--run.root={tmp_path / 'runs'}", f"--data.init_args.data_dir={tmp_path}"])
    assert stop.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    files = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    assert all(name in line for name in files) and str(tmp_path) in line and len(line) < 300, line
    assert not any(noise in line for noise in PARSER_NOISE), line
    assert not (tmp_path / "runs").exists()


def test_bad_config_file_fails_in_one_line(tmp_path, capsys):
    """A YAML with a misspelled section or a missing file is refused in one line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epochs: 1\nmodle:\n  class_path: gan_lab.gan.GAN\n")
    for extra, phrase in [(f"--config={bad}", "modle"), (f"--config={tmp_path / 'nope.yaml'}", "nope.yaml")]:
        with pytest.raises(SystemExit) as stop:
            gan_main(["fit", *WGAN, extra])
        assert stop.value.code == 2
        (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert line.startswith("error:") and phrase in line, line


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["--n", "0"], "--n must be >= 1"),
        (["--out", "{tmp}/no/such/folder/x.png"], "does not exist"),
        (["--out", "{tmp}/x.jpg"], "must end with"),
        (["--ckpt", "{tmp}/missing.ckpt"], "does not exist"),
    ],
    ids=["n 0", "missing checkpoint, output in a missing folder", "bad suffix", "missing checkpoint"],
)
def test_bad_sample_arguments_fail_in_one_line(tmp_path, capsys, args, phrase):
    """`sample` refuses bad counts, paths and checkpoints with one error line and exit 2."""
    base = {"--ckpt": f"{tmp_path}/missing.ckpt", "--n": "4", "--out": f"{tmp_path}/x.png"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    argv = [item.replace("{tmp}", str(tmp_path)) for pair in base.items() for item in pair]
    with pytest.raises(SystemExit) as stop:
        gan_main(["sample", *argv])
    assert stop.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert line.startswith("error:") and phrase in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing may be created for refused input"


def test_output_paths_are_checked_before_work_starts(tmp_path):
    """Output files and folders: missing parents are created; a file where a folder must be, a folder given as a
    file, or a place that takes no files (a special file system) is one LabError naming the path."""
    from lab.errors import LabError, check_output_folder, check_output_path

    assert check_output_path(tmp_path / "a" / "b" / "x.png", (".png",)) == tmp_path / "a" / "b" / "x.png"
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())  # the probe is gone
    afile = tmp_path / "afile"
    afile.write_text("x")
    for call, phrase in [
        (lambda: check_output_path("/proc/x.png", (".png",)), "output folder /proc: cannot write there"),
        (lambda: check_output_path(afile / "x.png", (".png",)), "is a file, not a folder"),
        (lambda: check_output_path(tmp_path / "a.png" if (tmp_path / "a.png").mkdir() is None else "", (".png",)),
         "is a folder"),
        (lambda: check_output_folder(afile, "--run.root"), f"--run.root {afile}: is a file, not a folder"),
        (lambda: check_output_folder("/proc/runs", "--run.root"), "--run.root /proc/runs: cannot write there"),
    ]:  # fmt: skip
        with pytest.raises(LabError, match=re.escape(phrase)):
            call()


def test_real_cli_exit_code_and_single_line(tmp_path):
    """Through a real process: a misspelled key exits 2 with exactly one line on stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "gan_lab", "fit", *WGAN, f"--run.root={tmp_path}", "--model.init_args.n_critc=5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "n_critc" in lines[0], proc.stderr
