"""``python -m rnn_lab fit|validate|test|gradient-flow ...``: the RNN half of the suite (the palindrome study is
an experiment: ``make experiment E=palindrome``)."""

from __future__ import annotations

import os

import torch


def _gradient_flow(args: list[str]) -> None:
    from rnn_lab.gradient_flow import main

    main(args)


COMMANDS = {"gradient-flow": _gradient_flow}


def cli_options() -> dict:
    """How the CLI builds an RNN run: the sequence classifier on palindromes."""
    from callbacks.guards import default_callbacks
    from datamodules.palindrome import PalindromeDataModule
    from rnn_lab.classifier import SequenceClassifier

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
    """The entry point; ``args`` defaults to the command line. ``gradient-flow`` starts without
    Lightning's CLI (seconds sooner, and a bad argument is refused before it loads)."""
    import sys

    from lab.startup import resume_gc

    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] in COMMANDS:
        resume_gc()  # a command of its own runs with the collector on
        COMMANDS[argv[0]](argv[1:])
        return
    from lab.cli import main

    descriptions = {"gradient-flow": "||dL/dh_t|| over time for RNN and LSTM per recurrent init, as a PNG"}
    main(
        commands=COMMANDS,
        args=args,
        prog="python -m rnn_lab",
        descriptions=descriptions,
        predict_hint="a checkpoint's accuracy: python -m rnn_lab test --ckpt_path CKPT ...",
        next_steps=[
            "python -m rnn_lab test --config {run}/config.yaml --ckpt_path {ckpt}   (test accuracy, into this run)",
        ],
        **cli_options(),
    )


main = run  # both labs' entry points answer to ``<lab>.__main__.main`` (the experiment launcher resolves through it)


if __name__ == "__main__":
    # The recurrent matmuls are small (B=128, H=128): a second thread gains little alone and costs up to 10x when
    # other processes share the cores (measured). OMP_NUM_THREADS overrides.
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)
    from lab.startup import pause_gc

    pause_gc()  # until the run's classes exist (lab.startup): about 1 s less start-up
    run()
