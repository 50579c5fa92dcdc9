"""Quality per minute: the peers' recipes (configs/peers/) train through the real CLI, and TimedMetrics scores them
at budgets of training wall time and then stops the run."""

import csv

import pytest
import yaml
from conftest import CONFIGS

from callbacks.timed_metrics import TimedMetrics
from gan_lab.__main__ import main

RECIPES = ["gan/wgan", *sorted(f"peers/{p.stem}" for p in (CONFIGS / "peers").glob("*.yaml") if p.stem != "timed")]
TINY_DATA = ["--data.init_args.subset=256", "--data.init_args.val_size=32", "--data.init_args.batch_size=16"]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_is_scored_at_each_budget_then_stops(recipe, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    timed = yaml.safe_load((CONFIGS / "peers" / "timed.yaml").read_text())
    timed["trainer"]["callbacks"][0]["init_args"] = {"at_seconds": [0.5, 1.0], "n_samples": 64, "n_real": 64}
    (tmp_path / "timed.yaml").write_text(yaml.safe_dump(timed))
    files = [CONFIGS / "base.yaml", CONFIGS / f"{recipe}.yaml", tmp_path / "timed.yaml"]
    main(["fit", *[a for f in files for a in ("--config", str(f))], *TINY_DATA, f"--run.root={tmp_path}",
          "--run.wandb=false", "--trainer.enable_progress_bar=false"])  # fmt: skip
    (metrics,) = tmp_path.rglob("metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    for budget in ("0.5s", "1s"):
        (row,) = [r for r in rows if r.get(f"eval/is_{budget}")]
        assert 1.0 <= float(row[f"eval/is_{budget}"]) <= 10.0
        assert float(row[f"eval/fid_{budget}"]) > 0 and 0 <= float(row[f"eval/precision_{budget}"]) <= 1
    steps = [float(r[f"eval/steps_{b}"]) for b in ("0.5s", "1s") for r in rows if r.get(f"eval/steps_{b}")]
    assert 0 < steps[0] < steps[1]
    epochs = {int(r["epoch"]) for r in rows if r.get("epoch")}
    assert max(epochs) < 999  # stopped after the last budget, long before max_epochs
    assert not any(k.startswith("val/fid") for k in rows[0])  # no other evaluation ran


def test_budgets_must_be_positive_and_increasing():
    for bad in ([], [0, 10], [60, 30], [60, 60]):
        with pytest.raises(ValueError, match="at_seconds must be positive and increasing"):
            TimedMetrics(at_seconds=bad)
