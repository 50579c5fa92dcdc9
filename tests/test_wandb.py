"""The W&B structure of a real offline run: name, group, tags, resolved config, summaries and media with their step.

wandb 0.31 has no Python reader for the ``.wandb`` transaction log (the old ``wandb.sdk.internal.datastore`` is gone;
the Go core reads it), and offline runs write no ``config.yaml`` or ``wandb-summary.json``. So ``read_records`` walks
the log's block framing (the LevelDB log layout: 32 KiB blocks of records with a CRC32, a length and a FULL/FIRST/
MIDDLE/LAST type) and decodes each record with wandb's own protobuf ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import csv
import json
import struct
import time
import zlib
from pathlib import Path

import pytest
from conftest import CONFIGS, run_module

from lab.loggers import WANDB_SUMMARIES

BLOCK = 32 * 1024
HEADER = 7  # ':W&B' + 2 magic bytes + version; each record header: crc32 (4), length (2), type (1)


def read_records(path: Path) -> list:
    """The protobuf Records of a ``run-*.wandb`` file, checksums verified."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    records, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # the tail of a block too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0:
            continue
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == crc, "corrupt record"
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # FULL or LAST ends a record
            records.append(wandb_internal_pb2.Record.FromString(pending))
    return records


def _items(updates) -> dict:
    """{'a/b' or 'a.b.c': value} from config/summary/history update items (key or nested_key, JSON values)."""
    return {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in updates}


def read_offline_run(folder: Path) -> dict:
    """The run record, the merged config and summary, the history rows and the metric definitions of a run."""
    (log,) = folder.glob("run-*.wandb")
    run, config, summary, history, metrics = None, {}, {}, [], {}
    for record in read_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
        elif kind == "config":
            config.update(_items(record.config.update))
        elif kind == "summary":
            summary.update(_items(record.summary.update))
        elif kind == "history":
            history.append(_items(record.history.item))
        elif kind == "metric" and record.metric.name:
            metrics[record.metric.name] = record.metric
    return {"run": run, "config": config, "summary": summary, "history": history, "metrics": metrics}


