"""Per-class scores head to tail, the rarest and weakest classes, and the most frequent confusions.

The command line, the report and the model card all show a run's classes from the most frequent in training to
the rarest, with the group of :func:`tailtune.metrics.frequency_groups`; with dozens of classes they show the
rarest and the weakest ones and the confusions that happened most instead of every row. The selection lives
here, once; each of them only lays it out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from tailtune.metrics import GROUPS, frequency_groups, head_to_tail

_Row = TypeVar("_Row")


@dataclass(frozen=True)
class ClassRow:
    """One class's line: its name, group, training examples and scores (None where it was not scored)."""

    name: str
    group: str
    train_count: int
    support: int
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class Confusion:
    """``count`` of the ``total`` examples of class ``true`` were predicted as ``predicted``."""

    true: str
    predicted: str
    count: int
    total: int

    def __str__(self) -> str:
        return self.text()

    def text(self, name: Callable[[str], str] = str) -> str:
        """``true -> predicted: count of total``; ``name`` writes a class name (e.g. escaped for Markdown)."""
        return f"{name(self.true)} -> {name(self.predicted)}: {self.count} of {self.total}"


def ordered_classes(
    train_counts: Mapping[str, int], groups: Mapping[str, Sequence[str]] | None = None
) -> list[tuple[str, str]]:
    """``(name, group)`` of every class from the most frequent in training to the rarest.

    Ties keep the given (class-id) order, as :func:`tailtune.metrics.head_to_tail`.

    Args:
        train_counts: Training examples per class name, in class-id order.
        groups: Group name to class names, as ``metrics.json`` records them (the groups its group F1 scores
            were computed on); when None, :func:`tailtune.metrics.frequency_groups` of ``train_counts``. A
            class in no group is ``"-"``.
    """
    names = list(train_counts)
    counts = [int(train_counts[name]) for name in names]
    if groups is None:
        groups = {group: [names[i] for i in ids] for group, ids in frequency_groups(counts).items()} if names else {}
    group_of = {str(name): group for group, members in groups.items() for name in members or []}
    return [(names[i], group_of.get(names[i], "-")) for i in head_to_tail(counts)]


def class_rows(metrics: Mapping[str, Any]) -> list[ClassRow]:
    """The per-class rows of a ``metrics.json`` (:func:`tailtune.metrics.compute_metrics`), head to tail."""
    per_class = metrics.get("per_class") or {}
    counts = {name: int(row.get("train_count") or 0) for name, row in per_class.items()}
    rows = []
    for name, group in ordered_classes(counts, metrics.get("groups")):
        row = per_class[name]
        scores = (row.get("precision"), row.get("recall"), row.get("f1"))
        rows.append(ClassRow(name, group, counts[name], int(row.get("support") or 0), *scores))
    return rows


def rarest(rows: Sequence[_Row], n: int) -> list[_Row]:
    """The last ``n`` of classes ordered head to tail (:func:`class_rows`, :func:`ordered_classes`), rarest first."""
    return list(reversed(rows[-n:])) if n > 0 else []


def lowest_f1(rows: Sequence[ClassRow], n: int) -> list[ClassRow]:
    """The ``n`` scored classes with the lowest F1, lowest first; of equal F1 the more frequent in training first
    (a frequent class that fails says more than a rare one, and the rarest are listed on their own)."""
    position = {row.name: i for i, row in enumerate(rows)}
    scored = [row for row in rows if row.f1 is not None]
    return sorted(scored, key=lambda row: (row.f1, position[row.name]))[: max(n, 0)]


def rarest_line(rows: Sequence[ClassRow], n: int, name: Callable[[str], str] = str) -> str:
    """``rarest classes: x (3 train, F1 0.000), y (2 train, F1 -)``: the ``n`` rarest, rarest first.

    ``name`` writes a class name (e.g. escaped for Markdown).
    """
    return "rarest classes: " + ", ".join(f"{name(row.name)} ({row.train_count} train, F1 {fmt_score(row.f1, 3)})"
                                          for row in rarest(rows, n))  # fmt: skip


def lowest_line(rows: Sequence[ClassRow], n: int, name: Callable[[str], str] = str) -> str:
    """``lowest F1: x 0.000 (3 train), y 0.125 (40 train)``: the ``n`` scored classes of the lowest F1."""
    return "lowest F1: " + ", ".join(f"{name(row.name)} {fmt_score(row.f1, 3)} ({row.train_count} train)"
                                     for row in lowest_f1(rows, n))  # fmt: skip


