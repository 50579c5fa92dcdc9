"""Run loggers (CSV always, W&B offline unless a key exists, TensorBoard on request) and media publishing.

``publish_png`` is the one way the suite sends a picture to its loggers: the PNG written on disk is what W&B gets
(by path: wandb 0.31 renders a float tensor in [0, 1] as an all-black image) and what TensorBoard gets (decoded to
uint8), at the step Lightning gives the scalars of the same epoch.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

# W&B summary columns of the headline metrics (best and last); define_metric needs exact names (globs set no summary).
WANDB_SUMMARIES = {
    "val/fid": "min,last",
    "val/kid": "min,last",
    "val/fid_inception": "min,last",
    "val/is": "max,last",
    "val/is_inception": "max,last",
    "val/classes_covered": "max,last",
    "val/modes": "max,last",
    "val/modes_gated": "max,last",
    "val/hq_percent": "max,last",
    "val/acc": "max,last",
}


def wandb_key_available() -> bool:
    """True when W&B can log online without asking: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_offline() -> bool:
    """True when runs log offline: no API key and no explicit ``WANDB_MODE``; sets the mode so nothing prompts."""
    offline = not wandb_key_available() and not os.environ.get("WANDB_MODE")
    if offline:
        os.environ["WANDB_MODE"] = "offline"  # an explicit mode keeps wandb from ever asking for a login
    return offline or os.environ.get("WANDB_MODE") in ("offline", "dryrun")


def make_wandb_logger(save_dir: str, name: str, project: str, group: str, tags: list[str], **kwargs: Any) -> Any:
    """A WandbLogger that never prompts: offline (one line says how to sync) unless a key or WANDB_MODE is set."""
    from pytorch_lightning.loggers import WandbLogger

    forced = not wandb_key_available() and not os.environ.get("WANDB_MODE")  # offline by the suite, not the user
    offline = wandb_offline()
    os.environ.setdefault("WANDB_SILENT", "true")  # wandb's banner and history: the run's summary says what matters
    if forced:
        print(
            f"W&B: no API key, logging offline under {save_dir}/wandb/; upload later with "
            f"`wandb sync {save_dir}/wandb/offline-run-*` (set WANDB_API_KEY or WANDB_MODE to change this)."
        )
    logger = WandbLogger(project=project, name=name, group=group, tags=tags, save_dir=save_dir, offline=offline,
                         **kwargs)  # fmt: skip
    init = getattr(logger, "_wandb_init", {})  # Lightning 2.6 passes anonymous=None, which wandb 0.31 warns about
    if init.get("anonymous") is None:
        init.pop("anonymous", None)
    return logger


def finish_wandb() -> None:
    """Ends the current W&B run, if any: Lightning leaves it open after ``fit``, so its files may be unflushed and its
    id stays "in use" for a moment after the process ends (a resumed fit with that id is then refused)."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def scalar_step(trainer: Any) -> int:
    """The step Lightning gives the scalars logged at the end of this epoch (``val/fid`` ...): training batches
    that stepped, not ``trainer.global_step`` (optimizer steps: 2 or more per GAN batch)."""
    return max(trainer.fit_loop.epoch_loop._batches_that_stepped - 1, 0)


def publish_png(trainer: Any, key: str, path: Path, caption: str = "") -> None:
    """Adds the PNG at ``path`` to every active logger that takes images (W&B, TensorBoard) at ``scalar_step``."""
    from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

    step = scalar_step(trainer)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=step, caption=[caption or path.name])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, read_png(path), global_step=step, dataformats="HWC")


def read_png(path: Path) -> Any:
    """The pixels of a PNG as a uint8 array (H, W, C), alpha dropped."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def log_group_table(group: str, save_dir: Path, rows: list[dict[str, Any]], project: str = "gan-rnn-lab") -> None:
    """One W&B run (job type ``summary``) in ``group`` holding ``<group>/final_metrics``: a table with a row per run
    (seed, family, variant and every final metric), so a dashboard can group and filter without custom code."""
    import wandb

    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    data = [[row.get(key) if isinstance(row.get(key), int | float | str) else str(row.get(key)) for key in columns]
            for row in rows]  # fmt: skip
    wandb_offline()
    run = wandb.init(project=project, group=group, job_type="summary", name=f"{group}-summary", dir=str(save_dir),
                     reinit="create_new")  # fmt: skip
    run.log({f"{group}/final_metrics": wandb.Table(columns=columns, data=data)})
    run.finish()


def resumable_csv_logger(save_dir: str, name: str, version: int | None) -> Any:
    """A CSVLogger; when it continues an existing version (a resumed fit), the rows already in its metrics.csv are
    kept (Lightning's own logger deletes them when it opens the folder)."""
    import csv

    from pytorch_lightning.loggers import CSVLogger

    class ResumableCSVLogger(CSVLogger):
        @property
        def experiment(self) -> Any:
            if self._experiment is not None:
                return self._experiment
            path = Path(self.log_dir) / "metrics.csv"
            previous = path.read_text() if version is not None and path.is_file() else ""
            experiment = CSVLogger.experiment.fget(self)  # type: ignore[attr-defined]
            if previous:
                path.write_text(previous)
                experiment.metrics_keys = next(csv.reader([previous.splitlines()[0]]))
            return experiment

    return ResumableCSVLogger(save_dir=save_dir, name=name, version=version)


def write_back(version_dir: Path, metrics: dict[str, float], project: str = "gan-rnn-lab") -> list[str]:
    """Adds ``metrics`` to the run a checkpoint came from: a row of its metrics.csv (what ``report`` reads) and, when
    the run logged to W&B, that run's summary (the run resumed by its id, offline too). Returns what was updated."""
    import csv

    import wandb

    updated = []
    table = version_dir / "metrics.csv"
    if table.is_file():
        with open(table, newline="") as handle:
            rows = list(csv.DictReader(handle))
        step = max((int(row["step"]) for row in rows if row.get("step")), default=0)
        rows.append({**{key: str(value) for key, value in metrics.items()}, "step": str(step)})
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with open(table, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        updated.append(str(table))
    saved = version_dir / "wandb_run_id"
    if saved.is_file():
        wandb_offline()
        run = wandb.init(project=project, id=saved.read_text().strip(), resume="allow", dir=str(version_dir.parents[1]))
        run.summary.update(metrics)
        run.finish()
        updated.append(f"W&B run {run.id}")
    return updated
