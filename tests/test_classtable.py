"""Classes head to tail, the rarest and weakest, and the most frequent confusions (:mod:`tailtune.classtable`)."""

from __future__ import annotations

import numpy as np
from longtail import CONFUSIONS, HEAD, HEAD_TO_TAIL, MIDDLE, NAMES, RAREST, SECOND, TRAIN_COUNTS, long_tail_metrics

from tailtune.classtable import (
    class_rows,
    lowest_f1,
    metrics_confusions,
    ordered_classes,
    rarest,
    rarest_line,
    top_confusions,
)


def test_rows_run_head_to_tail_with_the_metrics_groups_and_scores():
    metrics = long_tail_metrics()
    rows = class_rows(metrics)
    assert [row.name for row in rows] == [NAMES[c] for c in HEAD_TO_TAIL]
    assert [row.train_count for row in rows] == sorted(TRAIN_COUNTS, reverse=True)
    group_of = {name: group for group, names in metrics["groups"].items() for name in names}
    assert all(row.group == group_of[row.name] for row in rows)
    assert [row.group for row in rows] == ["head"] * 20 + ["medium"] * 20 + ["tail"] * 20
    for row in rows:
        scores = metrics["per_class"][row.name]
        assert (row.precision, row.recall, row.f1, row.support) == (
            scores["precision"], scores["recall"], scores["f1"], scores["support"],
        )  # fmt: skip


def test_equal_counts_keep_class_id_order():
    """Ties in training count: the lower class id first, as the groups of the metrics cut them."""
    assert ordered_classes({"a": 5, "b": 9, "c": 5, "d": 9}) == [
        ("b", "head"), ("d", "head"), ("a", "medium"), ("c", "tail"),
    ]  # fmt: skip


def test_rarest_classes_are_named_rarest_first_with_counts_and_f1():
    rows = class_rows(long_tail_metrics())
    assert [row.name for row in rarest(rows, 3)] == [NAMES[c] for c in HEAD_TO_TAIL[:-4:-1]]
    # RAREST has 2 test examples, both predicted as SECOND: recall 0, F1 0.
    assert rarest_line(rows, 1) == f"rarest classes: {NAMES[RAREST]} (2 train, F1 0.000)"
    line = rarest_line(rows, 3)
    assert line.count(" train, F1 ") == 3 and line.index(NAMES[RAREST]) < line.index(NAMES[HEAD_TO_TAIL[-2]])


def test_lowest_f1_lists_the_weakest_scored_classes():
    weakest = lowest_f1(class_rows(long_tail_metrics()), 2)
    assert weakest[0].name == NAMES[RAREST] and weakest[0].f1 == 0.0
    assert weakest[1].f1 == min(row.f1 for row in class_rows(long_tail_metrics()) if row.name != NAMES[RAREST])


def test_top_confusions_count_true_to_predicted():
    confusions = metrics_confusions(long_tail_metrics(), 10)
    assert [(c.true, c.predicted, c.count) for c in confusions] == [
        (NAMES[t], NAMES[p], n) for t, p, n in CONFUSIONS
    ]  # fmt: skip
    assert str(confusions[0]) == f"{NAMES[MIDDLE]} -> {NAMES[HEAD]}: 6 of 10"
    assert str(confusions[-1]) == f"{NAMES[RAREST]} -> {NAMES[SECOND]}: 2 of 2"
    assert len(metrics_confusions(long_tail_metrics(), 2)) == 2


def test_top_confusions_skip_the_diagonal_and_empty_cells():
    matrix = np.array([[9, 0, 1], [0, 5, 0], [3, 1, 7]])
    assert [str(c) for c in top_confusions(["a", "b", "c"], matrix, 5)] == ["c -> a: 3 of 11", "a -> c: 1 of 10",
                                                                             "c -> b: 1 of 11"]  # fmt: skip
    assert top_confusions(["a", "b", "c"], np.diag([3, 4, 5]), 5) == []


def test_lowest_f1_ties_put_the_frequent_class_first():
    """Of classes failing alike, the more frequent in training comes first: the rarest are listed on their own, and
    a frequent class at F1 0 must not hide behind them."""
    from tailtune.metrics import compute_metrics

    names = ["big", "mid", "rare"]
    metrics = compute_metrics([0, 1, 2, 0], [1, 0, 0, 0], label_names=names, train_counts=[50, 20, 2])
    assert [row.name for row in lowest_f1(class_rows(metrics), 2)] == ["mid", "rare"]


def test_short_names_stay_apart_and_on_one_line():
    """Cut at 12 columns, two names that start alike lose their middle instead of their end; a line break is written
    escaped; a lone long name ends in an ellipsis; a wide character counts two columns."""
    from tailtune.classtable import short_names

    names = ["pharmacology absorption", "pharmacology distribution", "ship\nline", "x" * 20, "经济" * 10]
    assert short_names(names, 12) == {
        "pharmacology absorption": "pharma…ption",
        "pharmacology distribution": "pharma…ution",
        "ship\nline": "ship\\nline",
        "x" * 20: "x" * 11 + "…",
        "经济" * 10: "经济经济经…",
    }


def test_label_names_in_markdown_keep_what_tells_them_apart():
    from tailtune.markdown import escape_label_md, escape_md

    assert escape_label_md("money  fx") == "money &nbsp;fx" != escape_label_md("money fx")
    assert escape_label_md("money\tfx") == "money\\\\tfx" and escape_label_md("a|b") == "a\\|b"
    assert escape_md("a text\nof  two lines") == "a text of two lines"  # texts: white space collapsed


def test_a_written_escape_stays_apart_from_the_character_it_names():
    from tailtune.classtable import short_names
    from tailtune.data.types import quote_names

    assert short_names(["line\nbreak", "line\\nbreak"], 40) == {"line\nbreak": "line\\nbreak",
                                                               "line\\nbreak": "line\\\\nbreak"}  # fmt: skip
    assert quote_names(["money fx", "money\u00a0fx"]) == "'money fx', 'money\\u00a0fx'"
