"""``python -m rnn_lab fit|validate|test|sweep|gradient-flow ...``: the RNN half of the suite."""

from __future__ import annotations

import os

import torch

from callbacks.guards import default_callbacks
from datamodules.palindrome import PalindromeDataModule
from lab.cli import main
from rnn_lab.classifier import SequenceClassifier


def _sweep(args: list[str]) -> None:
    from rnn_lab.sweep import sweep_main

    sweep_main(args)


def _gradient_flow(args: list[str]) -> None:
    from rnn_lab.gradient_flow import main

    main(args)


def cli_options() -> dict:
    """How the CLI builds an RNN run: the sequence classifier on palindromes."""
    return {
        "model_class": SequenceClassifier,
        "datamodule_class": PalindromeDataModule,
        "links": [("data.one_hot", "model.one_hot")],  # the model's input format follows the data's
        "trainer_defaults": {"callbacks": default_callbacks()},
    }


def build(args: list[str]):
    """The model, datamodule and trainer of ``fit`` arguments (without the subcommand), not yet run: a LabCLI."""
    from lab.cli import LabCLI

    return LabCLI(run=False, args=args, **cli_options())


def run(args: list[str] | None = None) -> None:
    """The entry point; ``args`` defaults to the command line."""
    commands = {"sweep": _sweep, "gradient-flow": _gradient_flow}
    main(commands=commands, args=args, prog="python -m rnn_lab", **cli_options())


if __name__ == "__main__":
    # The recurrent matmuls are small (B=128, H=128): a second thread gains little alone and costs up to 10x when
    # other processes share the cores (measured). OMP_NUM_THREADS overrides.
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)
    run()
