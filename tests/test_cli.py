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
