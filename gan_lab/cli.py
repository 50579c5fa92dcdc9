"""The command-line entry shared by ``python -m gan_lab`` and ``python -m rnn_lab``.

``LabCLI`` is a LightningCLI that adds what every experiment of the suite needs:

- a ``run`` argument group (name, variant, tags, output root, W&B on/off) from which it builds the loggers: a
  CSV logger always (it fixes the run directory ``<root>/<family>-<variant>-s<seed>/version_N``) and a W&B logger,
  offline unless an API key exists, so that nothing ever waits on a login prompt;
- one-line errors and exit status 2 for bad configs, bad values and missing files, before any training starts;
- extra subcommands (``sample``, ``sweep``, ...) dispatched by ``main`` next to Lightning's fit/validate/test.
"""

from __future__ import annotations

import netrc
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from pytorch_lightning import LightningDataModule, LightningModule, Trainer
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger
from torch import nn

from gan_lab.strategy import register as register_strategies

register_strategies()
# Manual-optimization modules run under these instead of Lightning's DDP wrapper.
DDP_TO_GRADIENT_SYNC = {"ddp": "gan_ddp", "ddp_spawn": "gan_ddp_spawn"}

# ckpt_path values that Lightning resolves itself rather than reading a file.
LIGHTNING_CKPT_ALIASES = ("last", "best", "hpc", "registry")

# Errors that mean "the input is wrong", raised by constructors while the CLI builds its objects.
INPUT_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, KeyError)


class LabError(ValueError):
    """An input error with a message meant for the user as it is (one line, no traceback)."""


def fail(message: str, code: int = 2) -> None:
    """Prints ``error: message`` as one line on stderr and exits with ``code``."""
    one_line = " ".join(str(message).split())
    sys.stderr.write(f"error: {one_line}\n")
    sys.exit(code)


class OneLineErrorParser(LightningArgumentParser):
    """A LightningArgumentParser whose parse errors are one line on stderr and exit status 2."""

    def error(self, message: str, ex: Exception | None = None):  # type: ignore[override]
        if not self.exit_on_error:
            return super().error(message, ex)
        fail(_shorten_parser_message(message))


def _shorten_parser_message(message: str) -> str:
    """One line from jsonargparse's nested messages: the unknown key or the expected type, with where it is."""
    text = str(message)
    keys = re.findall(r'[Kk]ey "([^"]+)"', text)
    classes = re.findall(r"class_path '([^']+)'", text)
    unknown = re.findall(r"(?:Option|option) '([^']+)'(?: is not accepted)?", text)
    if unknown and ("not accepted" in text or "does not accept" in text):
        owner = classes[-1] if classes else (keys[0] if keys else "")
        return f'unknown key "{unknown[-1]}"' + (f" for {owner}" if owner else "") + " (check its spelling)"
    expected = [name for name in re.findall(r"Expected a <class '([^']+)'>", text) if name != "NoneType"]
    if expected:
        given = re.search(r"(?:Given|Got) value: (.*)", text)
        key = keys[-1] if keys else "value"
        return f'key "{key}": expected {expected[0]}' + (f", got {given.group(1).strip()!r}" if given else "")
    return " ".join(line.strip(" -") for line in text.splitlines() if line.strip(" -"))