def group_spans(classes: Iterable[tuple[str, int]]) -> dict[str, str]:
    """Each group's size and training range, ``{"head": "20 classes of 40-400 training examples", ...}``.

    Args:
        classes: ``(group, training examples)`` of every class; groups with no class are left out.
    """
    members: dict[str, list[int]] = {}
    for group, count in classes:
        members.setdefault(group, []).append(int(count))
    spans = {}
    for group in (*GROUPS, *sorted(set(members) - set(GROUPS))):
        if group in members:
            low, high, n = min(members[group]), max(members[group]), len(members[group])
            span = f"{low}-{high}" if low != high else str(low)
            spans[group] = f"{n} class{'es' if n != 1 else ''} of {span} training examples"
    return spans


def group_lines(metrics: Mapping[str, Any], rows: Sequence[ClassRow]) -> list[str]:
    """Each group's F1, size and training range: ``head F1 0.9000: 20 classes of 40-400 training examples``."""
    spans = group_spans((row.group, row.train_count) for row in rows)
    return [f"{group} F1 {fmt_score(metrics.get(f'{group}_f1'), missing='not measured')}: {spans[group]}"
            for group in GROUPS if group in spans]  # fmt: skip


def top_confusions(labels: Sequence[str], matrix: Any, n: int) -> list[Confusion]:
    """The ``n`` largest off-diagonal cells of a confusion matrix, largest first.

    Args:
        labels: Class names, in matrix order.
        matrix: Counts with true classes as rows and predicted classes as columns (``metrics.json``'s
            ``confusion_matrix.matrix``, or a sum of them over seeds).
        n: How many to return at most; cells of 0 are never returned.

    Returns:
        Confusions by count, largest first; equal counts in matrix order (true class, then predicted class).
    """
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape != (len(labels), len(labels)) or n <= 0:
        return []
    off = counts.copy()
    np.fill_diagonal(off, 0)
    true_idx, pred_idx = np.nonzero(off > 0)
    # A stable sort on the negated counts keeps row-major (matrix) order among equal counts.
    order = np.argsort(-off[true_idx, pred_idx], kind="stable")[:n]
    totals = counts.sum(axis=1)
    return [
        Confusion(true=str(labels[t]), predicted=str(labels[p]), count=int(off[t, p]), total=int(totals[t]))
        for t, p in zip(true_idx[order], pred_idx[order], strict=True)
    ]


def metrics_confusions(metrics: Mapping[str, Any], n: int) -> list[Confusion]:
    """:func:`top_confusions` of a ``metrics.json``'s confusion matrix (none when it has no matrix)."""
    cm = metrics.get("confusion_matrix") or {}
    return top_confusions(cm.get("labels") or [], cm.get("matrix") or [], n)


def name_list(names: Sequence[str], limit: int) -> str:
    """``a, b, c`` or, past ``limit`` names, ``a, b, c and 7 more``."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def short_names(names: Sequence[str], width: int) -> dict[str, str]:
    """Each class name as one line of at most ``width`` terminal columns where that keeps it apart from the others.

    A name is first written as one line (:func:`~tailtune.data.visible.printed_label`: a line break or tab escaped); a
    wide character (Chinese, Japanese, Korean) takes two columns. One wider than ``width`` ends in an ellipsis or,
    where that would print like another's (``Clinical pharmacology: absorpti…`` twice), loses its middle instead;
    names that still print alike are written whole.
    """
    from tailtune.data.visible import printed_label, terminal_columns

    printed = {name: printed_label(name) for name in names}

    def first(text: str, columns: int) -> str:  # the longest start of text that fits in columns
        kept = ""
        for char in text:
            if terminal_columns(kept + char) > columns:
                break
            kept += char
        return kept

    def end_cut(text: str) -> str:
        return text if terminal_columns(text) <= width else first(text, width - 1) + "…"

    def middle_cut(text: str) -> str:
        if terminal_columns(text) <= width:
            return text
        tail = first(text[::-1], (width - 1) // 2)[::-1]
        return first(text, width - 1 - terminal_columns(tail)) + "…" + tail

    shorts = {name: end_cut(text) for name, text in printed.items()}
    for cut in (middle_cut, str):
        alike = Counter(shorts.values())
        shorts.update({name: cut(printed[name]) for name, short in shorts.items() if alike[short] > 1})
    return shorts


def fmt_score(value: float | None, digits: int = 4, missing: str = "-") -> str:
    """A score to ``digits`` decimals, ``missing`` where it was not measured."""
    return missing if value is None else f"{value:.{digits}f}"
