"""Multi-label data: a label column read as label sets, a 0/1 indicator matrix as label sets, and the check that
keeps joined labels from passing for single ones.

A label column is read as label sets when it holds lists (JSON lines, Parquet, ``datasets`` sequences) or when a
``label_separator`` is given (a CSV/TSV cell, or a string in JSON, split on it). Every name goes through the
normalisation single labels get (:mod:`tailtune.data.values`); a text's names are de-duplicated and sorted, and a
text may carry none (a negative example): ``[]`` in a list column, an empty cell with a separator. What is
refused, naming the row: a column mixing lists and single labels, a list holding anything but label names (a
list, a mapping, a null, an empty string), and, without a separator, a single label that joins other labels of the
column with ``|``, ``;`` or ``,`` (``"grain|wheat"`` beside ``"grain"`` and ``"wheat"``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from tailtune.data.types import quote_names
from tailtune.data.values import (
    Table,
    _describe_rows,
    _is_missing,
    _warn_merged_spellings,
    _whole_number,
    _written_name,
)
from tailtune.data.visible import normal_label, shown
from tailtune.errors import TailTuneError

logger = logging.getLogger(__name__)

#: Characters that join several labels in one cell when a file was written without a separator being named.
JOINERS = ("|", ";", ",")
_LIST_TYPES = (list, tuple, set, frozenset, np.ndarray)


def is_label_list(value: Any) -> bool:
    """Whether a label cell holds several values (a list, tuple, set or array) rather than one label."""
    return isinstance(value, _LIST_TYPES)


def label_sets(table: Table, column: str, separator: str | None) -> list[tuple[str, ...] | None]:
    """The label column as label sets (see the module docstring); ``None`` where a cell is missing (null).

    Raises:
        TailTuneError: For a column mixing lists and single labels, a list holding something other than label
            names, or an empty ``separator``.
    """
    if separator == "":
        raise TailTuneError("label_separator must not be empty; give the character between labels, such as '|'",
                            setting="label_separator")  # fmt: skip
    values = table.columns[column]
    _refuse_mixed(table, column)
    ids = (table.class_names or {}).get(column)
    spellings: dict[str, Counter[str]] = {}
    out: list[tuple[str, ...] | None] = []
    for i, value in enumerate(values):
        if _is_missing(value):
            out.append(None)
            continue
        if is_label_list(value):
            written = [_item_name(table, column, i, item, ids) for item in _items(table, column, i, value)]
        else:
            name = _one_name(table, column, i, value, ids)
            written = [name] if separator is None or name is None else name.split(separator)
        names = set()
        for raw in written:
            name = _whole_number(normal_label(raw or ""))
            if name:
                names.add(name)
                spellings.setdefault(name, Counter())[_whole_number(raw.strip())] += 1  # type: ignore[union-attr]
        out.append(tuple(sorted(names)))
    _warn_merged_spellings(table.source, spellings)
    if separator is not None:
        _refuse_other_joiners(table, column, separator, out)
    _warn_unlikely_sets(table.source, column, separator, values, out)
    return out


def _refuse_other_joiners(table: Table, column: str, separator: str, sets: Sequence[tuple[str, ...] | None]) -> None:
    """Refuse a label, split on ``separator``, that still joins labels of other rows with another of
    :data:`JOINERS` (``acq|earn`` beside ``acq`` and ``earn``, read with ``' '``): the wrong separator was named,
    and each such cell would train a class of its own."""
    whole = {name for row in sets if row for name in row}
    for i, row in enumerate(sets):
        for name in row or ():
            for joiner in (j for j in JOINERS if j != separator and j in name):
                parts = [p for p in (_whole_number(normal_label(x)) for x in name.split(joiner)) if p]
                # Two names or more: '0|' beside '0' is a name ending in the joiner, not labels joined by it.
                if len(parts) > 1 and all(part in whole for part in parts):
                    raise TailTuneError(
                        f"{table.source}: {_describe_rows(table, [i])} the label {shown(name)} in column '{column}', "
                        f"which joins {quote_names(parts)}, labels of other rows, with '{joiner}' rather than the "
                        f"separator {separator!r}; give '{joiner}' as label_separator",
                        setting="label_separator",
                    )


def _warn_unlikely_sets(source: str, column: str, separator: str | None, values: Sequence[Any],
                        sets: Sequence[tuple[str, ...] | None]) -> None:  # fmt: skip
    """Warn where label sets look misread: a separator that no cell holds (every text then has at most one
    label: perhaps the cells join labels with another character), or a label that every text carries (it tells
    the texts apart no more than a constant, perhaps a fragment of a wrong split)."""
    read = [row for row in sets if row is not None]
    cells = [v for v in values if isinstance(v, str) and v.strip()]  # no cell with a label: refused after this
    if separator and cells and not any(separator in cell for cell in cells):
        logger.warning("%s: no cell of column '%s' holds the label separator %r: every text has at most one "
                       "label; if the labels are joined by another character, give that one", source, column,
                       separator)  # fmt: skip
    if len(read) >= 10:  # fewer texts may well share one label
        everywhere = set.intersection(*(set(row) for row in read))
        if everywhere:
            logger.warning("%s: every text carries the label(s) %s: a label on every text tells nothing apart; "
                           "check that the labels are split where they should be", source,
                           quote_names(sorted(everywhere)))  # fmt: skip


def _refuse_mixed(table: Table, column: str) -> None:
    kinds = [(i, is_label_list(v)) for i, v in enumerate(table.columns[column]) if not _is_missing(v)]
    if not kinds:
        return
    first, listed = kinds[0]
    other = next((i for i, kind in kinds if kind != listed), None)
    if other is not None:
        what = {True: "a list of labels", False: "a single label"}
        raise TailTuneError(
            f"{table.source}: {_describe_rows(table, [other])} {what[not listed]} in column '{column}' while data "
            f"row {first + 1} has {what[listed]}; write every row's labels as a list ([] for a text with no label)"
        )


def _items(table: Table, column: str, row: int, value: Any) -> list[Any]:
    if isinstance(value, np.ndarray) and value.ndim != 1:
        _refuse_item(table, column, row, value)
    items = value.tolist() if isinstance(value, np.ndarray) else list(value)
    for item in items:
        if is_label_list(item) or isinstance(item, (dict, bytes)) or _is_missing(item):
            _refuse_item(table, column, row, item)
    return items


def _item_name(table: Table, column: str, row: int, item: Any, ids: list[str] | None) -> str:
    name = _one_name(table, column, row, item, ids)
    if name is None or not normal_label(name):
        _refuse_item(table, column, row, item)
    return name  # type: ignore[return-value]


def _one_name(table: Table, column: str, row: int, value: Any, ids: list[str] | None) -> str | None:
    """One label value as written (a ``ClassLabel`` id as its name), ``None`` when missing."""
    if ids is not None and not _is_missing(value):
        if not 0 <= int(value) < len(ids):
            raise TailTuneError(
                f"{table.source}: {_describe_rows(table, [row])} label id {int(value)} in column '{column}', "
                f"which has only {len(ids)} class names; fix the dataset's labels"
            )
        value = ids[int(value)]
    try:
        return _written_name(value)
    except TypeError:
        _refuse_item(table, column, row, value)
    return None  # unreachable: _refuse_item raises


def _refuse_item(table: Table, column: str, row: int, item: Any) -> None:
    what = "a null" if _is_missing(item) else "an empty label" if isinstance(item, str) else f"a {type(item).__name__}"
    raise TailTuneError(
        f"{table.source}: {_describe_rows(table, [row])} {what} inside its list of labels in column '{column}'; "
        "a list holds label names (strings or numbers) only: remove it"
    )


def refuse_joined_labels(table: Table, column: str, names: Sequence[str | None]) -> None:
    """Refuse a single-label column where a label joins other labels of the column with ``|``, ``;`` or ``,``.

    ``"grain|wheat"`` beside rows labelled ``"grain"`` and ``"wheat"`` is most likely two labels written in one
    cell without the separator named; ``"Business, Finance"`` stays one label unless ``"Business"`` and
    ``"Finance"`` are labels of their own.

    Raises:
        TailTuneError: Naming the first such row and the ``label_separator`` that would split it.
    """
    whole = {name for name in names if name}
    checked: set[str] = set()
    for i, name in enumerate(names):
        if not name or name in checked:
            continue
        checked.add(name)
        for joiner in JOINERS:
            parts = [p for p in (_whole_number(normal_label(x)) for x in name.split(joiner)) if p]
            if joiner in name and parts and all(part in whole for part in parts):
                raise TailTuneError(
                    f"{table.source}: {_describe_rows(table, [i])} the label {shown(name)} in column '{column}', "
                    f"and {quote_names(parts)} are labels of other rows, so it reads as several labels joined by "
                    f"'{joiner}'; rename the labels if each text has one, or if texts carry several labels give "
                    f"'{joiner}' as label_separator",
                    setting="label_separator",
                )


def indicator_sets(matrix: Any, label_names: Sequence[Any] | None, *, source: str) -> list[tuple[str, ...]]:
    """The label sets a 0/1 indicator matrix stands for: row ``i`` carries ``label_names[j]`` where it holds 1.

    Args:
        matrix: One row per text and one column per label: a 2-D NumPy array, a SciPy sparse matrix, a pandas
            DataFrame or a list of equally long lists; only 0 and 1 (or booleans) in it.
        label_names: The label of each column; by default a DataFrame's column names, else ``"0"`` .. ``"K-1"``.
        source: What the data is called in messages.

    Raises:
        TailTuneError: For rows of another width, values other than 0 and 1, or label names that are empty or
            name one label twice.
    """
    if label_names is None:
        label_names = _frame_columns(matrix)
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    elif hasattr(matrix, "to_numpy"):
        matrix = matrix.to_numpy()
    rows = list(matrix)
    flat = next((i for i, row in enumerate(rows) if not is_label_list(row)), None)
    if flat is not None:
        raise TailTuneError(
            f"{source}: row {flat + 1} of the labels holds a {type(rows[flat]).__name__}, not a row of an indicator "
            "matrix (one 0 or 1 for each label); give one label per text without label_names and indicator"
        )
    width = len(label_names) if label_names is not None else (len(rows[0]) if rows else 0)
    for i, row in enumerate(rows):
        if len(row) != width:
            told = f"label_names names {width}" if label_names is not None else f"row 1 has {width}"
            raise TailTuneError(
                f"{source}: row {i + 1} of the indicator labels has {len(row)} values where {told}; give every row "
                "one 0 or 1 for each label"
            )
    names = _column_names(label_names, width, source)
    values = np.asarray(rows, dtype=object).reshape(len(rows), width)
    wrong = np.argwhere(~_is_indicator(values))
    if len(wrong):
        i, j = wrong[0]
        raise TailTuneError(
            f"{source}: row {i + 1} of the indicator labels holds {values[i, j]!r} for label {shown(names[j])}; an "
            "indicator matrix holds only 0 and 1 (or False and True)"
        )
    marked = values.astype(bool)
    unused = [names[j] for j in np.flatnonzero(~marked.any(axis=0))]
    if unused and rows:
        logger.warning("%s: label(s) %s mark no text; no model can learn them from this data", source,
                       quote_names(unused))  # fmt: skip
    return [tuple(sorted(names[j] for j in np.flatnonzero(row))) for row in marked]


def indicator_columns(labels: Any, *, source: str) -> list[str] | None:
    """The label name of each column of ``labels`` where it is a 2-D indicator matrix (a DataFrame's column names,
    else ``"0"`` .. ``"K-1"``), as :func:`indicator_sets` reads them; None for labels of any other shape."""
    shape = getattr(labels, "shape", None)
    if shape is None or len(shape) != 2:
        return None
    return _column_names(_frame_columns(labels), shape[1], source)


def _frame_columns(matrix: Any) -> list[Any] | None:
    """A DataFrame's column names (the labels of its columns); None for any other matrix."""
    return list(matrix.columns) if hasattr(matrix, "columns") and hasattr(matrix, "to_numpy") else None


