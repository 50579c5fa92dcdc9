"""An experiment YAML and its runs.

An experiment names the lab whose ``fit`` runs it (``gan_lab`` or ``rnn_lab``), the config files every run composes,
overrides for every run (``set``), named variants (their own config files and overrides), the seeds, a sentence on
the budget, the metrics of its table and the published rows with their source. Each run is the command line
``python -m <lab> fit --config A.yaml --config B.yaml --key=value ... --seed_everything=S`` that a user could type.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.errors import LabError

LABS = ("gan_lab", "rnn_lab")


@dataclass(frozen=True)
class Metric:
    key: str  # as logged: val/modes
    label: str
    higher: bool = True  # True when larger is better (the run's best is its max)
    digits: int = 2
    success: float | None = None  # shown as runs whose final value reaches this (k/n, Wilson 95% interval)
    reach: float | None = None  # shown as the step at which runs first reached this (median [min, max])
    best: bool = False  # each run's best logged value (max, or min when not higher), not its final one

    @property
    def slot(self) -> str:
        """Where a table row keeps this metric's values: the key, key@reach for the steps at which runs reached it,
        key@best for each run's best value (a table may show several for one key)."""
        return f"{self.key}@reach" if self.reach is not None else f"{self.key}@best" if self.best else self.key

    def of(self, record: dict) -> float | None:
        """This metric's value in a run record: its final value, its best, or the steps it took to reach ``reach``
        (None when it never did)."""
        if self.reach is not None:
            return (record.get("reached") or {}).get(self.key)
        if self.best:
            return ((record.get("best") or {}).get(self.key) or {}).get("value", math.nan)
        return record["final"].get(self.key, math.nan)


@dataclass(frozen=True)
class RunSpec:
    """One run of an experiment: ``python -m <lab> fit <args>`` into ``<runs>/<instance>/<name>``."""

    experiment: str
    instance: str  # the experiment's name, or name+<hash> when --set overrides change what it computes
    variant: str
    seed: int
    lab: str
    args: tuple[str, ...]  # the fit arguments, config files as given (relative to the repository)
    overrides: tuple[str, ...] = ()  # the --set overrides of this launch (key=value), part of the instance

    @property
    def name(self) -> str:
        return f"{self.experiment}-{self.variant}-s{self.seed}"

    def command(self) -> list[str]:
        return ["python", "-m", self.lab, "fit", *self.args]


@dataclass
class Experiment:
    name: str
    lab: str
    configs: list[str]
    seeds: list[int]
    budget: str
    variants: dict[str, dict[str, Any]]
    metrics: list[Metric]
    key_metric: str
    title: str = ""  # the section's heading (the name when none)
    overrides: dict[str, Any] = field(default_factory=dict)  # the YAML's ``set``: for every run
    published: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    gpu: bool = True  # a GPU per run where the cluster has GPUs
    cpus: int = 1  # Ray CPUs and torch threads per run (runs at once: the cluster's CPUs // cpus)
    order: int = 100  # the section's place in RESULTS.md
    figure: dict[str, Any] = field(default_factory=dict)  # with axes: {x: <var>, lines: [<axis>, ...]}
    baselines: dict[str, Any] = field(default_factory=dict)  # {function: module.name, args: {...}}: reference rows
    rank: list[str] = field(default_factory=list)  # metric keys that order the variants' rows (best first)
    analysis: dict[str, Any] = field(default_factory=dict)  # {function: module.name, args: {...}}: text after the table
    # successive halving over seeds, {seeds: [[100, 101], [102, ...]], per: <axis>}: every variant on the first
    # rung's seeds, then each rung's seeds for the variants with their group's highest success count so far
    rungs: dict[str, Any] = field(default_factory=dict)
    # runs that may be left out (`run --leave-out`; the table marks them), {x: <axis>, per: [<axis>, ...], below: p}:
    # an arm's (its per-axes values) runs at an x beyond one where its success rate's Wilson upper bound is < p
    leave_out: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        self.title = self.title or self.name

    def runs(self, seeds: list[int] | None = None, variants: list[str] | None = None,
             extra: dict[str, Any] | None = None) -> list[RunSpec]:  # fmt: skip
        """Every (variant, seed) run, seed by seed (a set stopped part-way has every variant at the same seeds)."""
        seeds = self.seeds if seeds is None else seeds
        names = list(self.variants)
        if variants is not None:  # shell-style patterns (lstm.*.L500, *.L10); one matching none is reported below
            picked = [[n for n in self.variants if fnmatch.fnmatchcase(n, v)] or [v] for v in variants]
            names = list(dict.fromkeys(name for group in picked for name in group))
        unknown = [name for name in names if name not in self.variants]
        if unknown:
            raise LabError(f"unknown variants {unknown} of experiment {self.name}: choose from {list(self.variants)}")
        extra = extra or {}
        instance = self.name + (f"+{hashlib.sha256(json.dumps(extra, sort_keys=True).encode()).hexdigest()[:6]}"
                                if extra else "")  # fmt: skip
        specs = []
        for seed in seeds:
            for name in names:
                variant = self.variants[name]
                files = [*self.configs, *variant.get("configs", [])]
                overrides = {**self.overrides, **variant.get("set", {}), **extra, "seed_everything": seed}
                args = [f"--config={path}" for path in files] + [f"--{k}={_cli_value(v)}" for k, v in overrides.items()]
                sets = tuple(f"{k}={_cli_value(v)}" for k, v in extra.items())
                specs.append(RunSpec(self.name, instance, name, seed, self.lab, tuple(args), sets))
        return specs

    def label(self, variant: str) -> str:
        return self.variants[variant].get("label", variant)


