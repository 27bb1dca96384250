"""The report's sections (:mod:`tailtune.report.sections`): the values they show and the ones they leave out."""

from __future__ import annotations

import html
import json
import statistics

from run_factory import make_experiment

from tailtune.report import TEXT_LIMIT, build_report

from .conftest import LONG_TEXT


def test_summary_table_holds_computed_values(experiment, page):
    per_seed = [
        json.loads((experiment / "exp-50" / "two-stage" / f"seed-{s}" / "metrics.json").read_text())["macro_f1"]
        for s in (0, 1, 2)
    ]
    assert f"{statistics.mean(per_seed):.3f} ± {statistics.stdev(per_seed):.3f}" in page
    for heading in ("Summary", "Training class distribution", "Macro-F1 per strategy",
                    "Macro-F1 against imbalance ratio", "Per-class F1 against training frequency",
                    "Confusion matrices", "Misclassified tail examples", "Configuration"):  # fmt: skip
        assert f">{heading}</h2>" in page
    assert "12 complete runs (1 incomplete skipped)" in page
    assert "summed over" in page.lower() and "normalised by row" in page


def test_tail_examples_are_truncated(page):
    assert "…" in page
    assert LONG_TEXT.strip() not in page
    assert html.escape(LONG_TEXT.strip()[: TEXT_LIMIT - 1].rstrip()) + "…" in page


def test_config_and_versions_are_listed(page):
    # two-stage's first stage: the top layer with LDAM and effective-number weights
    assert "Stages: two-stage" in page and "top1" in page and "ldam" in page and "effective" in page
    assert "transformers" in page and "4.46.0" in page
    assert "data/train.csv" in page


def test_ratio_section_needs_several_ratios(tmp_path):
    make_experiment(tmp_path, ratios=(10,), seeds=(0, 1))
    html_path, _ = build_report(tmp_path, output=tmp_path / "out" / "mine")
    assert html_path == tmp_path / "out" / "mine.html"
    assert (tmp_path / "out" / "mine.md").is_file() and (tmp_path / "out" / "mine_files").is_dir()
    assert "imbalance ratio</h2>" not in html_path.read_text(encoding="utf-8")


def test_report_shows_what_a_test_set_did_not_measure(tmp_path):
    """A class with no test example and no prediction is "-" in the per-class table, a group "not measured"."""
    make_experiment(tmp_path, ratios=(10,), seeds=(0,))
    for strategy in ("vanilla", "two-stage"):
        path = tmp_path / "exp-10" / strategy / "seed-0" / "metrics.json"
        metrics = json.loads(path.read_text(encoding="utf-8"))
        metrics["tail_f1"] = None
        metrics["per_class"]["sci/tech"].update(precision=None, recall=None, f1=None, support=0)
        path.write_text(json.dumps(metrics), encoding="utf-8")
    page = build_report(tmp_path)[0].read_text(encoding="utf-8")
    summary = page.split(">Summary</h2>", 1)[1].split("</table>", 1)[0]
    assert summary.count(">not measured<") == 2  # the tail F1 of both strategies
    table = page.split("Per-class F1 table: exp-10", 1)[1].split("</table>", 1)[0]
    row = table.split("sci/tech", 1)[1].split("</tr>", 1)[0]
    assert row.count(">not measured<") == 2


def test_report_of_many_classes_stays_readable(tmp_path):
    """60 classes: the table head to tail, the rarest named, confusions listed, the figure cut to 15 classes."""
    import pandas as pd
    from longtail import HEAD_TO_TAIL, NAMES, TRAIN_COUNTS
    from run_factory import write_run

    from tailtune.report.context import CONFUSION_CLASSES, LISTED

    for strategy in ("vanilla", "two-stage"):
        write_run(tmp_path / "lt" / strategy / "seed-0", strategy=strategy, variant="lt", labels=NAMES,
                  train_counts=TRAIN_COUNTS, n_test_per_class=4)  # fmt: skip
    _, md_path = build_report(tmp_path)
    text = md_path.read_text(encoding="utf-8")
    table = text.split("### Per-class F1 table: lt (60 classes", 1)[1].split("\n\n", 2)[1]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    assert [row[0][2:] for row in rows] == [NAMES[c] for c in HEAD_TO_TAIL]
    assert [int(row[2]) for row in rows] == sorted(TRAIN_COUNTS, reverse=True) and {row[3] for row in rows} == {"4"}
    rarest = text.split("the 5 rarest classes in training", 1)[1].split("\n\n", 2)[1].splitlines()
    assert [line.split(" (")[0][2:] for line in rarest] == [NAMES[c] for c in HEAD_TO_TAIL[: -LISTED - 1 : -1]]

    # The listed confusions, counted again from predictions.csv: true label -> predicted label.
    frame = pd.read_csv(tmp_path / "lt" / "vanilla" / "seed-0" / "predictions.csv")
    wrong = frame[frame["label"] != frame["predicted"]].groupby(["label", "predicted"]).size()
    top = wrong.sort_values(ascending=False, kind="stable")
    listed = text.split("- vanilla (1 seed): ", 1)[1].split("\n", 1)[0].split(", ")
    assert len(listed) == LISTED
    for item in listed:
        pair, count = item.replace("-&gt;", "->").split(": ")
        true, predicted = pair.split(" -> ")
        assert int(count.split(" of ")[0]) == wrong[(true, predicted)]
        assert int(count.split(" of ")[1]) == (frame["label"] == true).sum()
    assert int(listed[0].split(": ")[1].split(" of ")[0]) == top.iloc[0]
    assert f"the {CONFUSION_CLASSES} of 60 classes in the most frequent confusions" in text


def test_report_of_few_classes_draws_every_class_and_lists_no_confusions(page):
    assert "Most frequent confusions" not in page and "rarest classes in training" not in page
    assert "classes in the most frequent confusions" not in page


def test_confusion_figure_of_many_classes_takes_the_classes_of_the_largest_confusions():
    """Pair by pair from the largest confusion down; a pair that no longer fits is passed over."""
    import numpy as np

    from tailtune.report.mistakes import _most_confused

    counts = np.diag([10, 10, 10, 10, 10])
    counts[3, 0], counts[4, 1], counts[1, 0], counts[2, 4] = 9, 7, 5, 3
    assert _most_confused(list("abcde"), counts, 3) == ["d", "a", "b"]
    assert _most_confused(list("abcde"), counts, 5) == ["d", "a", "e", "b", "c"]
