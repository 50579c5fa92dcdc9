"""``python -m gan_lab``: Lightning's fit/validate/test/predict for every GAN family and the VAE, plus subcommands.

Extra subcommands are listed in ``COMMANDS`` as ``name -> "module:function"``; each function takes the remaining
argument list. They are imported only when run, so ``--help`` and ``fit`` stay fast: adding one is one line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

COMMANDS: dict[str, str] = {
    "sample": "gan_lab.sample:main",
    "evaluate": "gan_lab.evaluate:main",
    "report": "lab.report.page:main",
}
DESCRIPTIONS = {
    "sample": "images from a checkpoint: a PNG grid or a .pt tensor (--ckpt, --n, --out)",
    "evaluate": "scores of a checkpoint (--ckpt, written back into its run) or of saved samples (--samples FILE.pt)",
    "report": "one page comparing runs: curves, tables over seeds, sample grids (RUN_DIR... or --root)",
}


def lazy_command(target: str) -> Callable[[list[str]], object]:
    """A function that imports ``module:function`` on first call and runs it with the argument list."""

    def run(args: list[str]) -> object:
        module, _, function = target.partition(":")
        return getattr(importlib.import_module(module), function)(args)

    return run


def cli_options() -> dict:
    """How the CLI builds a GAN run: any LightningModule / DataModule by class_path, value range linked."""
    from pytorch_lightning import LightningDataModule, LightningModule

    from callbacks.guards import default_callbacks

    return {
        "model_class": LightningModule,
        "datamodule_class": LightningDataModule,
        "subclass_mode_model": True,
        "subclass_mode_data": True,
        "links": [("data.init_args.value_range", "model.init_args.value_range")],
        "trainer_defaults": {"callbacks": default_callbacks()},
    }


def build(args: list[str]):
    """The model, datamodule and trainer of ``fit`` arguments (without the subcommand), not yet run: a LabCLI."""
    from lab.cli import LabCLI

    return LabCLI(run=False, args=args, **cli_options())


def main(args: list[str] | None = None) -> None:
    from lab.cli import main as cli_main

    commands = {name: lazy_command(target) for name, target in COMMANDS.items()}
    cli_main(
        commands=commands,
        args=args,
        prog="python -m gan_lab",
        descriptions=DESCRIPTIONS,
        predict_hint="samples: python -m gan_lab sample --ckpt CKPT --n 64 --out grid.png",
        next_steps=[
            "python -m gan_lab sample --ckpt {ckpt} --n 64 --out {run}/samples.png   (a grid of 64 samples)",
            "python -m gan_lab evaluate --ckpt {ckpt}   (FID, KID, IS on 10,000 samples, written back into the run)",
            "python -m gan_lab report {run}   (curves, tables and grids on one page)",
        ],
        **cli_options(),
    )


if __name__ == "__main__":
    from lab.startup import pause_gc

    pause_gc()  # until the run's classes exist (lab.startup): about 1 s less start-up
    main()
