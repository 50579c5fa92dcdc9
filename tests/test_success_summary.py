"""The palindrome study's analysis from records: breaking lengths by the rule its YAML states, Fisher's exact tests
with Holm's correction, the two-row figure (success rate, median steps to 99%) and the never-reading baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from lab.errors import LabError
from lab.experiment import records, table
from lab.experiment import spec as specs
from lab.report.figures import experiment_figure
from lab.report.success import breaking, cut, holm, left_out, summary

CODE = {"files": ["lab/errors.py"], "code": records.code_hash(["lab/errors.py"], str(REPO))}  # not stale
SOLVED = {  # (cell, init) -> successes of 10 per length
    ("lstm", "chrono"): {10: 10, 20: 10, 50: 10, 100: 10, 200: 9, 500: 8, 1000: 2},
    ("gru", "chrono"): {10: 10, 20: 10, 50: 10, 100: 6, 200: 1, 500: 0},
    ("rnn", "irnn"): {10: 10, 20: 7, 50: 0},
    ("rnn", "orthogonal"): {10: 10, 20: 10, 50: 0},
    ("lstm", "orthogonal"): {10: 10, 20: 10, 50: 3},
}


def fake_records(exp: specs.Experiment) -> list[dict]:
    out = []
    for name, variant in exp.variants.items():
        arm, length = (variant["axes"]["cell"], variant["axes"]["init"]), variant["vars"]["length"]
        if length not in SOLVED.get(arm, {}):
            continue
        for seed in range(10):
            ok = seed < SOLVED[arm][length]
            out.append({"variant": name, "seed": seed, "status": "finished", "seconds": 1.0,
                        "final": {"test/best_acc": 1.0 if ok else 0.1},
                        "reached": {"val/acc": 100 * length if ok else None},
                        "code_version": CODE})  # fmt: skip
    return out


@pytest.fixture(scope="module")
def study():
    exp = specs.load(REPO / "experiments" / "palindrome.yaml", REPO)
    exp.baselines = {}  # the baseline row has its own test
    return exp, table.rows(exp, fake_records(exp))


def test_the_breaking_length_is_the_longest_whose_wilson_lower_bound_reaches_one_half():
    """8/10 at 500 (lower bound 0.49) does not count, 9/10 at 200 (0.60) does; the upper end is where a majority
    is still not ruled out (2/10 at 1,000: upper bound 0.51)."""
    assert breaking({10: (10, 10), 200: (9, 10), 500: (8, 10), 1000: (2, 10)}) == (200.0, 1000.0)
    assert breaking({10: (3, 10), 20: (0, 10)}) == (None, 10.0)


def test_leave_out_skips_an_arms_lengths_beyond_one_where_its_upper_bound_is_below_one_half(study):
    """The study's stated rule (`run --leave-out`): 0/10 at 50 (upper bound 0.28) leaves the RNN's longer lengths
    out; 1/10 at 200 (0.40) the GRU's 500 and 1,000; 2/10 at 1,000 (0.51) and 3/10 at 50 (0.60) leave nothing out;
    an arm with no runs yet keeps every length."""
    exp, rows = study
    expected = {f"rnn.{init}.L{n}" for init in ("irnn", "orthogonal") for n in (100, 200, 500, 1000)}
    assert left_out(exp, rows) == expected | {"gru.chrono.L500", "gru.chrono.L1000"}


def test_an_arm_is_cut_at_0_of_4_but_not_at_0_of_3():
    """The study's next step: 0/3 has an upper bound of 0.56 (kept), 0/4 of 0.49 (longer lengths may be left out)."""
    assert cut({10: (3, 3), 50: (0, 3)}, 0.5) == math.inf
    assert cut({10: (4, 4), 50: (0, 4), 100: (0, 4)}, 0.5) == 50


