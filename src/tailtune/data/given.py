"""Labels as the estimator is given them (``y`` of ``fit``): one label a text or label sets, and their kind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tailtune.data.label_sets import is_label_list
from tailtune.errors import TailTuneError


def are_label_sets(labels: Any) -> bool:
    """Whether ``labels`` hold several labels per text: a 0/1 matrix of more than one column, or one list (tuple,
    set) of names per text. A column vector ``[n, 1]`` is one label per text."""
    shape = getattr(labels, "shape", None)
    if shape is not None and len(shape) == 2:
        return shape[1] > 1
    if not isinstance(labels, (list, tuple, np.ndarray, pd.Series)) or not len(labels):
        return False
    return all(map(is_label_list, labels))


def label_kind(labels: Sequence[Any], call: str, *, rows: Sequence[int] | None = None) -> str:
    """``integer``, ``boolean`` or ``string``: the one kind of every label (whole floats are integers); ``rows``:
    the data row of each label where they come from lists of labels.

    Raises:
        TailTuneError: For labels of several kinds (``"a"`` and ``1`` would both be names), or a number that is
            not whole (a regression target, not classes).
    """
    kinds: dict[str, int] = {}  # each kind's first label, by its index
    rows = range(len(labels)) if rows is None else rows
    for index, (row, value) in enumerate(zip(rows, labels, strict=True)):
        if isinstance(value, (bool, np.bool_)):
            kind = "boolean"
        elif isinstance(value, (int, float, np.integer, np.floating)):
            kind = "integer"
            if not float(value).is_integer():
                raise TailTuneError(
                    f"{call}: data row {row + 1} has the label {value}, not a whole number; a classifier needs "
                    "class labels (strings or integers), not continuous values"
                )
        else:
            kind = "string"
        kinds.setdefault(kind, index)
    if len(kinds) > 1:
        article = {"integer": "an", "boolean": "a", "string": "a"}
        shown = ", ".join(f"data row {rows[index] + 1} has {_shown(labels[index])}, {article[kind]} {kind}"
                          for kind, index in kinds.items())  # fmt: skip
        raise TailTuneError(f"{call}: labels of several kinds ({shown}); give them all as strings or all as integers")
    return next(iter(kinds))


def check_listed_kinds(label_lists: Any, call: str) -> None:
    """Check the names in lists of labels (one list per text) as :func:`label_kind` checks one label a text: all
    of one kind, numbers whole."""
    pairs = [(row, name) for row, names in enumerate(label_lists) for name in names]
    if pairs:
        label_kind([name for _, name in pairs], call, rows=[row for row, _ in pairs])


def _shown(value: Any) -> str:
    """A label as a message quotes it: strings in quotes, numbers plain (no ``np.int64(...)``)."""
    return repr(str(value)) if isinstance(value, str) else str(value)
