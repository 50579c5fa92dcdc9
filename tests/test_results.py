"""make results: MNIST arms run through the real CLI and aggregate over seeds; RESULTS.md is composed from sections."""

import json

import pytest

from gan_lab import results


@pytest.mark.slow
def test_mnist_arms_run_through_the_cli_and_aggregate_seeds(tmp_path, data_dir):
    """Two seeds of a tiny GAN arm: both finish, the table shows mean ± std, and a second call reuses the runs."""
    from conftest import CONFIGS

    arm = results.Arm("tiny GAN", "gan", "gan.yaml", ("--config", str(CONFIGS / "tiny.yaml")))
    finals = results.run_arms((arm,), seeds=2, epochs=1, root=tmp_path, jobs=1)[arm]
    assert len(finals) == 2 and all(0 <= f["val/classes_covered"] <= 10 and f["val/fid"] > 0 for f in finals)
    assert finals[0]["val/fid"] != finals[1]["val/fid"]  # two seeds, two models
    table = results.mnist_table({arm: finals})
    assert "| tiny GAN | 2 |" in table and " ± " in table
    stamp = {p: p.stat().st_mtime for p in tmp_path.rglob("metrics.csv")}
    again = results.run_arms((arm,), seeds=2, epochs=1, root=tmp_path, jobs=1)[arm]
    assert again == finals and {p: p.stat().st_mtime for p in tmp_path.rglob("metrics.csv")} == stamp


def test_compose_orders_sections_and_states_commands(tmp_path):
    """RESULTS.md has the sections present, in the fixed order, each with its command and wall time."""
    for name, seconds in (("bench", 60.0), ("sweep", 120.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "section.md").write_text(f"body of {name}\n")
        meta = {"command": f"python -m gan_lab.results --sections {name}", "seconds": seconds, "machine": "2 CPU cores",
                "date": "2026-11-22"}  # fmt: skip
        (tmp_path / name / "section.json").write_text(json.dumps(meta))
    text = results.compose(tmp_path, tmp_path / "RESULTS.md")
    assert text.index("## Vanilla RNN vs LSTM") < text.index("## Benchmarks")
    assert "`python -m gan_lab.results --sections bench` (1.0 min wall on 2 CPU cores" in text
    assert "took 3 min wall in all" in text and (tmp_path / "RESULTS.md").read_text() == text


def test_no_sections_and_bad_arguments_fail_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        results.main(["--compose-only", "--out", str(tmp_path), "--target", str(tmp_path / "R.md")])
    assert info.value.code == 2 and "no finished section" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        results.main(["--sections", "pacgan"])
    assert info.value.code == 2 and "unknown sections ['pacgan']" in capsys.readouterr().err
    assert not (tmp_path / "R.md").exists()


def test_section_commands_name_only_their_section():
    argv = ["--seeds", "3", "--sections", "ring", "grid", "--jobs", "2"]
    assert results.argv_without_sections(argv) == ["--seeds", "3", "--jobs", "2"]
