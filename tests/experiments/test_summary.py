"""Runs summarised over seeds (:mod:`tailtune.experiments.summary`): means, sample stds and the paired comparison
with a baseline, the summary files and the table."""

from __future__ import annotations

import csv
import itertools
import json
import math
import statistics
from pathlib import Path

import pytest
from run_factory import SEEDS, make_experiment, write_run
from scipy import stats

from tailtune.errors import TailTuneError
from tailtune.experiments.summary import compare_paired, format_table, summarize, write_summary
from tailtune.metrics import compute_metrics
from tailtune.runs.records import find_runs, load_run
from tailtune.runs.rundir import write_metrics


def metrics_of(root: Path, variant: str, strategy: str) -> dict[int, dict]:
    """metrics.json per seed, read straight from disk."""
    return {
        seed: json.loads((root / variant / strategy / f"seed-{seed}" / "metrics.json").read_text()) for seed in SEEDS
    }


def exact_wilcoxon_p(diffs: list[float]) -> float:
    """Two-sided exact signed-rank p-value by enumerating every sign pattern (no ties, no zeros)."""
    ranks = stats.rankdata([abs(d) for d in diffs])
    observed = min(sum(r for r, d in zip(ranks, diffs, strict=True) if d > 0),
                   sum(r for r, d in zip(ranks, diffs, strict=True) if d < 0))  # fmt: skip
    totals = [sum(r for r, s in zip(ranks, signs, strict=True) if s) for signs in
              itertools.product([0, 1], repeat=len(diffs))]  # fmt: skip
    extreme = sum(1 for t in totals if min(t, ranks.sum() - t) <= observed)
    return min(1.0, extreme / len(totals))


def test_means_and_sample_stds_over_seeds(experiment):
    summary = summarize(find_runs(experiment))
    rows = {(r["variant"], r["strategy"]): r for r in summary["rows"]}
    assert list(rows) == [("exp-10", "vanilla"), ("exp-10", "two-stage"), ("exp-50", "vanilla"),
                          ("exp-50", "two-stage")]  # fmt: skip
    for (variant, strategy), row in rows.items():
        per_seed = metrics_of(experiment, variant, strategy)
        assert row["n_seeds"] == 3 and row["seeds"] == list(SEEDS)
        for metric in ("macro_f1", "micro_f1", "balanced_accuracy", "tail_f1"):
            values = [per_seed[s][metric] for s in SEEDS]
            assert row[f"{metric}_mean"] == pytest.approx(statistics.mean(values))
            assert row[f"{metric}_std"] == pytest.approx(statistics.stdev(values))
        for name in per_seed[0]["per_class"]:
            f1s = [per_seed[s]["per_class"][name]["f1"] for s in SEEDS]
            assert row["per_class_f1_mean"][name] == pytest.approx(statistics.mean(f1s))
            assert row["per_class_f1_std"][name] == pytest.approx(statistics.stdev(f1s))


def test_comparison_with_the_baseline_pairs_seeds(experiment):
    summary = summarize(find_runs(experiment), baseline="vanilla")
    for row in summary["rows"]:
        if row["strategy"] == "vanilla":
            assert all(row[k] is None for k in ("wins", "losses", "ties", "mean_diff", "p_ttest", "p_wilcoxon"))
            continue
        ours = metrics_of(experiment, row["variant"], row["strategy"])
        base = metrics_of(experiment, row["variant"], "vanilla")
        diffs = [ours[s]["macro_f1"] - base[s]["macro_f1"] for s in SEEDS]
        assert row["n_pairs"] == 3
        assert row["wins"] == sum(d > 0 for d in diffs)
        assert row["losses"] == sum(d < 0 for d in diffs)
        assert row["ties"] == 0
        assert row["mean_diff"] == pytest.approx(statistics.mean(diffs))
        t = statistics.mean(diffs) / (statistics.stdev(diffs) / math.sqrt(len(diffs)))
        assert row["p_ttest"] == pytest.approx(2 * stats.t.sf(abs(t), df=len(diffs) - 1))
        assert row["p_wilcoxon"] == pytest.approx(exact_wilcoxon_p(diffs))
        # Three seeds: the signed-rank test cannot go below 0.25.
        assert row["p_wilcoxon"] >= 0.25


def test_missing_baseline_or_too_few_pairs_leave_tests_empty(experiment):
    runs = find_runs(experiment)
    no_baseline = summarize(runs, baseline="lp-ft")
    assert all(r["wins"] is None and r["p_ttest"] is None for r in no_baseline["rows"])

    one_seed = [r for r in runs if r.seed == 0]
    rows = summarize(one_seed)["rows"]
    two_stage = next(r for r in rows if r["variant"] == "exp-10" and r["strategy"] == "two-stage")
    assert two_stage["n_seeds"] == 1 and two_stage["macro_f1_std"] is None
    assert two_stage["n_pairs"] == 1 and two_stage["wins"] + two_stage["losses"] == 1
    assert two_stage["p_ttest"] is None and two_stage["p_wilcoxon"] is None