def fields_of_yaml() -> dict[str, type]:
    """The fields an experiment YAML may have and their types: Experiment's own (one place to add a field), with
    ``set`` read into ``overrides`` and ``axes`` into ``variants``."""
    hints = typing.get_type_hints(Experiment)
    named = {f.name: typing.get_origin(hints[f.name]) or hints[f.name] for f in dataclasses.fields(Experiment)}
    return {**{k: v for k, v in named.items() if k not in ("path", "overrides")}, "set": dict, "axes": dict}


def _cli_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def product_of(axes: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """Variants as the product of axes, in order: ``{cell: {lstm: {...}, gru: {...}}, length: {L10: {...}}}`` gives
    ``lstm.L10``, ``lstm.L20``, ... Each value's config files are concatenated and its overrides merged; its ``vars``
    fill ``{name}`` placeholders in every override's string value (``model.chrono_t_max: "{length}"``); an entry
    ``only: [values of an earlier axis]`` keeps that value for those only (chrono for the gated cells)."""
    combos: list[tuple[list[str], dict[str, Any]]] = [([], {"configs": [], "set": {}, "label": [], "vars": {},
                                                            "axes": {}})]  # fmt: skip
    for axis, values in axes.items():
        grown = []
        for names, variant in combos:
            for value, entry in (values or {}).items():
                entry = dict(entry or {})
                if "only" in entry and not set(entry["only"]) & set(names):
                    continue
                bad = sorted(set(entry) - {"configs", "set", "label", "vars", "only"})
                if bad:
                    raise LabError(f"{path}: axis {axis}, value {value}: unknown fields {bad}")
                grown.append(([*names, str(value)], {
                    "axes": {**variant["axes"], axis: str(value)},
                    "configs": [*variant["configs"], *entry.get("configs", [])],
                    "set": {**variant["set"], **entry.get("set", {})},
                    "label": [*variant["label"], str(entry.get("label", value))],
                    "vars": {**variant["vars"], **entry.get("vars", {})},
                }))  # fmt: skip
        combos = grown
    out = {}
    for names, variant in combos:
        sets = {k: yaml.safe_load(v.format(**variant["vars"])) if isinstance(v, str) and "{" in v else v
                for k, v in variant["set"].items()}  # fmt: skip
        out[".".join(names)] = {"configs": variant["configs"], "set": sets, "label": ", ".join(variant["label"]),
                                "vars": variant["vars"], "axes": variant["axes"],
                                "axis_labels": dict(zip(variant["axes"], variant["label"], strict=True))}  # fmt: skip
    return out


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["trainer.max_epochs=2", ...]`` -> ``{"trainer.max_epochs": 2}`` (values read as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or key.startswith("-"):
            raise LabError(f"--set {item!r}: expected key=value, e.g. trainer.max_epochs=2")
        out[key] = yaml.safe_load(value)
    return out


def load(path: str | Path, repo: Path | None = None) -> Experiment:
    """Reads and checks ``experiments/<name>.yaml``; config files are checked relative to ``repo`` (the cwd)."""
    path = Path(path)
    if not path.is_file():
        known = sorted(p.stem for p in Path("experiments").glob("*.yaml"))
        raise LabError(f"no experiment file {path}" + (f" (experiments: {', '.join(known)})" if known else ""))
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise LabError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise LabError(f"{path}: expected a mapping of fields (name, lab, configs, ...), got {type(data).__name__}")
    types = fields_of_yaml()
    unknown = sorted(set(data) - set(types))
    missing = [name for name in ("name", "lab", "configs", "seeds", "budget", "metrics") if name not in data]
    if unknown or missing:
        raise LabError(f"{path}: " + (f"unknown fields {unknown} (known: {', '.join(sorted(types))})" if unknown
                                      else f"missing field {missing[0]!r}"))  # fmt: skip
    if not isinstance(data.get("cpus", 1), int) or data.get("cpus", 1) < 1:
        raise LabError(f"{path}: cpus must be a positive integer, got {data['cpus']!r}")
    for name, kind in types.items():
        if data.get(name) is not None and not isinstance(data[name], kind):
            raise LabError(f"{path}: {name} must be {kind.__name__}, got {data[name]!r}")
    if ("variants" in data) == ("axes" in data):
        raise LabError(f"{path}: give either variants or axes (variants as the product of named axes)")
    if data["lab"] not in LABS:
        raise LabError(f"{path}: lab must be one of {', '.join(LABS)}, got {data['lab']!r}")
    axes = data.pop("axes", None)
    variants = product_of(axes, path) if axes else {str(k): dict(v or {}) for k, v in data.pop("variants").items()}
    for name, variant in variants.items():
        bad = sorted(set(variant) - {"configs", "set", "label", "vars", "axes", "axis_labels"})
        if bad:
            raise LabError(f"{path}: variant {name}: unknown fields {bad} (known: configs, set, label)")
    for config in [*data["configs"], *(c for v in variants.values() for c in v.get("configs", []))]:
        if not ((repo or Path.cwd()) / config).is_file():
            raise LabError(f"{path}: config file {config} does not exist")
    if not all(isinstance(s, int) for s in data["seeds"]):
        raise LabError(f"{path}: seeds must be integers")
    success = any(isinstance(m, dict) and "success" in m for m in data["metrics"])  # rungs and leave_out need one
    rungs = data.get("rungs") or {}
    lists = rungs.get("seeds") if isinstance(rungs.get("seeds"), list) else []
    if rungs and (not all(isinstance(rung, list) for rung in lists)
                  or sorted(s for rung in lists if isinstance(rung, list) for s in rung) != sorted(data["seeds"])
                  or rungs.get("per") not in (*(axes or {}), None) or set(rungs) - {"seeds", "per"}
                  or not success):  # fmt: skip
        raise LabError(
            f"{path}: rungs {{seeds: [[...], ...], per: <axis>}} needs lists of seeds that together "
            "are the experiment's seeds, per an axis (or left out) and a metric with a success level"
        )
    rule = data.get("leave_out") or {}
    if rule and not (set(rule) == {"x", "per", "below"} and isinstance(rule["per"], list) and success
                     and {rule["x"], *rule["per"]} <= set(axes or {}) and isinstance(rule["below"], float | int)
                     and 0 < rule["below"] < 1):  # fmt: skip
        raise LabError(f"{path}: leave_out {{x: <axis>, per: [<axis>, ...], below: <p in (0, 1)>}} needs axes and a "
                       "metric with a success level")  # fmt: skip
    try:
        metrics = [Metric(**{"label": m["key"], **m}) for m in data.pop("metrics")]
    except (TypeError, KeyError) as err:
        raise LabError(f"{path}: metrics: each needs a key; known fields: key, label, higher, digits, success, "
                       f"reach, best ({err})") from None  # fmt: skip
    fields = {k: v for k, v in data.items() if v is not None and k != "set"}
    return Experiment(**{**fields, "name": str(data["name"]), "variants": variants, "metrics": metrics,
                         "overrides": dict(data.get("set") or {}), "key_metric": data.get("key_metric", metrics[0].key),
                         "path": path})  # fmt: skip
