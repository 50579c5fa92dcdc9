"""`python -m rnn_lab` as users run it: every RNN config fits, bad inputs give one-line errors and exit 2."""

from pathlib import Path

import pytest
from conftest import CONFIGS, run_module

from rnn_lab.__main__ import run

RNN_CONFIGS = sorted((CONFIGS / "rnn").glob("*.yaml"))


def _base(config: Path, root: Path) -> list[str]:
    return ["--config", str(CONFIGS / "base.yaml"), "--config", str(config), "--config", str(CONFIGS / "tiny.yaml"),
            "--run.root", str(root)]  # fmt: skip


@pytest.mark.parametrize("config", RNN_CONFIGS, ids=lambda p: p.stem)
def test_every_rnn_config_fits_with_fast_dev_run(config, tmp_path):
    """fit runs one train and one validation batch for each configs/rnn/*.yaml, on CPU, in process."""
    run(["fit", *_base(config, tmp_path), "--trainer.fast_dev_run=true"])


@pytest.mark.slow
def test_manual_implementation_fits(tmp_path):
    """The hand-written cells train through the same CLI (implementation: manual)."""
    run(["fit", *_base(CONFIGS / "rnn" / "lstm.yaml", tmp_path), "--model.implementation=manual"])
    assert list(tmp_path.glob("lstm-tiny-s0/version_0/metrics.csv"))


@pytest.mark.slow
def test_fit_then_test_as_a_subprocess(tmp_path):
    """`python -m rnn_lab fit ...` exits 0 and writes metrics under the run name; `test` on its checkpoint exits 0
    and writes its metrics into the same run (no second version folder), after the training rows."""
    result = run_module("rnn_lab", "fit", *_base(CONFIGS / "rnn" / "lstm.yaml", tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "lstm-tiny-s0" / "version_0"
    assert "val/acc" in (run_dir / "metrics.csv").read_text()
    checkpoint = next(run_dir.glob("checkpoints/*.ckpt"))
    result = run_module(
        "rnn_lab", "test", *_base(CONFIGS / "rnn" / "lstm.yaml", tmp_path), "--ckpt_path", str(checkpoint)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["version_0"]
    text = (run_dir / "metrics.csv").read_text()
    assert "test/acc" in text and "val/acc" in text


@pytest.mark.slow
def test_bad_value_fails_in_a_subprocess_with_one_line(tmp_path):
    """A palindrome of length 1 stops `python -m rnn_lab fit` before training: exit 2, one `error:` line."""
    result = run_module("rnn_lab", "fit", *_base(CONFIGS / "rnn" / "lstm.yaml", tmp_path), "--data.seq_len=1")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "seq_len" in errors[0], result.stderr[-2000:]
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("--model.cell=lstn", "rnn, lstm, gru"),
        ("--model.implementation=cuda", "manual, torch"),
        ("--data.train_fraction=1.5", "train_fraction"),
        ("--data.batch_size=0", "batch_size"),
        ("--model.hidden_dim=abc", "hidden_dim"),
    ],
)
def test_bad_inputs_give_one_line_error_and_exit_2(override, words, tmp_path, capsys):
    """Misspelt choices, impossible sizes and wrong types: exit 2 with one `error:` line naming the problem."""
    with pytest.raises(SystemExit) as exit_info:
        run(["fit", *_base(CONFIGS / "rnn" / "lstm.yaml", tmp_path), override])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and words in err[0], err


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["gradient-flow", "--output", "plot.jpg"], ".png"),
        (["gradient-flow", "--seq_len", "1"], "--seq_len"),
    ],
)
def test_bad_subcommand_arguments_give_one_line_error(command, words, tmp_path, capsys, monkeypatch):
    """gradient-flow refuses bad arguments with exit 2 and one `error:` line, before any work."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run(command)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and words in err[0], err
    assert not (tmp_path / "runs").exists()


def test_while_a_trainer_runs_the_classifier_denormals_flush_to_zero_and_large_blocks_come_from_the_heap(tmp_path):
    """The RNN lab's CPU settings (bench/rnn_cpu.py): during fit a training step sees 1e-39 * 1 as 0 (flush-to-zero)
    and glibc serves a 100 MB block from its heap, where freed pages stay for the next step, not from a fresh mmap
    (mallinfo2's bytes in mapped blocks do not grow); when the trainer is done, IEEE arithmetic and glibc's defaults
    are back (the heap's freed pages returned to the system)."""
    import ctypes

    import torch
    from pytorch_lightning import Callback, Trainer

    from datamodules.palindrome import PalindromeDataModule
    from rnn_lab.classifier import SequenceClassifier, keep_freed_memory

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]  # fmt: skip

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Mallinfo2

    def settings() -> tuple[float, int, int]:
        """(1e-39 * 1, bytes asked, bytes mapped for a live block of them). The block is 100 MB more than the
        heap's free bytes (earlier fits in this worker may have left large free blocks there, which glibc would
        reuse whatever its settings), so it can only come from a fresh mmap or, with mmap off, from a grown heap."""
        size = libc.mallinfo2().fordblks + 100_000_000
        before = libc.mallinfo2().hblkhd
        block = torch.empty(size, dtype=torch.uint8)
        mapped = libc.mallinfo2().hblkhd - before
        del block
        return (torch.tensor([1e-39]) * 1.0).item(), size, mapped

    seen = []

    class Probe(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(settings())

    torch.set_flush_denormal(False)  # the process's defaults, whatever ran in this worker before
    keep_freed_memory(False)
    denormal, size, mapped = settings()
    assert denormal > 0 and mapped >= size  # IEEE, and the block mapped on its own
    trainer = Trainer(fast_dev_run=True, callbacks=[Probe()], logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(SequenceClassifier(hidden_dim=8), PalindromeDataModule(seq_len=6, num_samples=600, batch_size=32))
    assert [(flushed, heap_only) for flushed, _, heap_only in seen] == [(0.0, 0)]
    denormal, size, mapped = settings()
    assert denormal > 0 and size <= mapped < size + 2**20  # glibc's defaults: mapped on its own again
