"""Reliability: exact resume, divergence guard, checkpoint on SIGTERM, safe and checked checkpoint loading."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from callbacks.guards import DivergenceError, DivergenceGuard, all_finite
from gan_lab.__main__ import build as build_gan
from gan_lab.__main__ import main as gan_main
from gan_lab.checkpoint import load_module
from rnn_lab.__main__ import run as rnn_main

REPO = Path(__file__).resolve().parents[1]

WGAN = [f"--config={REPO / 'configs' / name}" for name in ("base.yaml", "gan/wgan.yaml", "tiny.yaml")]


def wgan_args(root: Path, epochs: int, *extra: str) -> list[str]:
    """A WGAN-GP run on 256 real MNIST images: 4 batches per epoch, a checkpoint every epoch."""
    return [
        "fit",
        *WGAN,
        f"--run.root={root}",
        f"--trainer.max_epochs={epochs}",
        "--trainer.limit_train_batches=null",
        "--trainer.limit_val_batches=0",
        "--data.init_args.subset=256",
        "--data.init_args.val_size=0",
        "--model.init_args.sample_every_n_epochs=1",
        "--model.init_args.metrics_samples=256",  # FID/KID/IS every epoch (the best checkpoint's metric), cheaply
        *extra,
    ]


def run_dir(root: Path) -> Path:
    (only,) = root.glob("*/version_*")
    return only


def final_weights(root: Path) -> dict[str, torch.Tensor]:
    ckpt = run_dir(root) / "checkpoints" / "last.ckpt"
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def resume_matches_straight_run(main, make_args, tmp_path: Path, loss_key: str) -> list[tuple[str, str]]:
    """Runs 3 epochs straight, and 1 epoch then 2 more resumed from its checkpoint; asserts bit-identical final
    weights and identical per-step losses after epoch 1; returns those losses."""
    main(make_args(tmp_path / "straight", 3))
    main(make_args(tmp_path / "parts", 1))
    first = run_dir(tmp_path / "parts") / "checkpoints" / "last.ckpt"  # after epoch 0
    main(make_args(tmp_path / "resumed", 3, f"--ckpt_path={first}"))
    straight, resumed = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key

    def losses(root: Path) -> list[tuple[str, str]]:
        with open(run_dir(root) / "metrics.csv") as file:
            return [(r["step"], r[loss_key]) for r in csv.DictReader(file) if int(r["epoch"]) >= 1 and r[loss_key]]

    expected = losses(tmp_path / "straight")
    assert losses(tmp_path / "resumed") == expected
    return expected


@pytest.mark.slow
def test_wgan_gp_resume_reproduces_the_uninterrupted_run(tmp_path):
    """Stopping after epoch 1 and resuming gives the same losses and bit-identical weights as one 3-epoch run."""
    assert len(resume_matches_straight_run(gan_main, wgan_args, tmp_path, "train/d_loss")) >= 8
    # the fixed noise of the sample grids is the same too: the last grids are identical files
    grid = "samples/epoch=002.png"
    assert (run_dir(tmp_path / "straight") / grid).read_bytes() == (run_dir(tmp_path / "resumed") / grid).read_bytes()


def lstm_args(root: Path, epochs: int, *extra: str) -> list[str]:
    """An LSTM on 3,000 palindromes of length 12: 19 batches of 128 per epoch, validation and checkpoint per epoch."""
    configs = [f"--config={REPO / 'configs' / name}" for name in ("base.yaml", "rnn/lstm.yaml", "tiny.yaml")]
    return [
        "fit",
        *configs,
        f"--run.root={root}",
        f"--trainer.max_epochs={epochs}",
        "--trainer.limit_train_batches=null",
        "--trainer.limit_val_batches=null",
        "--trainer.val_check_interval=1.0",
        "--data.seq_len=12",
        "--data.num_samples=3000",
        *extra,
    ]


def ring_args(root: Path, epochs: int, *extra: str) -> list[str]:
    """The ring GAN in stacks of 10 batches (ring.yaml stacks 50): 2 stacks per epoch, a checkpoint each; a constant
    learning rate (a linear decay depends on max_epochs, which differs between the parts of the run)."""
    files = ("base.yaml", "mixtures/ring.yaml", "mixtures/gan.yaml", "tiny.yaml")
    return ["fit", *(f"--config={REPO / 'configs' / name}" for name in files), f"--run.root={root}",
            f"--trainer.max_epochs={epochs}", "--trainer.limit_train_batches=null",
            "--data.init_args.samples_per_epoch=2560", "--data.init_args.batches_per_item=10",
            "--model.init_args.lr_schedule=constant", *extra]  # fmt: skip


@pytest.mark.slow
def test_stacked_mixture_resume_reproduces_the_uninterrupted_run(tmp_path):
    """The ring GAN with 10 batches per loader item, resumed after epoch 1, ends with the same weights and losses."""
    assert len(resume_matches_straight_run(gan_main, ring_args, tmp_path, "train/d_loss")) >= 4


@pytest.mark.slow
def test_lstm_resume_reproduces_the_uninterrupted_run(tmp_path):
    """The LSTM classifier resumed after epoch 1 ends with the same weights and losses as one 3-epoch run."""
    assert len(resume_matches_straight_run(rnn_main, lstm_args, tmp_path, "train/loss")) >= 20


@pytest.mark.slow
def test_divergence_guard_names_step_and_keeps_last_good_checkpoint(tmp_path):
    """A NaN injected in the critic loss in epoch 2 stops training with the step named; epoch 1's checkpoint loads."""
    cli = build_gan(wgan_args(tmp_path, 3)[1:])
    model = cli.model
    clean_loss = model.discriminator_loss

    def poisoned(real, fake):
        loss, metrics = clean_loss(real, fake)
        return (loss * float("nan") if model.critic_steps >= 6 else loss), metrics

    model.discriminator_loss = poisoned
    with pytest.raises(DivergenceError, match=r"diverged at step \d+ .*(gradient|d_loss)") as failure:
        cli.trainer.fit(model, cli.datamodule)
    ckpt = run_dir(tmp_path) / "checkpoints" / "last.ckpt"  # written after epoch 0, named in the message
    assert str(ckpt) in str(failure.value)
    good = load_module(ckpt)
    assert all(torch.isfinite(p).all() for p in good.parameters())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_gradient_guard_names_the_first_non_finite_gradient(bad):
    """A NaN or infinite gradient element stops the step with the parameter named; finite gradients (huge and
    subnormal values included) pass and come out bit for bit as they went in."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    net(torch.randn(5, 3)).sum().backward()
    net[0].bias.grad[0], net[1].weight.grad[0, 1] = 3e38, 1e-45  # finite extremes
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    trainer = SimpleNamespace(global_step=7, current_epoch=1, checkpoint_callback=None)
    before = [p.grad.clone() for p in net.parameters()]
    DivergenceGuard().on_before_optimizer_step(trainer, net, optimizer)
    assert all(torch.equal(p.grad, b) for p, b in zip(net.parameters(), before, strict=True))
    net[1].weight.grad[0, 2] = bad
    assert not all_finite([p.grad for p in net.parameters()])
    with pytest.raises(DivergenceError, match=r"step 7 \(epoch 1\): non-finite gradient of 1\.weight"):
        DivergenceGuard().on_before_optimizer_step(trainer, net, optimizer)


@pytest.mark.slow
def test_sigterm_leaves_a_checkpoint_that_resumes(tmp_path):
    """SIGTERM during fit writes interrupted.ckpt; `fit --ckpt_path` from it runs to the end with exit code 0."""
    args = wgan_args(tmp_path, 1000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gan_lab", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("*/version_*/checkpoints/last.ckpt")):
        time.sleep(0.5)
    assert proc.poll() is None, proc.stdout.read()
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=120)[0]
    ckpt = run_dir(tmp_path) / "checkpoints" / "interrupted.ckpt"
    assert ckpt.is_file(), output
    assert "--ckpt_path" in output
    step = torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]
    assert step > 0
    epochs = torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"] + 2
    resumed = subprocess.run(
        [sys.executable, "-m", "gan_lab", *wgan_args(tmp_path / "again", epochs, f"--ckpt_path={ckpt}")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]


def test_corrupt_and_foreign_checkpoints_fail_in_one_line(tmp_path, capsys):
    """Truncated, non-PyTorch and wrong-family checkpoints give one `error:` line and exit 2 before training."""
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(b"PK\x03\x04 not really a zip")
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "gan_lab.gan.GAN"}}, foreign)
    other_lab = tmp_path / "lstm.ckpt"  # what rnn_lab's fit writes: no model class among its hyperparameters
    torch.save({"state_dict": {}, "hyper_parameters": {"cell": "lstm", "hidden_dim": 128}}, other_lab)
    folder = tmp_path / "a_run"
    (folder / "checkpoints").mkdir(parents=True)
    for path, reason in [
        (truncated, "corrupt, truncated"),
        (text, "corrupt, truncated"),
        (tmp_path / "missing.ckpt", "does not exist"),
        (foreign, "trained by gan_lab.gan.GAN"),
        (other_lab, "names no model class, so this CLI cannot rebuild it (its hyperparameters: cell, hidden_dim)"),
        (folder, f"checkpoint {folder} is a folder: give a checkpoint file (there is none under it)"),
    ]:
        with pytest.raises(SystemExit) as stop:
            gan_main(wgan_args(tmp_path, 1, f"--ckpt_path={path}"))
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and reason in err[0], err
    assert not list(tmp_path.glob("*/version_*")), "nothing may be written for a refused run"


def test_ckpt_path_last_or_best_says_which_checkpoints_exist(tmp_path):
    """`--ckpt_path best` where the run kept no best checkpoint names the ones it has; with none, it says so."""
    from lab.checkpoint import find_checkpoint
    from lab.errors import LabError

    run = tmp_path / "wgan-default-s0"
    (run / "version_0" / "checkpoints").mkdir(parents=True)
    with pytest.raises(LabError, match=r"no best-\*\.ckpt under .*nor any other checkpoint .* train it first"):
        find_checkpoint(run, "best")
    (run / "version_0" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(LabError, match=r"no best-\*\.ckpt .*it holds version_0/checkpoints/last\.ckpt"):
        find_checkpoint(run, "best")
    assert find_checkpoint(run, "last") == run / "version_0" / "checkpoints" / "last.ckpt"


# Short runs (2 epochs of 6 batches, configs/tiny.yaml, metrics and images off) whose weights are checked two ways:
# bit for bit between two runs on this machine, and against norms recorded here with a tolerance that holds across CPUs.
# A digest of the weights is exact on one CPU only: the same run gives other last bits under MKL_CBWR=COMPATIBLE, AVX2,
# AVX512 or ATEN_CPU_CAPABILITY=default (other kernels, other reduction orders), so it cannot be recorded.
# The Unrolled run keeps the objective and loader stacking of when its values were first recorded, the WGAN-GP one the
# recipe of then (Adam 1e-4, no weight average); both train alike with today's defaults.
RECORDED_WITH = {
    "mixtures/ring.yaml+mixtures/unrolled.yaml": [
        "--model.init_args.objective=nonsaturating",
        "--data.init_args.batches_per_item=1",
    ],
    "gan/wgan.yaml": [f"--model.init_args.{net}_optimizer.init_args.lr=1e-4" for net in ("generator", "discriminator")]
    + ["--model.init_args.ema_decay=0", "--model.init_args.n_critic=5"],
}
# L2 norm of each net's weights after the short run (float64 sums), recorded under the default kernels on an AVX-512
# machine. MKL_CBWR=COMPATIBLE, MKL_CBWR=AVX2 and ATEN_CPU_CAPABILITY=default moved them by 1.6e-7 relative at most
# (54.028141 vs 54.028150), so 1e-5 leaves a 60-fold margin for other CPUs; a learning rate 5% higher moves the
# critic's norm by 2.4e-4, 24 times the tolerance.
RECORDED_NORMS = {
    "mixtures/ring.yaml+mixtures/unrolled.yaml": {"discriminator": 7.349179359924046, "generator": 6.747109669918928},
    "gan/wgan.yaml": {"discriminator": 16.084191898165795, "generator": 54.02814133878385},
}


def short_run_weights(configs: str, root: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict after the short recorded run of ``configs`` (one torch thread, as recorded)."""
    from conftest import CONFIGS

    files = [CONFIGS / "base.yaml", *(CONFIGS / name for name in configs.split("+")), CONFIGS / "tiny.yaml"]
    args = [f"--config={path}" for path in files] + [f"--run.root={root}", "--trainer.limit_train_batches=6",
            "--trainer.max_epochs=2", "--trainer.enable_checkpointing=false", f"--seed_everything={seed}",
            "--model.init_args.metrics_every_n_epochs=0", "--model.init_args.sample_every_n_epochs=0",
            *RECORDED_WITH.get(configs, [])]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the reduction order of a matmul depends on the thread count
    try:
        cli = build_gan(args)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    finally:
        torch.set_num_threads(threads)
    return {key: value.detach().cpu().clone() for key, value in cli.model.state_dict().items()}