def wandb_key_available() -> bool:
    """True when W&B can log online without asking: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def make_wandb_logger(save_dir: str, name: str, project: str, group: str, tags: list[str]) -> Logger:
    """A WandbLogger that never prompts: offline (one line says how to sync) unless a key or WANDB_MODE is set."""
    offline = not wandb_key_available() and not os.environ.get("WANDB_MODE")
    if offline:
        # An explicit mode keeps wandb from ever asking for a login, with or without a terminal.
        os.environ["WANDB_MODE"] = "offline"
        print(
            f"W&B: no API key, logging offline under {save_dir}/wandb/; upload later with "
            f"`wandb sync {save_dir}/wandb/offline-run-*` (set WANDB_API_KEY or WANDB_MODE to change this)."
        )
    return WandbLogger(
        project=project, name=name, group=group, tags=tags, save_dir=save_dir, offline=offline, log_model=False
    )


# W&B summary columns of the headline metrics (best and last); define_metric needs exact names (globs set no summary).
WANDB_SUMMARIES = {
    "val/fid": "min,last",
    "val/fid_inception": "min,last",
    "val/is": "max,last",
    "val/is_inception": "max,last",
    "val/classes_covered": "max,last",
    "val/modes": "max,last",
    "val/acc": "max,last",
}


class SaveConfigToLoggers(SaveConfigCallback):
    """Writes config.yaml in the run directory (Lightning's behaviour), sends the config and summaries to W&B."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        resolved = yaml.safe_load(self.parser.dump(self.config, skip_none=False, format="yaml"))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(resolved, allow_val_change=True)
                for key, summary in WANDB_SUMMARIES.items():
                    logger.experiment.define_metric(key, step_metric="trainer/global_step", summary=summary)


def default_callbacks() -> list:
    """Callbacks every run gets: divergence guard, checkpoint on Ctrl-C/SIGTERM, RNG states in checkpoints."""
    from callbacks.guards import DivergenceGuard, InterruptCheckpoint, RNGStateCheckpoint

    return [DivergenceGuard(), InterruptCheckpoint(), RNGStateCheckpoint()]


class LabCLI(LightningCLI):
    """LightningCLI with the suite's run naming, loggers and one-line input errors."""

    def __init__(self, *args: Any, links: Sequence[tuple[str, str]] = (), **kwargs: Any) -> None:
        self._links = tuple(links)
        kwargs.setdefault("parser_class", OneLineErrorParser)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("save_config_callback", SaveConfigToLoggers)
        kwargs.setdefault("trainer_defaults", {})
        kwargs["trainer_defaults"].setdefault("callbacks", default_callbacks())
        super().__init__(*args, **kwargs)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        kwargs.setdefault("allow_abbrev", False)  # a misspelt key that is a prefix of a real one must not pass
        return super().init_parser(**kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        group = parser.add_argument_group("run", description="Run naming and logging")
        group.add_argument("--run.name", type=str | None, default=None, help="Run name (default family-variant-sSEED)")
        group.add_argument("--run.variant", type=str, default="default", help="Variant label used in the run name")
        group.add_argument("--run.root", type=str, default="runs", help="Folder that holds every run directory")
        group.add_argument("--run.wandb", type=bool, default=True, help="Also log to Weights & Biases")
        group.add_argument("--run.project", type=str, default="gan-rnn-lab", help="W&B project")
        group.add_argument("--run.tags", type=list[str], default=[], help="W&B tags")
        for source, target in self._links:
            parser.link_arguments(source, target)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in LIGHTNING_CKPT_ALIASES:
            try:
                self._checkpoint = read_checkpoint(ckpt_path)
            except LabError as err:
                fail(str(err))
            expected = self.config[subcommand].get("model", {}).get("class_path")
            trained = self._checkpoint.get("hyper_parameters", {}).get("_class_path")
            if expected and trained and expected != trained:
                fail(f"checkpoint {ckpt_path} was trained by {trained}, but the config builds {expected}")

    def after_instantiate_classes(self) -> None:
        checkpoint = getattr(self, "_checkpoint", None)
        if checkpoint is not None:
            problem = state_dict_mismatch(self.model.state_dict(), checkpoint["state_dict"])
            if problem:
                fail(f"checkpoint {self.config[self.subcommand].ckpt_path} does not fit this model: {problem}")

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except INPUT_ERRORS as err:
            fail(str(err) if isinstance(err, LabError) else f"{type(err).__name__}: {err}")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("logger") in (None, True):
            kwargs["logger"] = self._make_loggers()
        if trainer_config.get("default_root_dir") is None:
            # Without loggers, config.yaml and checkpoints still go to the run's folder, never the current directory.
            run = self._get(self.config, "run")
            kwargs["default_root_dir"] = str(Path(run.root) / self.run_name())
        strategy = trainer_config.get("strategy")
        if isinstance(strategy, str) and not self.model.automatic_optimization and strategy in DDP_TO_GRADIENT_SYNC:
            # Lightning's DDP wrapper cannot serve several backwards per step (see gan_lab/strategy.py).
            kwargs["strategy"] = DDP_TO_GRADIENT_SYNC[strategy]
            print(f"Strategy: {strategy} -> {kwargs['strategy']} (gradient all-reduce after each backward)")
        return super().instantiate_trainer(**kwargs)

    def family(self) -> str:
        """The model's ``family`` (run names, W&B group), else its class name in lower case."""
        return getattr(self.model, "family", type(self.model).__name__.lower())

    def run_name(self) -> str:
        run = self._get(self.config, "run")
        if run.name:
            return run.name
        family = self.family()
        seed = self._get(self.config, "seed_everything")
        return f"{family}-{run.variant}-s{seed}"

    def _make_loggers(self) -> list[Logger]:
        run: Namespace = self._get(self.config, "run")
        name = self.run_name()
        loggers: list[Logger] = [CSVLogger(save_dir=run.root, name=name)]
        if run.wandb:
            group = self.family()
            tags = [group, type(self.datamodule).__name__.removesuffix("DataModule").lower(), *run.tags]
            generator = getattr(self.model, "generator", None)
            if isinstance(generator, nn.Module) and type(generator).__module__.startswith("gan_lab.nets."):
                tags.insert(2, type(generator).__module__.rpartition(".")[2])  # the backbone: mlp, conv, mixture
            loggers.append(make_wandb_logger(run.root, name, run.project, group, list(dict.fromkeys(tags))))
        return loggers

    def before_fit(self) -> None:
        from callbacks import run_dir

        if self.trainer.is_global_zero and self.trainer.loggers:
            print(f"Run directory: {run_dir(self.trainer)}")


def main(
    model_class: type[LightningModule] | None,
    datamodule_class: type[LightningDataModule] | None,
    commands: dict[str, Callable[[list[str]], Any]] | None = None,
    args: list[str] | None = None,
    prog: str = "",
    **cli_kwargs: Any,
) -> None:
    """Runs a subcommand: one of ``commands`` by name, else Lightning's fit/validate/test/predict.

    Args:
        model_class: the LightningModule class (or base class, with ``subclass_mode_model=True``).
        datamodule_class: the DataModule class (or base class, with ``subclass_mode_data=True``).
        commands: extra subcommands, each a function taking the remaining argument list.
        args: the argument list (default ``sys.argv[1:]``).
        prog: the program name shown in help.
        **cli_kwargs: passed to ``LabCLI``.
    """
    argv = list(sys.argv[1:] if args is None else args)
    commands = commands or {}
    if argv and argv[0] in commands:
        commands[argv[0]](argv[1:])
        return
    if argv and argv[0] in ("-h", "--help"):
        extra = ", ".join(commands)
        print(f"{prog}: subcommands fit, validate, test, predict" + (f", {extra}" if extra else ""))
    from callbacks.guards import DivergenceError

    try:
        LabCLI(model_class, datamodule_class, args=args, parser_kwargs={"prog": prog} if prog else None, **cli_kwargs)
    except DivergenceError as err:
        fail(str(err), code=1)


def check_optimizer(factory: Callable[..., Any], name: str) -> None:
    """Builds the optimizer once on a dummy parameter so a bad setting (lr <= 0, betas outside [0, 1)) fails now."""
    import torch

    try:
        optimizer = factory([torch.nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}: {err}") from None
    lr = optimizer.param_groups[0].get("lr")
    if isinstance(lr, int | float) and lr <= 0:
        raise ValueError(f"{name}: learning rate must be > 0, got {lr}")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Loads a Lightning checkpoint safely (``weights_only=True``); raises LabError with one line when it cannot."""
    import torch

    ckpt = Path(path)
    if not ckpt.is_file():
        raise LabError(f"checkpoint {ckpt} does not exist")
    try:
        checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and tensor errors all mean the same thing to the user
        reason = " ".join(str(err).split()).split(". ")[0][:160]
        raise LabError(f"checkpoint {ckpt} is corrupt, truncated or not a PyTorch file ({reason})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise LabError(f"checkpoint {ckpt} is not a Lightning checkpoint (no state_dict)")
    return checkpoint


def state_dict_mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str:
    """A one-line description of the first difference in keys or shapes between two state dicts ('' if none)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        return f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
    for key, value in expected.items():
        if tuple(value.shape) != tuple(found[key].shape):
            return f"{key} has shape {tuple(found[key].shape)} in the checkpoint, {tuple(value.shape)} in the model"
    return ""


def check_output_path(path: str | os.PathLike, suffixes: Sequence[str]) -> Path:
    """Returns ``path`` as a Path after checking its folder exists and its suffix is one of ``suffixes``."""
    out = Path(path)
    if out.suffix not in suffixes:
        raise LabError(f"output {out} must end with one of {', '.join(suffixes)}")
    if not out.parent.is_dir():
        raise LabError(f"output folder {out.parent} does not exist")
    return out
