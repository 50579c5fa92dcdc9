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
    "report": "gan_lab.report:main",
}


def lazy_command(target: str) -> Callable[[list[str]], object]:
    """A function that imports ``module:function`` on first call and runs it with the argument list."""

    def run(args: list[str]) -> object:
        module, _, function = target.partition(":")
        return getattr(importlib.import_module(module), function)(args)

    return run


def main(args: list[str] | None = None) -> None:
    from pytorch_lightning import LightningDataModule, LightningModule

    from gan_lab.cli import main as cli_main

    cli_main(
        LightningModule,
        LightningDataModule,
        commands={name: lazy_command(target) for name, target in COMMANDS.items()},
        args=args,
        prog="python -m gan_lab",
        subclass_mode_model=True,
        subclass_mode_data=True,
        links=[("data.init_args.value_range", "model.init_args.value_range")],
    )


if __name__ == "__main__":
    main()
