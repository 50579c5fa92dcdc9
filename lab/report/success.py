"""Success rates against a length-like variable: where each arm stops succeeding, and exact tests between arms.

For an experiment built from axes (``spec.product_of``) with a ``success`` metric, named under ``analysis:`` as
``{function: lab.report.success.summary, args: {x: length, between: cell, within: init}}``:

- the *breaking length* of every (``between``, ``within``) arm: the largest ``x`` whose Wilson 95% lower bound of
  the success rate is >= 0.5 (the arm reliably solves it), and beside it the largest ``x`` whose upper bound is
  >= 0.5 (the longest at which the data do not rule out a majority of successes): the interval of that length;
- at every ``x``, Fisher's exact test (two-sided) between each pair of ``between`` values, each with its best
  ``within`` value (largest breaking length, then most successes), Holm-corrected over that table's tests; then the
  same within every ``within`` value that two or more ``between`` values share, each table its own Holm family.

``pick`` is a tuning experiment's analysis (``{function: lab.report.success.pick, args: {between: cell}}``): the
variant each cell would use, by the rule stated in its YAML.
"""

from __future__ import annotations

import math
import statistics
from itertools import combinations
from typing import Any

from lab.experiment.spec import Experiment
from lab.stats import finite, successes, wilson

Counts = dict[tuple[str, ...], dict[float, tuple[int, int]]]  # arm (between, within) -> x -> (successes, runs)


def counts(exp: Experiment, table: list[dict[str, Any]], x: str, *per: str) -> Counts:
    """Successes and runs per arm (its values of the ``per`` axes) and x."""
    metric = next(m for m in exp.metrics if m.success is not None)
    out: Counts = {}
    for row in (r for r in table if r["variant"] in exp.variants):
        variant = exp.variants[row["variant"]]
        values = finite(row["values"][metric.slot])
        if values:
            arm = tuple(variant["axes"][axis] for axis in per)
            out.setdefault(arm, {})[float(variant["vars"][x])] = successes(values, metric.success, metric.higher)
    return out


def breaking(points: dict[float, tuple[int, int]]) -> tuple[float | None, float | None]:
    """(largest x with Wilson lower bound >= 0.5, largest x with upper bound >= 0.5); None where no x qualifies."""
    bounds = {x: wilson(k, n) for x, (k, n) in points.items()}
    low = [x for x, (lo, _) in bounds.items() if lo >= 0.5]
    high = [x for x, (_, hi) in bounds.items() if hi >= 0.5]
    return (max(low) if low else None), (max(high) if high else None)


def cut(points: dict[float, tuple[int, int]], below: float) -> float:
    """The shortest x where the arm's Wilson upper bound is < ``below`` (the experiment's ``leave_out``): its runs at
    longer x may be left out; inf when there is none."""
    return min((x for x, (k, n) in points.items() if wilson(k, n)[1] < below), default=math.inf)


def left_out(exp: Experiment, table: list[dict[str, Any]]) -> set[str]:
    """The variants the experiment's ``leave_out`` rule leaves out, from the runs in ``table``: those at an x longer
    than their arm's ``cut`` (``python -m lab experiment run ... --leave-out``)."""
    x, per, below = exp.leave_out["x"], exp.leave_out["per"], exp.leave_out["below"]
    found = counts(exp, table, x, *per)
    arm = {name: tuple(variant["axes"][axis] for axis in per) for name, variant in exp.variants.items()}
    return {name for name, v in exp.variants.items() if float(v["vars"][x]) > cut(found.get(arm[name], {}), below)}


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order."""
    order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
    adjusted, running = [0.0] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def _length(value: float | None, longest: float) -> str:
    if value is None:
        return "none"
    text = f"{value:,.0f}"
    return f">= {text} (the longest run)" if value == longest else text


def fisher_family(found: Counts, arms: list[tuple[str, str]], label: dict[str, str]) -> list[str]:
    """A markdown table, a row per x and a column per pair of ``arms``: successes and Fisher's exact p, with Holm's
    correction over the table's tests (one family)."""
    from scipy.stats import fisher_exact

    pairs = list(combinations(arms, 2))
    xs = sorted({x for arm in arms for x in found[arm]})
    tests = {}
    for (a, b), x in ((pair, x) for pair in pairs for x in xs):
        if x in found[a] and x in found[b]:
            (k1, n1), (k2, n2) = found[a][x], found[b][x]
            tests[a, b, x] = (f"{k1}/{n1} vs {k2}/{n2}", float(fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue))
    if not tests:
        return []
    adjusted = dict(zip(tests, holm([p for _, p in tests.values()]), strict=True))
    heads = [f"{label[a[0]]} vs {label[b[0]]}" for a, b in pairs]
    lines = [f"| x | {' | '.join(heads)} |", "|---" * (len(pairs) + 1) + "|"]
    for x in (x for x in xs if any((a, b, x) in tests for a, b in pairs)):
        cells = []
        for a, b in pairs:
            if (a, b, x) not in tests:
                cells.append("–")
                continue
            solved, p = tests[a, b, x]
            adj = adjusted[a, b, x]
            cells.append(f"{solved}: p {p:.2g}, Holm {adj:.2g}{' *' if adj < 0.05 else ''}")
        lines.append(f"| {x:,.0f} | {' | '.join(cells)} |")
    return lines


