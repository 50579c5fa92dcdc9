"""Reading runs for the report: each run's ``metrics.csv`` (CSVLogger), ``config.yaml`` and PNGs, no network."""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.errors import LabError

MARKER = "<!-- written by python -m gan_lab report -->"
# Headline metrics in display order: plotted by default when present (FID / IS first).
FID_IS = ("val/fid", "val/fid_inception", "val/is", "val/is_inception")
SKIP_DIRS = {"wandb", "checkpoints", "lightning_logs", "__pycache__"}
SEED_SUFFIX = re.compile(r"-s(\d+)$")
# Config keys that may differ between seeds of one group without making them different experiments.
SEED_KEYS = ("seed_everything", "run.name")


@dataclass
class Run:
    """One training run: the CSV rows of its version folder(s), its config and its images.

    Attributes:
        name: the run folder name, ``family-variant-s<seed>`` for runs of the CLI.
        versions: the ``version_N`` folders read, oldest first (several when a run was resumed).
        config: the resolved ``config.yaml`` of the latest version ({} when absent).
        rows: the CSV rows, numbers only (empty cells left out), in file order.
    """

    name: str
    versions: list[Path]
    config: dict[str, Any]
    rows: list[dict[str, float]]

    @property
    def path(self) -> Path:
        return self.versions[-1]

    @property
    def seed(self) -> int | None:
        match = SEED_SUFFIX.search(self.name)
        if match:
            return int(match.group(1))
        seed = self.config.get("seed_everything")
        return seed if isinstance(seed, int) else None

    @property
    def group(self) -> str:
        """The name without the ``-s<seed>`` suffix: runs of one group differ only in their seed."""
        return SEED_SUFFIX.sub("", self.name)

    def metric_keys(self) -> list[str]:
        return sorted({key for row in self.rows for key in row} - {"epoch", "step"})

    def per_epoch(self, key: str) -> bool:
        """True when ``key`` was logged at most once per epoch (epoch-end metrics such as ``val/fid``)."""
        epochs = [row.get("epoch", math.nan) for row in self.rows if key in row]
        return len(set(epochs)) == len(epochs) and not any(math.isnan(e) for e in epochs)

    def series(self, key: str, by_epoch: bool | None = None) -> tuple[list[float], list[float], str]:
        """(x, y, axis) of ``key``: x = epochs completed (axis ``epoch``) or the logged step (axis ``step``).

        ``by_epoch`` None: by epoch when ``key`` was logged once per epoch, else by step.
        """
        by_epoch = self.per_epoch(key) if by_epoch is None else by_epoch
        points = [(row.get("epoch", math.nan), row.get("step", math.nan), row[key]) for row in self.rows if key in row]
        if by_epoch:
            return [p[0] + 1 for p in points], [p[2] for p in points], "epoch"
        return [p[1] for p in points], [p[2] for p in points], "step"

    def final(self, key: str) -> float | None:
        """The last logged value of ``key`` (None if never logged)."""
        values = [row[key] for row in self.rows if key in row]
        return values[-1] if values else None

    def last(self, column: str) -> int | None:
        values = [row[column] for row in self.rows if column in row]
        return int(max(values)) if values else None

    def images(self) -> list[tuple[Path, Path]]:
        """Every PNG of the run as (path, path relative to its version folder)."""
        return [(png, png.relative_to(version)) for version in self.versions for png in version.rglob("*.png")]

    def sample_grid(self) -> Path | None:
        """The latest sample grid (PNGs whose path mentions ``sample``), by epoch number in the name, then mtime."""
        grids = [png for png, relative in self.images() if "sample" in str(relative).lower()]
        return max(grids, key=_latest_key) if grids else None

    def latest_images(self) -> dict[str, Path]:
        """The latest PNG of each kind (``interpolation/linear``, ``class_coverage`` ...), kinds sorted by name."""
        kinds: dict[str, list[Path]] = {}
        for png, relative in self.images():
            stem = re.sub(r"[_-]?(epoch|step)=\d+", "", relative.stem).strip("_-")
            kind = "/".join([*relative.parent.parts, stem] if stem else relative.parent.parts) or relative.stem
            kinds.setdefault(kind, []).append(png)
        return {kind: max(pngs, key=_latest_key) for kind, pngs in sorted(kinds.items())}


@dataclass
class FigureFolder:
    """A folder that holds its own figures and tables (the palindrome sweep, the gradient-flow plot)."""

    path: Path
    pngs: list[Path] = field(default_factory=list)
    markdown: list[Path] = field(default_factory=list)
    csvs: list[Path] = field(default_factory=list)