def net_norms(weights: dict[str, torch.Tensor]) -> dict[str, float]:
    """L2 norm of the floating-point weights of each net (``generator.*``, ``discriminator.*``), in float64."""
    sums: dict[str, float] = {}
    for key, value in weights.items():
        net = key.split(".")[0]
        if net in ("generator", "discriminator") and value.is_floating_point():
            sums[net] = sums.get(net, 0.0) + float(value.double().pow(2).sum())
    return {net: total**0.5 for net, total in sorted(sums.items())}


@pytest.mark.slow
@pytest.mark.parametrize("configs", sorted(RECORDED_NORMS))
def test_same_seed_and_config_give_the_same_weights(configs, tmp_path, data_dir):
    """Two short runs with one seed and config end with bit-identical weights on this machine; another seed does not;
    the nets' weight norms match those recorded to 1e-5 relative (a tolerance that holds across CPUs)."""
    first = short_run_weights(configs, tmp_path / "a")
    again = short_run_weights(configs, tmp_path / "b")
    other = short_run_weights(configs, tmp_path / "c", seed=1)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[key], again[key]) for key in first), "the same seed and config changed the weights"
    assert not all(torch.equal(first[key], other[key]) for key in first), "another seed gave the same weights"
    norms = net_norms(first)
    assert norms == pytest.approx(RECORDED_NORMS[configs], rel=1e-5), norms
