"""The flagship recipe search: WGAN-GP candidates on MNIST, quality against training time (docs/gan.md).

Every candidate is ``configs/gan/wgan.yaml`` plus overrides, trained for the same wall-clock budget
(``--trainer.max_time``) with one torch thread, two candidates at a time, through the shared runner (a finished
candidate is reused, a killed one resumes). FID, KID, IS and class coverage are computed on 10,000 samples every few
epochs; ``time/train_s`` is the training time without those evaluations. Writes ``<out>/search.md`` (the table) and
``<out>/search.png`` (suite IS against training time).

    python tools/flagship_search.py --minutes 10 --out docs/results/flagship
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lab.report.runs import load_run
from lab.runner import Job, run_jobs

LR = "--model.init_args.{}_optimizer.init_args.lr={}"
CANDIDATES: dict[str, list[str]] = {
    "mlp lr1e-4 (old default)": [],
    "mlp lr3e-4": [LR.format("generator", 3e-4), LR.format("discriminator", 3e-4)],
    "mlp lr3e-4 ema.999": [LR.format("generator", 3e-4), LR.format("discriminator", 3e-4),
                           "--model.init_args.ema_decay=0.999"],
    "mlp lr5e-4 ema.999": [LR.format("generator", 5e-4), LR.format("discriminator", 5e-4),
                           "--model.init_args.ema_decay=0.999"],
    "mlp lr1e-3 ema.999": [LR.format("generator", 1e-3), LR.format("discriminator", 1e-3),
                           "--model.init_args.ema_decay=0.999"],
    "conv G32 + mlp D, lr5e-4 ema.999": [LR.format("generator", 5e-4), LR.format("discriminator", 5e-4),
                                         "--model.init_args.ema_decay=0.999",
                                         "--model.init_args.generator=configs/nets/conv_generator_small.yaml"],
}  # fmt: skip


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "-" for c in name)


def jobs(minutes: float, every: int) -> list[Job]:
    base = ["--config", "configs/base.yaml", "--config", "configs/gan/wgan.yaml", "--trainer.max_epochs=1000",
            f"--trainer.max_time=00:00:{int(minutes):02d}:{int(60 * (minutes % 1)):02d}",
            f"--model.init_args.metrics_every_n_epochs={every}",
            "--model.init_args.sample_every_n_epochs=1000"]  # fmt: skip
    return [
        Job(slug(name), "gan_lab.experiments:fit_run", {"family": "wgan", "args": base + extra}, {"candidate": name})
        for name, extra in CANDIDATES.items()
    ]


def curve(folder: Path) -> list[dict[str, float]]:
    """Rows of (epoch, time/train_s, val/...) of a finished candidate."""
    all_rows = load_run(folder).rows
    rows = [row for row in all_rows if "val/is" in row]
    times = {row["epoch"]: row["time/train_s"] for row in all_rows if "time/train_s" in row}
    return [{**row, "time/train_s": times.get(row["epoch"], float("nan"))} for row in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per candidate")
    parser.add_argument("--every", type=int, default=3, help="epochs between metric evaluations")
    parser.add_argument("--out", type=Path, default=Path("runs/flagship_search"))
    args = parser.parse_args(argv)
    todo = jobs(args.minutes, args.every)
    outcomes = run_jobs(todo, args.out, 2, 1, describe=lambda r: f"IS {r.get('val/is', float('nan')):.2f}")
    todo = [o.job for o in outcomes if not o.error]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["| candidate | epochs | train s | IS | classes | class-KL |", "|---|--:|--:|--:|--:|--:|"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for job in todo:
        rows = curve(args.out / job.name)
        if not rows:
            continue
        ax.plot(
            [r["time/train_s"] for r in rows], [r["val/is"] for r in rows], marker="o", label=job.labels["candidate"]
        )
        last = rows[-1]
        lines.append(
            f"| {job.labels['candidate']} | {int(last['epoch']) + 1} | {last['time/train_s']:.0f} "
            f"| {last['val/is']:.2f} | {last['val/classes_covered']:.0f} | {last['val/class_kl']:.3f} |"
        )
    ax.set(xlabel="training time, s (1 thread)", ylabel="suite IS (real test: 9.81)", title="WGAN-GP on MNIST")
    ax.axhline(8.0, color="grey", lw=0.8, ls="--")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "search.png", dpi=120)
    (args.out / "search.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