@dataclass
class Report:
    """What ``write_report`` wrote: the page, the plots and the run names drawn in each plot."""

    page: Path
    runs: list[Run]
    plots: dict[str, Path]
    plot_labels: dict[str, list[str]]
    samples: Path | None
    figures: list[FigureFolder]


def _latest_key(path: Path) -> tuple[list[int], float]:
    return [int(n) for n in re.findall(r"\d+", path.name)], path.stat().st_mtime


def _version_number(path: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", path.name)
    return int(match.group(1)) if match else -1


def read_metrics(csv_path: Path) -> list[dict[str, float]]:
    """The rows of a CSVLogger ``metrics.csv`` as dicts of floats; empty cells are left out."""
    with open(csv_path, newline="") as handle:
        rows = []
        for row in csv.DictReader(handle):
            numbers = {}
            for key, value in row.items():
                if key is None or value in (None, ""):
                    continue
                try:
                    numbers[key] = float(value)
                except ValueError:
                    continue
            rows.append(numbers)
    return rows


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.yaml"
    if not path.is_file():
        return {}
    loaded = yaml.safe_load(path.read_text())
    return loaded if isinstance(loaded, dict) else {}


def load_run(folder: Path) -> Run:
    """A run from its run folder (``<root>/<name>``, holding ``version_N``) or from one version folder.

    From a run folder the latest version is read; a resumed run (its first step after the last step of the version
    before it) is joined with the versions it continues, so its curves start at step 0.
    """
    if (folder / "metrics.csv").is_file():
        name = folder.parent.name if _version_number(folder) >= 0 else folder.name
        return Run(name, [folder], read_config(folder), read_metrics(folder / "metrics.csv"))
    versions = sorted((v for v in folder.glob("version_*") if (v / "metrics.csv").is_file()), key=_version_number)
    chain = [versions[-1]]
    rows = read_metrics(versions[-1] / "metrics.csv")
    for earlier in reversed(versions[:-1]):
        first = min((row["step"] for row in rows if "step" in row), default=0.0)
        earlier_rows = read_metrics(earlier / "metrics.csv")
        last = max((row["step"] for row in earlier_rows if "step" in row), default=math.inf)
        if first <= 0 or last >= first:
            break
        chain.insert(0, earlier)
        rows = earlier_rows + rows
    return Run(folder.name, chain, read_config(versions[-1]), rows)


def _is_report(folder: Path) -> bool:
    page = folder / "report.md"
    return page.is_file() and page.read_text(errors="replace").startswith(MARKER)


def _figure_folder(folder: Path) -> FigureFolder | None:
    """The folder as a FigureFolder when it holds PNG or markdown files itself (not only inside runs)."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    pngs = [p for p in files if p.suffix == ".png"]
    markdown = [p for p in files if p.suffix == ".md"]
    if not pngs and not markdown:
        return None
    return FigureFolder(folder, pngs, markdown, [p for p in files if p.suffix == ".csv"])


def _scan(folder: Path, depth: int) -> tuple[list[Run], list[FigureFolder]]:
    if any((v / "metrics.csv").is_file() for v in [folder, *folder.glob("version_*")]):
        return [load_run(folder)], []
    figures = _figure_folder(folder)
    runs: list[Run] = []
    folders: list[FigureFolder] = [figures] if figures is not None else []
    if depth > 0:
        for child in sorted(folder.iterdir()):
            skip = child.name in SKIP_DIRS or child.name.startswith(".") or _is_report(child)
            if child.is_dir() and not skip:
                found_runs, found_folders = _scan(child, depth - 1)
                runs += found_runs
                folders += found_folders
    return runs, folders


def load_runs(paths: Iterable[str | os.PathLike]) -> tuple[list[Run], list[FigureFolder]]:
    """Runs and figure folders from run folders, version folders or roots that hold them (searched 3 levels deep).

    Raises:
        LabError: a path is missing, not a folder, or holds no run and no figures.
    """
    runs: list[Run] = []
    folders: list[FigureFolder] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise LabError(f"run folder {path} does not exist")
        if not path.is_dir():
            raise LabError(f"{path} is not a folder (give run folders or a root such as runs/)")
        found_runs, found_folders = _scan(path, depth=3)
        if not found_runs and not found_folders:
            raise LabError(
                f"no runs in {path}: a run folder holds version_N/metrics.csv as written by `python -m gan_lab fit` "
                "or `python -m rnn_lab fit`"
            )
        runs += [run for run in found_runs if all(run.path != known.path for known in runs)]
        folders += [f for f in found_folders if all(f.path != known.path for known in folders)]
    return runs, folders