def summary(exp: Experiment, table: list[dict[str, Any]], x: str, between: str, within: str) -> str:
    """Markdown: the breaking-length table, then the exact tests (see the module's docstring)."""
    found = counts(exp, table, x, between, within)
    if not found:
        return ""
    label = {value: exp.variants[v]["axis_labels"][axis] for v in exp.variants
             for axis, value in exp.variants[v]["axes"].items() if axis in (between, within)}  # fmt: skip
    xs = sorted({value for points in found.values() for value in points})
    lines = [f"Breaking {x} per {between} and {within}: the largest {x} whose success rate's Wilson 95% lower bound is "
             f">= 0.5; *up to*: the largest {x} whose upper bound is >= 0.5 (a majority of successes not ruled out "
             f"there).", "", f"| {between} | {within} | breaking {x} | up to | solved at "
             f"{', '.join(f'{v:,.0f}' for v in xs)} |", "|---|---|---|---|---|"]  # fmt: skip
    best: dict[str, tuple[str, tuple[float, int]]] = {}
    any_left_out = False
    for (b, w), points in found.items():
        low, high = breaking(points)
        beyond = cut(points, exp.leave_out["below"]) if exp.leave_out else math.inf  # the experiment's rule
        solved = ", ".join(f"{points[v][0]}/{points[v][1]}" if v in points else "left out" if v > beyond else "–"
                           for v in xs)  # fmt: skip
        any_left_out = any_left_out or any(v > beyond and v not in points for v in xs)
        lines.append(f"| {label[b]} | {label[w]} | {_length(low, max(points))} | {_length(high, max(points))} | "
                     f"{solved} |")  # fmt: skip
        score = (low if low is not None else 0.0, sum(k for k, _ in points.values()))
        if b not in best or score > best[b][1]:
            best[b] = (w, score)
    if any_left_out:
        below = exp.leave_out["below"]
        lines += ["", f"–: not run yet. *left out*: beyond a {x} where the arm's upper bound is < {below:g}, runs may "
                      f"be left out, as stated before the runs: they cannot change its breaking {x} unless it does "
                      f"better at a longer {x} than at a shorter one."]  # fmt: skip
    first = fisher_family(found, [(b, w) for b, (w, _) in best.items()], label)
    if first:
        chosen = ", ".join(f"{label[b]}: {label[w]}" for b, (w, _) in best.items())
        lines += ["", f"Fisher's exact test (two-sided) between {between}s, each with its best {within} (the largest "
                      f"breaking {x}, then the most successes: {chosen}); Holm-adjusted over this table's tests; "
                      "\\* Holm p < 0.05.", "", *first]  # fmt: skip
    for w in dict.fromkeys(w for _, w in found):
        arms = [(b, w) for b in dict.fromkeys(b for b, _ in found) if (b, w) in found]
        family = fisher_family(found, arms, label) if len(arms) > 1 else []
        if family:
            lines += ["", f"The same within {within} {label[w]} (its own Holm family).", "", *family]
    return "\n".join(lines).replace("| x |", f"| {x} |") + "\n"


def promoted(exp: Experiment, table: list[dict[str, Any]], per: str | None) -> list[str]:
    """The variants of a successive halving's next rung (``rungs`` in an experiment file): in each group of variants
    (the values of the axis ``per``; all variants when None), among those run on the most seeds, the ones with the
    group's highest success count."""
    success = next(m for m in exp.metrics if m.success is not None)
    groups: dict[str, list[tuple[int, int, str]]] = {}  # group -> (runs, successes, variant)
    for row in (r for r in table if r["variant"] in exp.variants):
        k, n = successes(row["values"][success.slot], success.success, success.higher)
        groups.setdefault(exp.variants[row["variant"]]["axes"][per] if per else "", []).append((n, k, row["variant"]))
    out = []
    for found in groups.values():
        most = max(n for n, _, _ in found)
        best = max(k for n, k, _ in found if n == most)
        out += [variant for n, k, variant in found if n == most and k == best]
    return out