def _column_names(label_names: Sequence[Any] | None, width: int, source: str) -> list[str]:
    if label_names is None:
        return [str(j) for j in range(width)]
    names = []
    for j, value in enumerate(label_names):
        try:
            written = _written_name(value)
        except TypeError:
            written = None
        name = None if written is None else _whole_number(normal_label(written))
        if not name:
            raise TailTuneError(f"{source}: label_names[{j}] is {value!r}, not a label name (a string or a number)",
                                setting="label_names")  # fmt: skip
        names.append(name)
    twice = sorted(name for name, n in Counter(names).items() if n > 1)
    if twice:
        raise TailTuneError(f"{source}: label_names names {quote_names(twice)} more than once; name each column once",
                            setting="label_names")  # fmt: skip
    return names


def _is_indicator(values: np.ndarray) -> np.ndarray:
    """Elementwise: whether a value is 0 or 1 as a number or a boolean (not a string, not NaN)."""

    def one(value: Any) -> bool:
        return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)) and value in (0, 1)

    return np.vectorize(one, otypes=[bool])(values) if values.size else np.zeros(values.shape, dtype=bool)


def describe_label_sets(labels: Sequence[tuple[str, ...]]) -> dict[str, float]:
    """How multi-label data is labelled: ``texts``, ``labels`` (distinct names), ``texts_without_label`` (the
    negative examples), ``labels_per_text`` (mean) and ``most_labels`` (the most on one text)."""
    sizes = [len(row) for row in labels]
    return {
        "texts": len(labels),
        "labels": len({name for row in labels for name in row}),
        "texts_without_label": sum(size == 0 for size in sizes),
        "labels_per_text": float(np.mean(sizes)) if sizes else 0.0,
        "most_labels": max(sizes, default=0),
    }
