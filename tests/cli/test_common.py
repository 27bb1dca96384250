"""What the command modules share (:mod:`tailtune.cli.common`): errors in the terms of flags, the metrics table."""

from __future__ import annotations

import pytest
from longtail import HEAD, HEAD_TO_TAIL, MIDDLE, NAMES, RAREST, long_tail_metrics

from tailtune.cli.common import FULL_TABLE_CLASSES, SHOWN_CLASSES, in_flag_terms, metrics_table
from tailtune.errors import TailTuneError
from tailtune.metrics import compute_metrics


@pytest.mark.parametrize(
    ("message", "setting", "expected"),
    [
        ("beta must be in [0, 1), got 1.0", "beta", "--beta must be in [0, 1), got 1.0"),
        ("x: name it with label_column", "label_column", "x: name it with --label-column"),
        ("stage 2: lr must be > 0", "lr", "stage 2: lr must be > 0"),
        ("lr must be > 0", None, "lr must be > 0"),
        ("refit does not apply to strategy 'tfidf'", "refit", "--no-refit does not apply to strategy 'tfidf'"),
        ("feature_cache does not apply", "feature_cache", "--no-feature-cache does not apply"),
    ],
)
def test_errors_speak_of_flags(message, setting, expected):
    """A setting named first or last in a library message becomes its flag (the one that turns it off, where that
    is the only one); elsewhere it stays a word."""
    assert in_flag_terms(TailTuneError(message, setting=setting)) == expected


def test_summary_of_many_classes_stays_short():
    """60 classes: group scores, the weakest and rarest rows head to tail, confusions, and where the rest is."""
    metrics = long_tail_metrics()
    table = metrics_table(metrics, full_scores="RUN/metrics.json")
    lines = table.splitlines()
    assert len(lines) <= 25 and max(map(len, lines)) <= 130
    assert lines[0].startswith(f"test: macro-F1 {metrics['macro_f1']:.4f}")
    assert lines[1].startswith(f"head F1 {metrics['head_f1']:.4f}: 20 classes of ")
    assert lines[3].startswith(f"tail F1 {metrics['tail_f1']:.4f}: 20 classes of 2-")
    assert "(every class in RUN/metrics.json)" in lines[4]
    rows = [line.split() for line in lines if line.startswith("class-")]
    assert 5 <= len(rows) <= 2 * SHOWN_CLASSES
    shown = [row[0] for row in rows]
    assert shown == [name for name in map(NAMES.__getitem__, HEAD_TO_TAIL) if name in shown]  # head to tail
    assert shown[-SHOWN_CLASSES:] == [NAMES[c] for c in HEAD_TO_TAIL[-SHOWN_CLASSES:]]  # the rarest, last
    rarest = next(row for row in rows if row[0] == NAMES[RAREST])
    assert rarest[1:] == ["tail", "2", "2", "0.000", "0.000", "0.000"]
    assert f"  {NAMES[MIDDLE]} -> {NAMES[HEAD]}: 6 of 10" in lines


def test_summary_of_many_classes_names_a_few_unscored_ones():
    metrics = long_tail_metrics()
    metrics["absent_classes"] = NAMES[:40]
    table = metrics_table(metrics)
    assert "(every class with --output, in the file it writes)" in table
    assert table.splitlines()[-1].endswith(", class-09 and 30 more")


def test_summary_of_few_classes_lists_every_class():
    """Up to FULL_TABLE_CLASSES classes: the headline, the header and one row per class, nothing else."""
    names = [f"c{i}" for i in range(FULL_TABLE_CLASSES)]
    counts = list(range(FULL_TABLE_CLASSES, 0, -1))
    y = list(range(FULL_TABLE_CLASSES))
    metrics = {**compute_metrics(y, y[1:] + y[:1], label_names=names, train_counts=counts), "split": "test"}
    lines = metrics_table(metrics, full_scores="RUN/metrics.json").splitlines()
    assert lines[1] == f"{'class':<24} {'train':>7} {'support':>8} {'precision':>9} {'recall':>7} {'F1':>7}"
    assert [line.split()[0] for line in lines[2:]] == names