def test_holm_multiplies_the_sorted_p_values_by_the_tests_left_and_keeps_them_monotone():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_the_summary_shows_each_breaking_length_and_exact_tests_between_the_best_arms(study):
    exp, rows = study
    text = summary(exp, rows, **exp.analysis["args"])
    lstm = "| LSTM | orthogonal + chrono (T_max = L) | 200 | >= 1,000 (the longest run) | 10/10, 10/10, 10/10, 10/10, "
    assert lstm + "9/10, 8/10, 2/10 |" in text  # 8/10: lower bound 0.49; 2/10: upper bound 0.51
    # past 0/10 (upper bound 0.28 < 0.5) the longer lengths are "left out" by the study's rule; 3/10 (upper bound
    # 0.61) rules out no majority, so the LSTM's orthogonal arm's next lengths are only "not run yet"
    irnn = "| RNN | identity + ReLU (IRNN) | 10 | 20 | 10/10, 7/10, 0/10, left out, left out, left out, left out |"
    assert irnn in text
    assert "| LSTM | orthogonal | 20 | >= 50 (the longest run) | 10/10, 10/10, 3/10, –, –, –, – |" in text
    assert "–: not run yet. *left out*: beyond a length where the arm's upper bound is < 0.5" in text
    assert "| GRU | orthogonal + chrono (T_max = L) | 50 | 100 |" in text  # 6/10 at 100: [0.31, 0.83]
    best = text.split("Fisher's exact test")[1].split("The same within")[0]
    assert "RNN: orthogonal, LSTM: orthogonal + chrono (T_max = L), GRU: orthogonal + chrono (T_max = L)" in best
    # the RNN's best is orthogonal (breaking length 20), not the IRNN (10)
    # 10/10 against 0/10 at L = 50: p = 2 / C(20, 10); 3 pairs x up to 7 lengths in this family (12 tests here)
    p = 2 / math.comb(20, 10)
    assert f"| 50 | 0/10 vs 10/10: p {p:.2g}, Holm {12 * p:.2g} * | 0/10 vs 10/10: p {p:.2g}, Holm" in best
    assert "| 1,000 |" not in best and "| 500 | – | – | 8/10 vs 0/10: p 0.00071, Holm 0.0071 * |" in best
    chrono = text.split("within init orthogonal + chrono (T_max = L)")[1]
    assert "| length | LSTM vs GRU |" in chrono and "| 200 | 9/10 vs 1/10: p 0.0011" in chrono


def test_the_figure_has_a_row_for_the_success_rate_and_one_for_the_median_steps(study, tmp_path):
    exp, rows = study
    experiment_figure(exp, rows, tmp_path / "pal.png")
    image = np.asarray(Image.open(tmp_path / "pal.png").convert("L"))
    assert image.shape[0] > 1.6 * 3.4 * 110 and image.shape[1] > 3 * 3.6 * 110  # two rows of three panels
    assert image.std() > 20  # drawn, not blank


