"""The shared CLI helpers: one-line parser messages and W&B key detection."""

import pytest

from lab.cli import shorten_parser_message as _shorten_parser_message
from lab.loggers import wandb_key_available


def test_nested_parser_message_becomes_one_line():
    """jsonargparse's nested messages keep the key and the final reason on one line."""
    message = (
        'Parser key "model":\n  Problem with given class_path "gan_lab.WGANGP":\n'
        "    - Parser key \"latent_dim\":\n      Expected a <class 'int'>. Got value: abc"
    )
    short = _shorten_parser_message(message)
    assert short == "key \"latent_dim\": expected int, got 'abc'"
    unknown = (
        'Parser key "model":\n  Does not validate against any of the Union subtypes\n  Errors:\n'
        "    - Problem with given class_path 'gan_lab.wgan.WGANGP':\n        Parser key \"generator\":\n"
        "          Problem with given class_path 'gan_lab.nets.mlp.MLPGenerator':\n"
        "            Option 'latent_dimm' is not accepted\n    - Expected a <class 'NoneType'>"
    )
    assert (
        _shorten_parser_message(unknown)
        == 'unknown key "latent_dimm" for gan_lab.nets.mlp.MLPGenerator (check its spelling)'
    )


def test_wandb_key_from_environment(monkeypatch, tmp_path):
    """An API key in the environment counts; no key and no netrc does not."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert not wandb_key_available()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_key_available()


def test_find_checkpoint_picks_the_newest_version_and_names_the_folder(tmp_path):
    """`last` and `best` resolve in the newest version that has them; a missing one is a LabError naming the folder."""
    import pytest

    from lab.checkpoint import find_checkpoint
    from lab.errors import LabError

    for version, names in ((0, ["last.ckpt", "best-epoch=001.ckpt"]), (1, ["last.ckpt"])):
        folder = tmp_path / "run" / f"version_{version}" / "checkpoints"
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_text("x")
    assert find_checkpoint(tmp_path / "run", "last") == tmp_path / "run" / "version_1" / "checkpoints" / "last.ckpt"
    assert find_checkpoint(tmp_path / "run", "best").name == "best-epoch=001.ckpt"
    with pytest.raises(LabError, match="no best-\\*.ckpt under .*other"):
        find_checkpoint(tmp_path / "other", "best")


def test_only_the_named_subcommands_parser_is_built(monkeypatch, capsys):
    """``fit ...`` builds fit's parser alone (each costs about 0.3 s); ``--help`` still builds and lists all three
    that the suite offers."""
    import pytest

    from gan_lab.__main__ import main
    from lab.cli import LabCLI

    built = set()
    original = LabCLI.subcommands

    def record(self):  # ours, which Lightning asks for the subcommands whose parsers it builds
        wanted = original(self)
        built.update(wanted)
        return wanted

    monkeypatch.setattr(LabCLI, "subcommands", record)
    with pytest.raises(SystemExit):  # --print_config prints and exits
        main(["fit", "--config", "configs/base.yaml", "--config", "configs/tiny.yaml", "--print_config"])
    assert built == {"fit"} and "trainer:" in capsys.readouterr().out
    built.clear()
    with pytest.raises(SystemExit):
        main(["--help"])
    assert built == {"fit", "validate", "test"}  # predict is not offered
    assert "{fit,validate,test}" in capsys.readouterr().out


def test_start_up_runs_without_the_collector_and_training_with_it(tmp_path):
    """``pause_gc`` (the entry points' first call) keeps the cyclic collector off through set-up; the CLI restarts it
    once the run's classes exist, with everything alive then frozen; without a pause, nothing changes."""
    import gc

    from gan_lab.__main__ import build
    from lab.startup import pause_gc, resume_gc

    frozen = gc.get_freeze_count()
    resume_gc()  # no pause: a run started in-process keeps the collector as it is
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    configs = ("base.yaml", "mixtures/ring.yaml", "mixtures/gan.yaml", "tiny.yaml")
    pause_gc()
    try:
        assert not gc.isenabled()
        build([*(f"--config=configs/{name}" for name in configs), f"--run.root={tmp_path}"])
        assert gc.isenabled() and gc.get_freeze_count() > frozen + 100_000  # Lightning's modules among them
    finally:
        gc.unfreeze()
        gc.enable()


@pytest.mark.parametrize("lab", ["gan_lab", "rnn_lab"])
def test_no_subcommand_lists_every_subcommand_with_one_line_each(lab):
    """`python -m <lab>` alone prints every subcommand (Lightning's that the suite offers and the lab's own) with one
    line each on stderr and exits 2; `--help` starts with the same list; predict is refused in one line."""
    from conftest import run_module

    alone = run_module(lab, timeout=120)
    lines = alone.stderr.strip().splitlines()
    names = [line.split()[0] for line in lines[1:]]
    own = ["sample", "evaluate", "report"] if lab == "gan_lab" else ["gradient-flow"]
    assert alone.returncode == 2 and lines[0].startswith(f"usage: python -m {lab} <command>")
    assert names == ["fit", "validate", "test", *own] and all(len(line.split()) > 3 for line in lines[1:])
    helped = run_module(lab, "--help", timeout=120)
    assert helped.returncode == 0 and helped.stdout.startswith("\n".join(lines))
    refused = run_module(lab, "predict", timeout=120)
    err = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(err) == 1 and err[0].startswith(f"error: python -m {lab} predict is not")


def test_run_root_and_default_root_dir_are_checked_before_anything_is_written(tmp_path, capsys):
    """--run.root that is a file, or a place that takes no files, and --trainer.default_root_dir (which the suite does
    not use: runs go to --run.root) each give one error line and exit 2 before anything is written."""
    from gan_lab.__main__ import main

    afile = tmp_path / "afile"
    afile.write_text("x")
    base = [
        "fit",
        "--config",
        "configs/base.yaml",
        "--config",
        "configs/gan/wgan.yaml",
        "--config",
        "configs/tiny.yaml",
    ]
    for extra, phrase in [
        ([f"--run.root={afile}"], f"--run.root {afile}: is a file, not a folder"),
        (["--run.root=/proc/runs"], "--run.root /proc/runs: cannot write there"),
        ([f"--run.root={tmp_path}/runs", f"--trainer.default_root_dir={tmp_path}/elsewhere"],
         "--trainer.default_root_dir is not used here: runs go to --run.root"),
    ]:  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            main([*base, *extra])
        (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert stop.value.code == 2 and line.startswith("error: ") and phrase in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