def summary_once_written(folder: Path, key: str, seconds: float = 30.0) -> dict:
    """The run's summary once it holds ``key`` (or after ``seconds``): W&B's writer, a process of its own, may still be
    flushing when ``finish()`` returns (seen once in CI under load: the record was on disk a moment later)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            summary = read_offline_run(folder)["summary"]
        except AssertionError:  # a record cut off mid-write
            summary = {}
        if key in summary or time.monotonic() > deadline:
            return summary
        time.sleep(0.2)


@pytest.mark.slow
def test_offline_run_carries_names_config_summaries_and_media(tmp_path, data_dir):
    """A tiny fit with W&B on logs its name, group, tags, resolved config, best/last FID, and grids at their step."""
    root = tmp_path / "runs"
    result = run_module(
        "gan_lab",
        "fit",
        *("--config", str(CONFIGS / "base.yaml"), "--config", str(CONFIGS / "gan" / "wgan.yaml")),
        *("--config", str(CONFIGS / "tiny.yaml"), "--run.root", str(root), "--run.wandb", "true"),
        *("--run.tags", "[ablation]", "--seed_everything", "3", "--trainer.max_epochs", "2"),
        *("--trainer.callbacks+=callbacks.metrics.GenerativeMetrics", "--trainer.callbacks.n_samples", "64"),
        *("--trainer.callbacks.n_real", "64", "--trainer.callbacks.kid_subset_size", "32"),
        env={"LAB_DATA_DIR": data_dir},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(root / "wgan-tiny-s3" / "version_0" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    (folder,) = (root / "wandb").glob("offline-run-*")
    logged = read_offline_run(folder)

    run = logged["run"]
    assert run.display_name == "wgan-tiny-s3" and run.run_group == "wgan"
    assert set(run.tags) == {"wgan", "mnist", "mlp", "ablation"}

    config = logged["config"]
    assert {"seed_everything", "trainer", "model", "data", "run"} <= set(config)
    assert config["seed_everything"] == 3 and config["trainer"]["max_epochs"] == 2
    assert config["model"]["class_path"] == "gan_lab.wgan.WGANGP"
    assert config["model"]["init_args"]["n_critic"] == 1 and config["data"]["init_args"]["value_range"] == "tanh"

    summary = logged["summary"]
    d_losses = [float(row["train/d_loss"]) for row in rows if row["train/d_loss"]]
    assert summary["train/d_loss"] == pytest.approx(d_losses[-1])
    fids = [float(row["val/fid"]) for row in rows if row["val/fid"]]
    assert len(fids) == 2
    assert summary["val/fid"] == pytest.approx({"min": min(fids), "last": fids[-1]})
    assert set(summary["val/is"]) == {"max", "last"}
    for key, wanted in WANDB_SUMMARIES.items():
        definition = logged["metrics"][key]
        assert definition.step_metric == "trainer/global_step"
        assert {name for name in ("min", "max", "last") if getattr(definition.summary, name)} == set(wanted.split(","))

    grids = [row for row in logged["history"] if "samples._type" in row]
    # On the x-axis of the scalars: the grid of an epoch sits at the step of that epoch's FID.
    assert [row["trainer/global_step"] for row in grids] == [int(row["step"]) for row in rows if row["val/fid"]]
    assert all((folder / "files" / row["samples.filenames"][0]).is_file() for row in grids)
    assert {"interpolation/linear._type", "interpolation/slerp._type"} <= {k for row in logged["history"] for k in row}
    assert_media_equal_disk(logged["history"], folder, root / "wgan-tiny-s3" / "version_0", rows)
    (table_row,) = [row for row in logged["history"] if row.get("val/final_samples._type") == "table-file"]
    table = json.loads((folder / "files" / table_row["val/final_samples.path"]).read_text())
    assert table["columns"] == ["sample", "label", "confidence"] and len(table["data"]) == 25
    assert all(0 <= label <= 9 and 0 < confidence <= 1 for _, label, confidence in table["data"])
    assert_table_images_show_their_labels(table, folder)


def assert_table_images_show_their_labels(table: dict, wandb_folder: Path) -> None:
    """The images of ``val/final_samples`` as the dashboard gets them: W&B keeps a table's image cells only in the
    run's ``run_table`` artifact (the run file's copy says "Image"). Each is a 28x28 grey PNG, not blank, and the
    suite's classifier reads its pixels as the digit of its row (all but rows it was itself unsure of, < 0.9)."""
    import numpy as np
    import torch

    from lab.loggers import read_png
    from lab.metrics.backbones import load_classifier

    (log,) = wandb_folder.glob("run-*.wandb")
    (artifact,) = [r.artifact for r in read_records(log) if r.WhichOneof("record_type") == "artifact"
                   and r.artifact.type == "run_table" and "final_samples" in r.artifact.name]  # fmt: skip
    files = {entry.path: Path(entry.local_path) for entry in artifact.manifest.contents}
    (table_file,) = [path for name, path in files.items() if name.endswith(".table.json")]
    staged = json.loads(table_file.read_text())
    assert [row[1:] for row in staged["data"]] == [row[1:] for row in table["data"]]  # the same labels, confidences
    classifier = load_classifier()
    agree = unsure = 0
    for image, label, confidence in staged["data"]:
        assert image["_type"] == "image-file", image
        pixels = read_png(files[image["path"]])  # (28, 28, 3) uint8, as the dashboard shows it
        assert pixels.shape == (28, 28, 3) and pixels.std() > 0, pixels.shape
        assert np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2])
        x = torch.from_numpy(pixels[..., 0].astype(np.float32) / 255).view(1, 1, 28, 28)
        with torch.no_grad():
            read = int(classifier.logits(x).argmax())
        agree += read == label
        unsure += confidence < 0.9 and read != label
    assert agree + unsure == len(staged["data"]), (agree, unsure)


def assert_media_equal_disk(history: list[dict], wandb_folder: Path, run_dir: Path, rows: list[dict]) -> None:
    """Every image in the W&B run decodes to the pixels of a PNG the run wrote on disk, is not blank, and sits at
    the step of a ``val/`` row of metrics.csv (what a user sees on the dashboard is what is on disk)."""
    from lab.loggers import read_png

    on_disk = [read_png(path) for path in run_dir.rglob("*.png")]
    val_steps = {int(row["step"]) for row in rows if row.get("val/fid")}
    images = ("images/separated", "image-file")
    keys = {key[: -len("._type")] for row in history for key, value in row.items() if value in images}
    assert {"samples", "interpolation/linear", "interpolation/scaled", "val/class_coverage"} <= keys, keys
    for row in history:
        for key in keys & {k[: -len("._type")] for k in row if k.endswith("._type")}:
            pixels = read_png(wandb_folder / "files" / row[f"{key}.filenames"][0] if f"{key}.filenames" in row
                              else wandb_folder / "files" / row[f"{key}.path"])  # fmt: skip
            assert pixels.std() > 1, f"{key} is blank in W&B"
            assert any(p.shape == pixels.shape and (p == pixels).all() for p in on_disk), f"{key} differs from disk"
            assert row["trainer/global_step"] in val_steps, (key, row["trainer/global_step"], val_steps)