def rung_variants(exp: Experiment, table: list[dict[str, Any]], number: int) -> list[str]:
    """The variants of rung ``number`` (from 0) of the experiment's successive halving: all of them on the first;
    then those that ``promoted`` names from the table's runs on the earlier rungs' seeds only (never the rung's own)."""
    if not number:
        return list(exp.variants)
    earlier = {seed for rung in exp.rungs["seeds"][:number] for seed in rung}
    kept = [{**row, "values": {slot: [v for v, seed in zip(values, row["seeds"], strict=True) if seed in earlier]
                               for slot, values in row["values"].items()}}
            for row in table if row["variant"] in exp.variants]  # fmt: skip
    return promoted(exp, kept, exp.rungs.get("per"))


def open_rung(exp: Experiment, table: list[dict[str, Any]]) -> tuple[int, list[str], int] | None:
    """The first rung with runs still to record, as (number from 0, its variants, runs recorded of it), or None."""
    done = {(row["variant"], seed) for row in table if row["variant"] in exp.variants for seed in row["seeds"]}
    for number, seeds in enumerate(exp.rungs.get("seeds") or []):
        variants = rung_variants(exp, table, number)
        recorded = sum((v, seed) in done for v in variants for seed in seeds)
        if recorded < len(variants) * len(seeds):
            return number, variants, recorded
    return None


def pick(exp: Experiment, table: list[dict[str, Any]], between: str) -> str:
    """Markdown: per ``between`` value (the cell), the variant a tuning experiment picks among those run on the most
    seeds (the last rung of a successive halving): the highest success rate, ties broken by the fewest median steps
    to the ``reach`` metric's level, then by the rows' order. While a rung has runs still to record, every pick is
    marked provisional and that rung is named, with its variants (``rung_variants``) and how many of its runs are
    recorded."""
    success = next(m for m in exp.metrics if m.success is not None)
    reach = next(m for m in exp.metrics if m.reach is not None)
    found: dict[str, list[tuple]] = {}  # arm -> (order key, variant, successes, runs, median steps)
    for order, row in enumerate(r for r in table if r["variant"] in exp.variants):
        k, n = successes(row["values"][success.slot], success.success, success.higher)
        steps = finite(row["values"][reach.slot])
        median = statistics.median(steps) if steps else math.inf
        found.setdefault(exp.variants[row["variant"]]["axes"][between], []).append(
            ((-n, -k / n if n else 0.0, median, order), row["variant"], k, n, median)
        )
    best = {arm: min(rows) for arm, rows in found.items()}  # the most seeds, then success, then fewest steps
    rung = open_rung(exp, table) if exp.rungs else None
    lines = [f"The pick per {between}, among its variants run on the most seeds: the highest success rate, ties "
             f"broken by the fewest median steps to {reach.key} >= {reach.reach:g}.", "",
             f"| {between} | pick | {success.key}{' (best)' if success.best else ''} >= {success.success:g} | "
             f"median steps | runs in all |", "|---|---|---|---|---|"]  # fmt: skip
    for arm, (_, variant, k, n, median) in best.items():
        labels = exp.variants[variant]["axis_labels"]
        unfinished = rung is not None if exp.rungs else n < len(exp.seeds)
        mark = " (provisional: a rung has runs still to record)" if unfinished else ""
        steps = "–" if math.isinf(median) else f"{median:.0f}"
        lines.append(f"| {labels[between]} | {', '.join(v for a, v in labels.items() if a != between)}{mark} | "
                     f"{k}/{n} | {steps} | {sum(row[3] for row in found[arm])} |")  # fmt: skip
    if rung is not None:
        number, variants, recorded = rung
        seeds = exp.rungs["seeds"][number]
        group = exp.rungs.get("per") or "experiment"
        rule = f"per {group}, the variants with the highest success count on the earlier rungs" if number else \
            "every variant"  # fmt: skip
        lines += ["", f"Rung {number + 1} of {len(exp.rungs['seeds'])} (seeds {' '.join(map(str, seeds))}; {rule}: "
                      f"{', '.join(variants)}): {recorded} of {len(variants) * len(seeds)} runs recorded; "
                      f"`make experiment E={exp.name}` runs the rest."]  # fmt: skip
    return "\n".join(lines) + "\n" if best else ""
