"""The palindrome sweep's table, plot and CSV reading (``python -m rnn_lab sweep`` writes them)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch

from rnn_lab.cells import CELLS


@dataclass
class RunResult:
    cell: str
    seq_len: int
    seed: int
    best_val_acc: float
    final_val_acc: float
    steps: int
    steps_to_target: int | None
    seconds: float


def summarise(results: list[RunResult], cells: list[str], lengths: list[int], target: float) -> str:
    """Markdown: best validation accuracy (mean ± std over seeds) and median steps to reach the target."""

    def cell_text(cell: str, length: int) -> tuple[str, str]:
        runs = [r for r in results if r.cell == cell and r.seq_len == length]
        if not runs:
            return "-", "-"
        acc = torch.tensor([r.best_val_acc for r in runs])
        std = acc.std().item() if len(runs) > 1 else 0.0
        solved = [r.steps_to_target for r in runs if r.steps_to_target is not None]
        steps = (
            f"{int(torch.tensor(solved).float().median().item())} ({len(solved)}/{len(runs)})" if solved else "never"
        )
        return f"{acc.mean().item():.3f} ± {std:.3f}", steps

    header = "| length | " + " | ".join(f"{c} accuracy" for c in cells) + " | "
    header += " | ".join(f"{c} steps to {100 * target:g}%" for c in cells) + " |"
    lines = [header, "|---:|" + "---:|" * (2 * len(cells))]
    for length in lengths:
        texts = [cell_text(cell, length) for cell in cells]
        lines.append(
            f"| {length} | " + " | ".join(t[0] for t in texts) + " | " + " | ".join(t[1] for t in texts) + " |"
        )
    return "\n".join(lines) + "\n"


def plot(results: list[RunResult], cells: list[str], lengths: list[int], path: Path) -> None:
    """Best validation accuracy vs length: mean ± std over seeds per cell, each run as a dot, chance dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for cell in cells:
        xs, means, stds = [], [], []
        for length in lengths:
            acc = torch.tensor([r.best_val_acc for r in results if r.cell == cell and r.seq_len == length])
            if acc.numel():
                xs.append(length)
                means.append(acc.mean().item())
                stds.append(acc.std().item() if acc.numel() > 1 else 0.0)
        line = ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=cell)
        runs = [r for r in results if r.cell == cell]
        ax.scatter(
            [r.seq_len for r in runs], [r.best_val_acc for r in runs], s=12, alpha=0.4, color=line[0].get_color()
        )
    ax.axhline(0.1, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlabel("palindrome length")
    ax.set_ylabel("best validation accuracy")
    ax.set_ylim(0, 1.05)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def read_results(paths: list[str]) -> list[RunResult]:
    """Rows of one or more results.csv files."""
    results = []
    for path in paths:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                results.append(
                    RunResult(
                        cell=row["cell"],
                        seq_len=int(row["seq_len"]),
                        seed=int(row["seed"]),
                        best_val_acc=float(row["best_val_acc"]),
                        final_val_acc=float(row["final_val_acc"]),
                        steps=int(row["steps"]),
                        steps_to_target=int(row["steps_to_target"]) if row["steps_to_target"] else None,
                        seconds=float(row["seconds"]),
                    )
                )
    return results


def write_report(results: list[RunResult], run_dir: Path, command: str, target: float) -> str:
    """results.md and accuracy_vs_length.png in ``run_dir``; returns the markdown table."""
    cells = [cell for cell in CELLS if any(r.cell == cell for r in results)]
    lengths = sorted({r.seq_len for r in results})
    seeds = sorted({r.seed for r in results})
    table = summarise(results, cells, lengths, target)
    (run_dir / "results.md").write_text(
        f"Command: `{command.strip()}`\n\nBest validation accuracy over seeds {seeds} (mean ± std); steps to "
        f"{100 * target:g}%: median over the seeds that got there (how many did; the lower middle value for an "
        f"even count).\n\n{table}"
    )
    plot(results, cells, lengths, run_dir / "accuracy_vs_length.png")
    return table
