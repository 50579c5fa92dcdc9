"""The command-line base shared by ``python -m gan_lab`` and ``python -m rnn_lab``.

``LabCLI`` is a LightningCLI that adds what every experiment of the suite needs:

- a ``run`` argument group (name, variant, tags, output root, W&B and TensorBoard on/off) from which it builds the
  loggers: a CSV logger always (it fixes the run directory ``<root>/<family>-<variant>-s<seed>/version_N``), a W&B
  logger, offline unless an API key exists, so that nothing ever waits on a login prompt, and TensorBoard on request;
- one-line errors and exit status 2 for bad configs, bad values and missing files, before anything is written: the
  cause a constructor raised, unwrapped from the config parser's Union/Namespace text;
- extra subcommands (``sample``, ``sweep``, ...) dispatched by ``main`` next to Lightning's fit/validate/test.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pytorch_lightning import LightningDataModule, LightningModule, Trainer
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import Logger, TensorBoardLogger, WandbLogger

from lab.checkpoint import checkpoint_callback, checkpoint_class, find_checkpoint, read_checkpoint, state_dict_mismatch
from lab.console import ParameterSummary, quiet_lightning, run_summary
from lab.errors import INPUT_ERRORS, DivergenceError, LabError, cause_text, check_output_folder, fail
from lab.loggers import WANDB_SUMMARIES, finish_wandb, make_wandb_logger, resumable_csv_logger, wandb_offline
from lab.parse_errors import OneLineErrorParser, shorten_parser_message  # noqa: F401 (tests)
from lab.paths import run_dir
from lab.startup import resume_gc
from lab.usage import LIGHTNING_COMMANDS, offer

# Manual-optimization modules run under these instead of Lightning's DDP wrapper (lab/strategy.py).
DDP_TO_GRADIENT_SYNC = {"ddp": "gan_ddp", "ddp_spawn": "gan_ddp_spawn"}

# ckpt_path values that Lightning resolves itself rather than reading a file.
LIGHTNING_CKPT_ALIASES = ("last", "best", "hpc", "registry")


class SaveConfigToLoggers(SaveConfigCallback):
    """Writes config.yaml in the run directory (Lightning's behaviour), sends the config and summaries to W&B and
    keeps the W&B run id in the run directory (``wandb_run_id``), so a resumed fit continues the same W&B run."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        wandb_loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if not wandb_loggers:
            return  # config.yaml is written already; a second dump costs a ring run about 0.2 s for nothing
        resolved = yaml.safe_load(self.parser.dump(self.config, skip_none=False, format="yaml"))
        for logger in wandb_loggers:
            (run_dir(trainer) / "wandb_run_id").write_text(logger.experiment.id + "\n")
            logger.experiment.config.update(resolved, allow_val_change=True)
            for key, summary in WANDB_SUMMARIES.items():
                logger.experiment.define_metric(key, step_metric="trainer/global_step", summary=summary)


class LabCLI(LightningCLI):
    """LightningCLI with the suite's run naming, loggers and one-line input errors.

    Args:
        links: ``(source, target)`` pairs of ``parser.link_arguments`` (facts shared by data and model).
        *args, **kwargs: as LightningCLI.
    """

    def __init__(
        self, *args: Any, links: Sequence[tuple[str, str]] = (), next_steps: Sequence[str] = (), **kwargs: Any
    ) -> None:
        from lab.strategy import register

        quiet_lightning()
        self._next_steps = tuple(next_steps)  # printed after fit, {ckpt} and {run} filled in (lab.console)
        register()  # gan_ddp / gan_ddp_spawn, where a CLI is built (never on import)
        logging.getLogger("lightning_fabric.utilities.seed").setLevel(logging.WARNING)  # no "Seed set to 0" line
        self._links = tuple(links)
        given = list(sys.argv[1:] if kwargs.get("args") is None else kwargs["args"])
        self._wanted = given[0] if given and given[0] in LightningCLI.subcommands() else None
        kwargs.setdefault("parser_class", OneLineErrorParser)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("save_config_callback", SaveConfigToLoggers)
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]  # Lightning's is a staticmethod
        """Lightning's subcommands, or only the one the arguments name: a subcommand's parser takes about 0.3 s to
        build (the Trainer's and the classes' signatures), and ``fit`` needs none of the other three. ``--help``
        and an unknown subcommand still see all four."""
        every = {name: keys for name, keys in LightningCLI.subcommands().items() if name in LIGHTNING_COMMANDS}
        return {self._wanted: every[self._wanted]} if self._wanted in every else every

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        kwargs.setdefault("allow_abbrev", False)  # a misspelt key that is a prefix of a real one must not pass
        return super().init_parser(**kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        group = parser.add_argument_group("run", description="Run naming and logging")
        group.add_argument("--run.name", type=str | None, default=None, help="Run name (default family-variant-sSEED)")
        group.add_argument("--run.variant", type=str, default="default", help="Variant label used in the run name")
        group.add_argument("--run.root", type=str, default="runs", help="Folder that holds every run directory")
        group.add_argument("--run.wandb", type=bool, default=True, help="Also log to Weights & Biases")
        group.add_argument("--run.tensorboard", type=bool, default=False, help="Also log to TensorBoard")
        group.add_argument("--run.project", type=str, default="gan-rnn-lab", help="W&B project")
        group.add_argument("--run.group", type=str | None, default=None, help="W&B group (default: the family)")
        group.add_argument("--run.job_type", type=str | None, default=None, help="W&B job type (default: variant)")
        group.add_argument("--run.tags", type=list[str], default=[], help="W&B tags")
        group.add_argument("--run.wandb_id", type=str | None, default=None, help="continue this W&B run (its id)")
        group.add_argument("--run.log_model", type=bool, default=False, help="keep checkpoints as W&B artifacts")
        for source, target in self._links:
            parser.link_arguments(source, target)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        run = (self.config[subcommand] if subcommand else self.config).get("run")
        if run.wandb_id and run.wandb and wandb_offline():
            if not list(Path(run.root, "wandb").glob(f"offline-run-*-{run.wandb_id}")):
                fail(f"--run.wandb_id {run.wandb_id}: no offline W&B run with that id under {run.root}/wandb/")
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
            if expected and not trained:  # a model chosen by class_path needs a checkpoint that names its class
                try:
                    checkpoint_class(Path(ckpt_path), self._checkpoint)
                except LabError as err:
                    fail(str(err))

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except INPUT_ERRORS as err:
            fail(cause_text(err))
        resume_gc()  # the set-up's objects live as long as the process: the collector leaves them from here on

    def _check_datamodule(self) -> None:
        """The model sees its data before the trainer is built: it may refuse it, and what the data declares (what
        its samples are scored by) may pick the model's metrics and its best checkpoint's monitor."""
        check = getattr(self.model, "check_datamodule", None)
        if callable(check) and self.datamodule is not None:
            try:
                check(self.datamodule)
            except INPUT_ERRORS as err:
                fail(cause_text(err))

    def after_instantiate_classes(self) -> None:
        checkpoint = getattr(self, "_checkpoint", None)
        if checkpoint is not None:
            problem = state_dict_mismatch(self.model.state_dict(), checkpoint["state_dict"])
            if problem:
                fail(f"checkpoint {self.config[self.subcommand].ckpt_path} does not fit this model: {problem}")

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Trainer:
        from pytorch_lightning.callbacks import ModelCheckpoint, ModelSummary

        self._check_datamodule()
        given = [*callbacks, *(config.get("callbacks") or [])]
        if config.get("enable_checkpointing") is not False and not any(isinstance(c, ModelCheckpoint) for c in given):
            monitor = getattr(self.model, "checkpoint_monitor", None)  # the model's, from what its data declares
            interval = getattr(self.datamodule, "checkpoint_min_interval_s", 0.0)  # tiny epochs: fewer writes
            callbacks.append(checkpoint_callback(monitor, interval))
        if config.get("enable_model_summary") is not False and not any(isinstance(c, ModelSummary) for c in given):
            callbacks.append(ParameterSummary())
        return super()._instantiate_trainer(config, callbacks)

    def resume_version(self) -> int | None:
        """For ``--ckpt_path last|best`` (resolved here to a file of this run's newest version) or a checkpoint file
        of this run: the version it belongs to, which ``fit`` continues and ``validate`` / ``test`` write into (same
        metrics.csv, same W&B run: ``report`` shows one run with its test metrics)."""
        subcommand = self.subcommand
        ckpt = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt:
            return None
        folder = Path(self._get(self.config, "run").root) / self.run_name()
        if ckpt in ("last", "best"):
            try:
                path = find_checkpoint(folder, ckpt)
            except LabError as err:
                fail(str(err))
            self.config_init[subcommand]["ckpt_path"] = str(path)
            self._checkpoint = read_checkpoint(path)
        else:
            path = Path(ckpt)
        version = path.resolve().parent.parent
        if version.parent == folder.resolve() and version.name.startswith("version_"):  # fit, validate, test
            return int(version.name.split("_")[1])
        return None

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = self._get(self.config_init, "trainer", default={})
        run = self._get(self.config, "run")
        if trainer_config.get("default_root_dir") is not None:
            fail(f"--trainer.default_root_dir is not used here: runs go to --run.root (now {run.root}), each in "
                 f"<root>/{self.run_name()}/version_N; set --run.root instead")  # fmt: skip
        self._version = self.resume_version()  # a checkpoint that is not there is refused before the folder is made
        try:
            check_output_folder(run.root, "--run.root")
        except LabError as err:
            fail(str(err))
        logger = trainer_config.get("logger")
        if logger is not False:
            # ours first (the CSV logger fixes the run directory), a user's loggers added after them, never instead
            extra = [] if logger in (None, True) else list(logger) if isinstance(logger, list) else [logger]
            kwargs["logger"] = self._make_loggers() + extra
        # Without loggers, config.yaml and checkpoints still go to the run's folder, never the current directory.
        kwargs["default_root_dir"] = str(Path(run.root) / self.run_name())
        strategy = trainer_config.get("strategy")
        if isinstance(strategy, str) and not self.model.automatic_optimization and strategy in DDP_TO_GRADIENT_SYNC:
            # Lightning's DDP wrapper cannot serve several backwards per step (see lab/strategy.py).
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
        return f"{self.family()}-{run.variant}-s{self._get(self.config, 'seed_everything')}"

    def _make_loggers(self) -> list[Logger]:
        run = self._get(self.config, "run")
        name = self.run_name()
        version = self._version
        loggers: list[Logger] = [resumable_csv_logger(run.root, name, version)]
        if run.tensorboard:
            loggers.append(TensorBoardLogger(save_dir=run.root, name=name, version=loggers[0].version))
        if run.wandb:
            family = self.family()
            dataset = type(self.datamodule).__name__.removesuffix("DataModule").lower()
            declared = getattr(self.model, "wandb_tags", ())  # what the model says it is made of (e.g. mlp)
            tags = list(dict.fromkeys(t for t in (family, *declared, dataset, *run.tags) if t))
            wandb_id = run.wandb_id or self._previous_wandb_id(Path(loggers[0].log_dir), version)
            extra = {"id": wandb_id, "resume": "allow"} if wandb_id else {}
            group, job_type = run.group or family, run.job_type or run.variant
            loggers.append(
                make_wandb_logger(run.root, name, run.project, group, tags, job_type=job_type,
                                  log_model=run.log_model, **extra)
            )  # fmt: skip
        return loggers

    @staticmethod
    def _previous_wandb_id(log_dir: Path, version: int | None) -> str | None:
        """The W&B run id that a resumed version logged to (None for a new version)."""
        saved = log_dir / "wandb_run_id"
        return saved.read_text().strip() if version is not None and saved.is_file() else None

    def before_fit(self) -> None:
        if self.trainer.is_global_zero and self.trainer.loggers:
            print(f"Run directory: {run_dir(self.trainer)}")

    def after_fit(self) -> None:
        if self.trainer.is_global_zero and self.trainer.loggers and not self.trainer.fast_dev_run:
            print(run_summary(self.trainer, run_dir(self.trainer), self._next_steps))


def main(
    model_class: type[LightningModule] | None,
    datamodule_class: type[LightningDataModule] | None,
    commands: dict[str, Callable[[list[str]], Any]] | None = None,
    args: list[str] | None = None,
    prog: str = "",
    descriptions: dict[str, str] | None = None,
    predict_hint: str = "",
    **cli_kwargs: Any,
) -> None:
    """Runs a subcommand: one of ``commands`` by name, else Lightning's fit/validate/test/predict.

    Args:
        model_class: the LightningModule class (or base class, with ``subclass_mode_model=True``).
        datamodule_class: the DataModule class (or base class, with ``subclass_mode_data=True``).
        commands: extra subcommands, each a function taking the remaining argument list.
        args: the argument list (default ``sys.argv[1:]``).
        prog: the program name shown in help.
        descriptions: one line per extra subcommand, listed with Lightning's when none is given and in ``--help``.
        predict_hint: what to run instead of Lightning's ``predict`` (which the suite does not offer).
        **cli_kwargs: passed to ``LabCLI``.
    """
    argv = list(sys.argv[1:] if args is None else args)
    # Lightning 2.6 calls a torch pytree API that torch 2.14 deprecates, once per run: not the user's concern
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # the best checkpoint's metric (e.g. val/fid every 5 epochs) is absent on the epochs between: expected, not news
    warnings.filterwarnings("ignore", message=r".*ModelCheckpoint\(monitor=.*could not find the monitored key.*")
    # the suite's runners (experiments, results, sweeps) call the CLI with an argument list on purpose
    warnings.filterwarnings("ignore", message=r".*LightningCLI's args parameter is intended to run from within.*")
    commands = commands or {}
    if argv and argv[0] in commands:
        resume_gc()  # a command of its own runs with the collector on
        commands[argv[0]](argv[1:])
        return
    offer(argv, prog, {**LIGHTNING_COMMANDS, **(descriptions or {})}, predict_hint)
    try:
        LabCLI(model_class, datamodule_class, args=args, parser_kwargs={"prog": prog} if prog else None, **cli_kwargs)
    except DivergenceError as err:
        fail(str(err), code=1)
    finally:
        finish_wandb()