def test_identical_scores_are_ties_without_a_t_test():
    result = compare_paired([0.5, 0.7, 0.6], [0.5, 0.7, 0.6])
    assert (result["wins"], result["losses"], result["ties"], result["mean_diff"]) == (0, 0, 3, 0.0)
    assert result["p_ttest"] is None


def test_write_summary_files(experiment):
    csv_path, json_path = write_summary(experiment)
    assert (csv_path, json_path) == (experiment / "summary.csv", experiment / "summary.json")
    assert not list(experiment.glob("*.tmp")) and not list(experiment.glob(".*tmp"))
    with csv_path.open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4
    expected = summarize(find_runs(experiment))
    for line, row in zip(table, expected["rows"], strict=True):
        assert (line["variant"], line["strategy"], line["seeds"]) == (
            row["variant"],
            row["strategy"],
            "0;1;2",
        )
        assert float(line["macro_f1_mean"]) == pytest.approx(row["macro_f1_mean"])
        assert float(line["tail_f1_std"]) == pytest.approx(row["tail_f1_std"])
        for key in ("wins", "losses", "ties", "p_ttest", "p_wilcoxon", "mean_diff"):
            assert line[key] == ("" if row[key] is None else str(row[key]))
    data = json.loads(json_path.read_text())
    assert data["rows"] == json.loads(json.dumps(expected["rows"]))
    assert "paired t-test" in data["tests"]


def test_format_table_shows_mean_and_std(experiment):
    summary = summarize(find_runs(experiment))
    text = format_table(summary)
    row = summary["rows"][1]
    assert f"{row['macro_f1_mean']:.3f} ± {row['macro_f1_std']:.3f}" in text
    assert f"{row['wins']}/{row['losses']}/{row['ties']}" in text
    assert len(text.splitlines()) == 2 + len(summary["rows"]) + 1


def test_no_complete_runs_is_a_user_error(tmp_path):
    write_run(tmp_path / "a", strategy="vanilla", seed=0, complete=False)
    with pytest.raises(TailTuneError) as info:
        write_summary(tmp_path)
    assert str(info.value) == f"{tmp_path}: no complete runs (a run is complete once its metrics.json exists)"


def drop_class(run_dir: Path, name: str) -> dict:
    """Take one class's examples out of a run's test data and score it again, as if its test set lacked them."""
    run = load_run(run_dir)
    frame = run.predictions()
    frame = frame[frame["label"] != name]
    assert name not in set(frame["predicted"])  # the factory's errors never land on the rarest class
    index = {label: i for i, label in enumerate(run.labels)}
    metrics = compute_metrics([index[y] for y in frame["label"]], [index[y] for y in frame["predicted"]],
                              label_names=run.labels, train_counts=list(run.train_counts.values()))  # fmt: skip
    write_metrics(run_dir, {**run.metrics, **metrics})
    return metrics


def test_a_metric_a_seed_did_not_measure_is_left_out_of_the_mean(tmp_path):
    """Seed 2's test data holds no tail class: its tail F1 is not measured, not 0, and the row says so."""
    make_experiment(tmp_path, ratios=(10,), strategies=("vanilla",), seeds=SEEDS)
    tail = "sci/tech"  # the rarest of the factory's classes, the only one in the tail group
    dropped = drop_class(tmp_path / "exp-10" / "vanilla" / "seed-2", tail)
    assert dropped["tail_f1"] is None and dropped["per_class"][tail]["f1"] is None
    per_seed = metrics_of(tmp_path, "exp-10", "vanilla")
    (row,) = summarize(find_runs(tmp_path))["rows"]
    assert row["tail_f1_mean"] == pytest.approx(statistics.mean(per_seed[s]["tail_f1"] for s in (0, 1)))
    assert row["tail_f1_n_seeds"] == 2 and row["macro_f1_n_seeds"] == 3
    assert row["per_class_f1_mean"][tail] == pytest.approx(
        statistics.mean(per_seed[s]["per_class"][tail]["f1"] for s in (0, 1))
    )
    assert row["per_class_f1_n_seeds"] == {"world": 3, "sports": 3, "business": 3, tail: 2}
    assert f"{row['tail_f1_mean']:.3f} ± {row['tail_f1_std']:.3f} (2 of 3 seeds)" in format_table({"rows": [row]})

    for seed in (0, 1):
        drop_class(tmp_path / "exp-10" / "vanilla" / f"seed-{seed}", tail)
    (row,) = summarize(find_runs(tmp_path))["rows"]
    assert (row["tail_f1_mean"], row["tail_f1_std"], row["tail_f1_n_seeds"]) == (None, None, 0)
    assert "not measured" in format_table({"rows": [row]})
    csv_path, _ = write_summary(tmp_path)
    (line,) = csv.DictReader(csv_path.open())
    assert (line["tail_f1_mean"], line["tail_f1_n_seeds"]) == ("", "0")