@pytest.mark.slow
def test_resume_continues_the_same_run_version_and_wandb_run(tmp_path, data_dir, capsys):
    """A run stopped after epoch 1 and resumed with --ckpt_path best (its best-FID checkpoint) continues version_0
    (one metrics.csv) and the same W&B run id; with no such run, `best` is one clean line and writes nothing."""
    root = tmp_path / "runs"
    common = [
        *("fit", "--config", str(CONFIGS / "base.yaml"), "--config", str(CONFIGS / "gan" / "wgan.yaml")),
        *("--config", str(CONFIGS / "tiny.yaml"), "--run.root", str(root), "--run.wandb", "true"),
        *("--model.init_args.metrics_samples", "64", "--model.init_args.sample_every_n_epochs", "0"),
        *("--model.init_args.metrics_every_n_epochs", "1"),  # FID every epoch: a best-FID checkpoint each epoch
    ]
    env = {"LAB_DATA_DIR": data_dir}
    first = run_module("gan_lab", *common, "--trainer.max_epochs", "1", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    version = root / "wgan-tiny-s0" / "version_0"
    assert (version / "checkpoints" / "last.ckpt").is_file() and list((version / "checkpoints").glob("best-*.ckpt"))
    run_id = (version / "wandb_run_id").read_text().strip()
    second = run_module("gan_lab", *common, "--trainer.max_epochs", "2", "--ckpt_path", "best", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert not (root / "wgan-tiny-s0" / "version_1").exists(), "the resumed fit must continue version_0"
    with open(version / "metrics.csv", newline="") as handle:
        epochs = {row["epoch"] for row in csv.DictReader(handle) if row.get("val/fid")}
    assert epochs == {"0", "1"}
    offline = sorted((root / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(folder.name.endswith(run_id) for folder in offline), offline
    from lab.loggers import write_back  # evaluate's write-back: the same W&B run learns the result

    before = set((root / "wandb").glob(f"offline-run-*-{run_id}"))
    assert write_back(version, {"eval/fid": 1.5})[-1] == f"W&B run {run_id}"
    (added,) = set((root / "wandb").glob(f"offline-run-*-{run_id}")) - before  # not by name: a clock may step back
    assert summary_once_written(added, "eval/fid")["eval/fid"] == 1.5
    from gan_lab.__main__ import main as gan_main  # the refusal comes before any W&B or training: in-process

    with pytest.raises(SystemExit) as stop:
        gan_main([*common, "--run.root", str(tmp_path / "none"), "--ckpt_path", "best"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(lines) == 1 and "no best-*.ckpt under" in lines[0], lines
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
def test_an_experiment_is_one_wandb_group_with_a_metrics_table(tmp_path, data_dir):
    """An experiment of 2 variants x 2 seeds launched with --wandb: four W&B runs in the experiment's group (job type =
    variant) and one summary run holding the group's final-metrics table; a second launch reuses the four runs."""
    from conftest import run_module
    from test_experiment import tiny_experiment

    exp = tiny_experiment(tmp_path, {"a": {"trainer.max_epochs": 1}, "b": {"trainer.max_epochs": 1}}, seeds=(0, 1))
    args = ["experiment", "run", str(exp), "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
    first = run_module("lab", *args, "--wandb", env={"LAB_DATA_DIR": data_dir})
    assert first.returncode == 0, first.stderr[-3000:]
    folders = sorted((tmp_path / "runs" / "tiny" / "wandb").glob("offline-run-*"))
    runs = [read_offline_run(folder) for folder in folders]
    assert {run["run"].run_group for run in runs} == {"tiny"}
    assert sorted(run["run"].job_type for run in runs) == ["a", "a", "b", "b", "summary"]
    assert all(run["summary"]["val/modes"]["max"] >= 0 for run in runs if run["run"].job_type != "summary")
    (summary,) = [run for run in runs if run["run"].job_type == "summary"]
    (row,) = [row for row in summary["history"] if "tiny/final_metrics._type" in row]
    assert row["tiny/final_metrics._type"] == "table-file" and row["tiny/final_metrics.nrows"] == 4
    (folder,) = [f for f, run in zip(folders, runs, strict=True) if run["run"].job_type == "summary"]
    table = json.loads((folder / "files" / row["tiny/final_metrics.path"]).read_text())
    assert {"variant", "seed", "val/modes", "val/hq_percent", "val/reverse_kl"} <= set(table["columns"])
    assert len(table["data"]) == 4
    stamp = sorted(p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.json"))
    again = run_module("lab", *args, "--wandb", env={"LAB_DATA_DIR": data_dir})
    assert again.returncode == 0 and "4 reused, 0 to run" in again.stdout
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.json")) == stamp