def test_the_figure_gives_each_init_one_colour_in_every_panel_and_ticks_at_the_study_lengths(
    study, tmp_path, monkeypatch
):
    """Panels side by side read as one figure: an init keeps its colour from panel to panel (orthogonal is one
    colour for the RNN, the LSTM and the GRU) and every panel's length axis is ticked at the lengths the study
    defines (10 to 1,000, as plain numbers), run yet or not."""
    from matplotlib.axes import Axes

    drawn, ticked = [], []
    errorbar, set_xticks = Axes.errorbar, Axes.set_xticks

    def spy_errorbar(self, *args, **kwargs):
        drawn.append((kwargs["label"], kwargs.get("color")))
        return errorbar(self, *args, **kwargs)

    def spy_xticks(self, ticks, labels=None, **kwargs):
        ticked.append(list(labels))
        return set_xticks(self, ticks, labels, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", spy_errorbar)
    monkeypatch.setattr(Axes, "set_xticks", spy_xticks)
    exp, rows = study
    experiment_figure(exp, rows, tmp_path / "pal.png")
    colours = {}
    for label, colour in drawn:
        colours.setdefault(label, set()).add(colour)
    assert "orthogonal" in colours and all(len(c) == 1 and None not in c for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == len(colours)  # and no two inits share one
    assert ticked and all(t == ["10", "20", "50", "100", "200", "500", "1,000"] for t in ticked)


def test_the_palindrome_baseline_is_the_majority_digit_near_chance_on_the_runs_test_split():
    from rnn_lab.baselines import palindrome_baselines

    (row,) = palindrome_baselines(seeds=[0, 1], seq_len=20, num_samples=20_000)
    (run,) = row["runs"]
    assert 0.07 < run["test/best_acc"] < 0.13 and 0.07 < run["val/acc"] < 0.13 and "L = 20" in row["label"]
    exp = specs.load(REPO / "experiments" / "palindrome.yaml", REPO)
    rows = table.rows(exp, [])
    assert rows[-1]["label"].startswith("*majority digit") and rows[-1]["n"] == 1


def test_one_key_shown_as_success_steps_to_reach_and_best_value_keeps_the_columns_apart(study):
    """palindrome_tuning shows val/acc three times, from the validation split only: runs whose best reached 0.99
    (k/n), the steps at which they first reached it, and the best accuracy (not the final one: the run below fell
    back to 0.95 after its best, 0.9996)."""
    exp = specs.load(REPO / "experiments" / "palindrome_tuning.yaml", REPO)
    exp.baselines = {}
    record = {"variant": "lstm.lr1e-3.clip10", "seed": 100, "status": "finished", "seconds": 60.0,
              "final": {"test/best_acc": 0.2, "val/acc": 0.95}, "best": {"val/acc": {"value": 0.9996, "step": 1999}},
              "reached": {"val/acc": 1500}, "code_version": CODE}  # fmt: skip
    text = table.markdown(exp, table.rows(exp, [record]))
    row = "| LSTM (orthogonal + chrono), Adam 1e-3, clip 10 | 1 | 1/1 [0.21, 1.00] | 1500 [1500, 1500] (1/1) | 1.000 |"
    assert row in text
    assert all(m.key.startswith("val/") for m in exp.metrics) and exp.key_metric == "val/acc"


def test_a_record_keeps_every_final_value_but_the_training_curves(tmp_path):
    """The launcher's summary of a run folder: a callback's own group (gradient_flow/...) reaches the record beside
    val/ and test/, the per-step train/ curves do not; reach steps count batches done (logged step + 1)."""
    from lab.experiment.runone import summarize

    run = tmp_path / "run"
    (run / "version_0").mkdir(parents=True)
    (run / "version_0" / "metrics.csv").write_text(
        "epoch,step,train/loss,val/acc,gradient_flow/start_log10_h1_over_last\n0,49,2.3,,\n0,99,,0.995,-3.5\n"
    )
    (run / "console.log").write_text("  last: step 100, epoch 1: val/acc = 0.995\n")
    out = summarize(run, [("val/acc", True, 0.99)])
    assert out["final"] == {"val/acc": 0.995, "gradient_flow/start_log10_h1_over_last": -3.5}
    assert out["reached"] == {"val/acc": 100} and out["global_step"] == 100


def test_the_tuning_pick_is_the_highest_success_rate_then_the_fewest_median_steps():
    """Per cell, among the variants run on the most seeds (both rungs): 5/5 beats 4/5 however fast; between two 5/5
    the fewer median steps wins; a faster variant that rung 1 did not promote does not beat the promoted one's 2/5.
    While rung 2 has runs still to record every pick is provisional and the rung is named with its variants (from
    rung 1's records alone) and its count; once it is complete neither appears."""
    exp = specs.load(REPO / "experiments" / "palindrome_tuning.yaml", REPO)
    exp.baselines = {}
    steps = {  # (variant, seed) -> steps to 99% validation (None: never); rung 1 is seeds 100, 101
        **{(v, s): None for v in exp.variants for s in (100, 101)},
        ("lstm.lr5e-3.clip10", 100): 300, ("lstm.lr5e-3.clip10", 101): 300, ("lstm.lr5e-3.clip10", 102): 300,
        ("lstm.lr5e-3.clip10", 103): 300, ("lstm.lr5e-3.clip10", 104): None,
        **{("lstm.lr2e-3.clip1", s): 900 for s in range(100, 105)},
        **{("lstm.lr1e-3.clip10", s): 700 + s - 100 for s in range(100, 105)},
        ("gru.lr5e-4.clip1", 100): 2000, ("gru.lr5e-4.clip1", 101): 2000,
        **{("gru.lr5e-4.clip1", s): None for s in (102, 103, 104)},
        ("gru.lr5e-3.clip1", 100): 100,  # 1/2, fast, not promoted
        ("rnn.lr1e-3.clip1", 100): 800, **{("rnn.lr1e-3.clip1", s): None for s in (102, 103, 104)},
    }  # fmt: skip

    def text(found: dict) -> str:
        records = [{"variant": variant, "seed": seed, "status": "finished", "seconds": 1.0, "code_version": CODE,
                    "final": {"test/best_acc": 0.3, "val/acc": 0.3},  # the final values are not what counts
                    "best": {"val/acc": {"value": 0.3 if step is None else 1.0, "step": 1}},
                    "reached": {"val/acc": step}} for (variant, seed), step in found.items()]  # fmt: skip
        return table.markdown(exp, table.rows(exp, records)).split("The pick per cell")[1]

    done = text(steps)
    assert "| cell | pick | val/acc (best) >= 0.99 | median steps | runs in all |" in done
    assert "| LSTM (orthogonal + chrono) | Adam 1e-3, clip 10 | 5/5 | 702 | 25 |" in done
    assert "| GRU (orthogonal + chrono) | Adam 5e-4, clip 1 | 2/5 | 2000 | 19 |" in done
    assert "| RNN (orthogonal) | Adam 1e-3, clip 1 | 1/5 | 800 | 19 |" in done
    assert "provisional" not in done and "Rung" not in done
    part = text({k: v for k, v in steps.items() if k != ("rnn.lr1e-3.clip1", 104)})
    assert "| LSTM (orthogonal + chrono) | Adam 1e-3, clip 10 (provisional: a rung has runs still to record) |" in part
    assert ("Rung 2 of 2 (seeds 102 103 104; per cell, the variants with the highest success count on the earlier "
            "rungs: rnn.lr1e-3.clip1, lstm.lr1e-3.clip10, lstm.lr2e-3.clip1, lstm.lr5e-3.clip10, gru.lr5e-4.clip1): "
            "14 of 15 runs recorded") in part  # fmt: skip


def test_a_tuning_experiment_runs_its_rungs_each_on_the_variants_the_last_one_promoted(tmp_path, monkeypatch):
    """`experiment run` on a file with rungs: rung 1 runs every variant on its seeds; rung 2 runs, per cell, the
    variants with the cell's highest rung-1 success count (ties all go on), on rung 2's seeds only; promotions read
    rung 1's records, never rung 2's own; a failed run ends the set before the next rung."""
    import lab.__main__ as cli

    rate = {"lstm.lr5e-4.clip1": 0, "lstm.lr5e-3.clip10": 2, "lstm.lr1e-3.clip10": 2, "gru.lr5e-3.clip1": 1}
    launched, failing = [], False

    def fake_run_set(exp, runs, root, results, args):  # the launcher, as far as rungs go: a record per run
        launched.append(sorted({(r.variant, r.seed) for r in runs}))
        for run in runs:
            ok = run.seed - 100 < rate.get(run.variant, 0) or run.seed > 101  # rung 2 records all succeed
            records.write(records.record_path(results, run.instance, run.name), {
                "variant": run.variant, "seed": run.seed, "status": "finished", "seconds": 1.0, "code_version": CODE,
                "final": {}, "best": {"val/acc": {"value": 1.0 if ok else 0.2, "step": 1}},
                "reached": {"val/acc": 500 if ok else None}})  # fmt: skip
        return not failing

    monkeypatch.setattr(cli, "run_set", fake_run_set)
    monkeypatch.chdir(REPO)
    args = ["experiment", "run", "experiments/palindrome_tuning.yaml", "--results", str(tmp_path / "results")]
    with pytest.raises(SystemExit) as done:
        cli.main(args)
        raise SystemExit(0)
    assert done.value.code == 0
    exp = specs.load(REPO / "experiments" / "palindrome_tuning.yaml", REPO)
    assert launched[0] == sorted((v, s) for v in exp.variants for s in (100, 101))
    rnn = [v for v in exp.variants if v.startswith("rnn.")]  # every RNN variant 0/2: all tie, all go on
    assert launched[1] == sorted((v, s) for v in ["lstm.lr5e-3.clip10", "lstm.lr1e-3.clip10", "gru.lr5e-3.clip1",
                                                  *rnn] for s in (102, 103, 104))  # fmt: skip
    launched.clear()
    cli.main(args)  # again, with rung 2's records there: the same promotion (read from rung 1 only)
    assert len(launched) == 2 and len(launched[1]) == 3 * (3 + len(rnn))
    launched.clear()
    failing = True  # a run of rung 1 failed: exit 1, no rung 2
    with pytest.raises(SystemExit) as stopped:
        cli.main(args)
    assert stopped.value.code == 1 and len(launched) == 1


def test_a_rungs_field_whose_seeds_are_not_the_experiments_is_one_error_line(tmp_path):
    text = (REPO / "experiments" / "palindrome_tuning.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("[[100, 101], [102, 103, 104]]", "[[100, 101], [102, 103]]"))
    with pytest.raises(LabError, match="rungs .* lists of seeds that together are the experiment's seeds"):
        specs.load(bad, REPO)


@pytest.mark.parametrize(
    "rule",
    [
        "{x: length, per: [cell, init]}",
        "{x: steps, per: [cell, init], below: 0.5}",
        "{x: length, per: cell, below: 0.5}",
        "{x: length, per: [cell, init], below: 1.5}",
    ],
)
def test_a_leave_out_rule_that_is_not_axes_and_a_level_in_0_1_is_one_error_line(tmp_path, rule):
    text = (REPO / "experiments" / "palindrome.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("{x: length, per: [cell, init], below: 0.5}", rule))
    with pytest.raises(LabError, match=r"leave_out \{x: <axis>, per: \[<axis>, ...\], below: <p in \(0, 1\)>\} needs"):
        specs.load(bad, REPO)