def test_long_class_names_end_in_an_ellipsis_not_a_cut():
    """Names sharing a long prefix stay apart: written whole up to NAME_WIDTH characters, longer ones end in '…'."""
    from tailtune.cli.common import NAME_WIDTH
    from tailtune.metrics import compute_metrics

    names = ["C12 pediatric cardiovascular diseases", "C12 pediatric cardiovascular surgery", "x" * 60]
    metrics = {**compute_metrics([0, 1, 2], [0, 1, 2], label_names=names, train_counts=[3, 2, 1]), "split": "test"}
    lines = metrics_table(metrics).splitlines()
    assert any(line.startswith(names[0] + " ") for line in lines)
    assert any(line.startswith(names[1] + " ") for line in lines)
    assert any(line.startswith("x" * (NAME_WIDTH - 1) + "… ") for line in lines)


def test_long_names_that_would_print_alike_lose_their_middle_or_are_written_whole():
    """Cut at NAME_WIDTH, two names sharing their first 40 characters would print as one: they lose their middle
    instead; two that share both ends are written whole (the column widens); a lone long name still ends in '…'."""
    from tailtune.cli.common import NAME_WIDTH

    prefix = "Clinical pharmacology section, adults: "  # 39 characters
    names = [prefix + "absorption of the drug", prefix + "distribution of the drug", "y" * 45 + "1" + "y" * 45,
             "y" * 45 + "2" + "y" * 45, "z" * 60]  # fmt: skip
    metrics = {**compute_metrics([0, 1, 2, 3, 4], [0, 1, 2, 3, 4], label_names=names, train_counts=[5, 4, 3, 2, 1]),
               "split": "test"}  # fmt: skip
    cells = [line[: line.index("  ")].rstrip() for line in metrics_table(metrics).splitlines()[2:]]
    assert len(set(cells)) == len(names)
    assert cells[0] == prefix[:20] + "…" + "orption of the drug" and cells[1].endswith("…ibution of the drug")
    assert len(cells[0]) == NAME_WIDTH
    assert cells[2:4] == names[2:4]
    assert cells[4] == "z" * (NAME_WIDTH - 1) + "…"


def test_names_holding_line_breaks_or_tabs_stay_on_their_row():
    names = ["line\nbreak", "tab\there", "no-break\u00a0space"]
    metrics = {**compute_metrics([0, 1, 2], [0, 1, 2], label_names=names, train_counts=[3, 2, 1]), "split": "test"}
    lines = metrics_table(metrics).splitlines()
    assert len(lines) == 2 + len(names)
    assert [line.split()[0] for line in lines[2:]] == ["line\\nbreak", "tab\\there", "no-break\\u00a0space"]


def test_wide_names_keep_the_columns_in_line():
    """Chinese names take two terminal columns a character: every row ends in the same column, and a long wide name
    is cut by columns, not characters."""
    from tailtune.cli.common import NAME_WIDTH
    from tailtune.data.visible import terminal_columns

    names = ["体育", "sport", "经济" * 30]
    metrics = {**compute_metrics([0, 1, 2], [0, 1, 2], label_names=names, train_counts=[3, 2, 1]), "split": "test"}
    rows = metrics_table(metrics).splitlines()[1:]
    assert len({terminal_columns(row) for row in rows}) == 1, rows  # the scores are right-aligned: one end column
    cell = rows[3][: rows[3].index("…") + 1]
    assert NAME_WIDTH - 1 <= terminal_columns(cell) <= NAME_WIDTH and cell.startswith("经济经济")


@pytest.mark.parametrize("k", [3, FULL_TABLE_CLASSES + 10])
def test_a_model_without_training_counts_says_so_and_makes_up_no_groups(k):
    """A checkpoint trained elsewhere records no training counts: no groups, no rarest rows, '-' for its counts."""
    names = [f"c{i}" for i in range(k)]
    y = list(range(k))
    metrics = {**compute_metrics(y, y[1:] + y[:1], label_names=names, train_counts=[0] * k), "split": "test"}
    lines = metrics_table(metrics).splitlines()
    assert lines[0].endswith("tail F1 not measured")
    assert lines[1] == ("the model records no training counts (a checkpoint trained elsewhere): classes in its own "
                        "order, no head/medium/tail groups")  # fmt: skip
    header = next(line for line in lines if line.startswith("class"))
    assert "group" not in header
    rows = [line.split() for line in lines if line.startswith("c") and line != header]
    assert rows and all(row[1] == "-" for row in rows)
    assert not any(line.startswith(("head F1", "tail F1")) or "rarest" in line for line in lines)
