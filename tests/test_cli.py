"""The shared CLI helpers: one-line parser messages and W&B key detection."""

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
    """``fit ...`` builds fit's parser alone (each costs about 0.3 s); ``--help`` still builds and lists all four."""
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
    assert built == {"fit", "validate", "test", "predict"}
    assert "{fit,validate,test,predict}" in capsys.readouterr().out


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
