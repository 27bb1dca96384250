"""From raw columns to a :class:`~tailtune.data.types.TextDataset`: the checks and the label normalisation that
every source (each file format, the hub, the Python API) goes through.

- Labels: a string label is put in the one form labels are compared in (:func:`~tailtune.data.visible.normal_label`:
  invisible characters such as zero-width spaces removed, Unicode NFC, surrounding whitespace stripped); two
  spellings of one source that meet in that form are one class, with a warning naming both. Labels that differ
  only in letter case, character width or the white space inside them (``Grain`` and ``grain``, ``ｃｒｕｄｅ`` and
  ``crude``, ``money fx`` written with a tab or two spaces) stay apart, since case can carry meaning (gene names,
  tickers), with a warning naming them and their counts. A whole-number float
  (``1.0``) and a string that is a plain decimal literal with an all-zero fraction (``"1.0"``, ``"-3.00"``)
  both become the integer name ``"1"``, ``"-3"``; other strings stay as written (``"1e3"``, ``"2.50"``,
  ``"007"``, ``"NA"``); booleans become ``"True"``/``"False"``. A missing label (empty, null, NaN, or nothing
  but invisible characters) is refused naming the row.
- Label sets (multi-label): a label column holding lists, or split on a ``label_separator``, gives each text a
  tuple of names, each normalised as above (:mod:`tailtune.data.label_sets`); ``[]`` or an empty cell split on a
  separator is a text with no label, a null a missing one.
- Texts: kept exactly as read. A missing text (null, NaN) or a non-string one (a number, a list) is refused
  naming the row and column; an empty one too (nothing but whitespace and invisible characters:
  :func:`~tailtune.data.visible.is_empty_text`), unless ``allow_empty_texts`` is set.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import DataConversionWarning

from tailtune.data.types import TextDataset, quote_names
from tailtune.data.visible import folded_label, is_empty_text, normal_label, shown
from tailtune.errors import TailTuneError

logger = logging.getLogger(__name__)

_MAX_ROWS_SHOWN = 10
# A label string that is a whole number written as a decimal ("1.0", "-3.00"): the integer part is its name,
# as it is for the float 1.0. Exponent forms ("1e3") are left alone: they are as likely codes as numbers.
_WHOLE_DECIMAL = re.compile(r"([+-]?[0-9]+)\.0+")


@dataclass
class Table:
    """Columns read from any source, before validation. Values are str, None (missing) or raw numbers."""

    columns: dict[str, list[Any]]
    source: str
    # The 1-based file line each data row starts on, when the format has lines worth quoting.
    row_lines: list[int] | None = None
    # HF ClassLabel names per column, used to turn ids back into names.
    class_names: dict[str, list[str]] | None = None


def dataset_from_values(
    texts: Sequence[Any],
    labels: Any,
    *,
    source: str,
    allow_empty_texts: bool = False,
    label_names: Sequence[Any] | None = None,
    indicator: bool | None = None,
    label_separator: str | None = None,
) -> TextDataset:
    """Check and normalise texts and labels given in memory exactly as :func:`read_dataset` does a file's.

    ``labels`` takes one of three shapes, as scikit-learn's classifiers do:

    - one label per text (strings, integers, whole floats; booleans become ``"True"``/``"False"``): single-label;
    - one collection of labels per text (lists, tuples, sets; ``[]`` for a text with no label): multi-label;
    - a 0/1 indicator matrix, one row per text and one column per label: multi-label. A 2-D array (NumPy, SciPy
      sparse, a pandas DataFrame) is always read as one; a list of lists only with ``indicator=True`` or
      ``label_names`` given (else its rows are label sets: ``[[0, 1]]`` is the labels ``"0"`` and ``"1"``).

    Args:
        texts: One string per row.
        labels: The labels in one of the shapes above, or ``None`` for unlabelled texts.
        source: What the data is called in messages, e.g. ``"fit()"``.
        allow_empty_texts: Accept empty and whitespace-only texts.
        label_names: The label of each column of an indicator matrix (scikit-learn's ``MultiLabelBinarizer``
            ``classes_``); by default a DataFrame's column names, else ``"0"`` .. ``"K-1"``. Only for an indicator.
        indicator: ``True``: ``labels`` is an indicator matrix; ``False``: never read it as one (the rows of a 2-D
            array are then label sets); ``None`` (default): as the list above says.
        label_separator: Split string labels on this into label sets, as :func:`read_dataset` splits CSV cells.

    Returns:
        The texts and their label names as strings (single-label), or sorted tuples of names (multi-label);
        ``columns`` is ``None``.

    Raises:
        TailTuneError: For texts and labels of different lengths, no texts, and any row :func:`read_dataset`
            would refuse (a missing label, a missing or non-string text, ...), naming the (1-based) row; for an
            indicator matrix, rows of the wrong width and values other than 0 and 1.
    """
    columns: dict[str, list[Any]] = {"texts": _as_list(texts, "texts", source)}
    if labels is not None:
        columns["labels"] = _label_values(labels, source, label_names=label_names, indicator=indicator)
        if len(columns["labels"]) != len(columns["texts"]):
            raise TailTuneError(
                f"{source}: {len(columns['texts'])} texts but {len(columns['labels'])} labels; pass one label per text"
            )
    if not columns["texts"]:
        raise TailTuneError(f"{source}: no texts given")
    return to_dataset(Table(columns, source), text_column="texts", label_column="labels",
                      require_labels=labels is not None, allow_empty_texts=allow_empty_texts,
                      label_separator=label_separator)  # fmt: skip


def _label_values(labels: Any, source: str, *, label_names: Sequence[Any] | None, indicator: bool | None) -> list[Any]:
    """The labels given to :func:`dataset_from_values` as one value per row: a name, or a tuple of names."""
    from tailtune.data.label_sets import indicator_sets

    two_d = getattr(labels, "ndim", 1) == 2
    reading_given = indicator is not None
    if indicator is None:
        indicator = two_d or label_names is not None
    if indicator:
        if isinstance(labels, (str, bytes)) or getattr(labels, "ndim", 2) != 2:
            raise TailTuneError(f"{source}: an indicator matrix of labels must be two-dimensional, one row per text",
                                setting="indicator")  # fmt: skip
        return indicator_sets(labels, label_names, source=source)  # type: ignore[return-value]
    if label_names is not None:
        raise TailTuneError(f"{source}: label_names names the columns of an indicator matrix; drop it with "
                            "indicator=False", setting="label_names")  # fmt: skip
    if two_d:
        return [tuple(row) for row in (labels.toarray() if hasattr(labels, "toarray") else np.asarray(labels))]
    values = _as_list(labels, "labels", source)
    if not reading_given and _looks_like_indicator_rows(values):
        # scikit-learn reads such a list as an indicator matrix; here its rows are label sets, so say so.
        logger.warning("%s: the labels are lists of 0s and 1s of one length, read as label names ('0', '1'); for an "
                       "indicator matrix (one column per label) pass np.asarray(y)", source)  # fmt: skip
    return values


def _looks_like_indicator_rows(values: Sequence[Any]) -> bool:
    """Whether every row is a list of the integers 0 and 1 only, all of one length above one."""
    rows = [row for row in values if isinstance(row, (list, tuple))]
    if len(rows) != len(values) or not rows or len({len(row) for row in rows}) != 1 or len(rows[0]) < 2:
        return False
    return all(type(item) in (int, np.int64) and item in (0, 1) for row in rows for item in row)


def _as_list(values: Sequence[Any], name: str, source: str) -> list[Any]:
    # A lone string would otherwise be taken for a list of one-character texts, and a table for its column names.
    if isinstance(values, (str, bytes)) or getattr(values, "ndim", 1) != 1:
        raise TailTuneError(f"{source}: {name} must be a one-dimensional sequence (a list), one value per row")
    return list(values)


def to_dataset(
    table: Table,
    *,
    text_column: str,
    label_column: str | None,
    require_labels: bool,
    allow_empty_texts: bool = False,
    label_separator: str | None = None,
) -> TextDataset:
    """Validate a table read from any source into a dataset (see the module docstring for what is refused).

    The labels are label sets when the label column holds lists or ``label_separator`` is given
    (:mod:`tailtune.data.label_sets`), else one name per text.
    """
    from tailtune.data.label_sets import JOINERS, is_label_list, label_sets, refuse_joined_labels

    src = table.source
    found = quote_names(list(table.columns)) or "none"
    if text_column not in table.columns:
        raise TailTuneError(
            f"{src}: no text column '{text_column}' (columns found: {found}); name it with text_column",
            setting="text_column",
        )
    if require_labels and label_column not in table.columns:
        raise TailTuneError(
            f"{src}: no label column '{label_column}' (columns found: {found}); name it with label_column",
            setting="label_column",
        )
    if not table.columns[text_column]:
        raise TailTuneError(f"{src}: has a header but no data rows")

    texts = _texts(table, text_column, allow_empty=allow_empty_texts)
    labels: list[Any] | None = None
    if label_column in table.columns:
        sets = label_separator is not None or any(map(is_label_list, table.columns[label_column]))
        values = label_sets(table, label_column, label_separator) if sets else _label_names(table, label_column)
        bad = [i for i, v in enumerate(values) if v is None or v == ""]
        _warn_case_variants(src, (name for v in values if v for name in ((v,) if isinstance(v, str) else v)))
        if not sets:
            _warn_list_literals(table, label_column, values)
            _warn_measurements(table, label_column, values)
        if not bad:
            labels = values
            if not sets:
                refuse_joined_labels(table, label_column, values)
        elif require_labels:
            if not sets:  # joined labels first: with the separator named, an empty cell is a text with no label
                refuse_joined_labels(table, label_column, values)
            fix = "write [] for a text with no label, or remove the row" if sets else "fill it in or remove the row"
            # Cells that join names beside empty ones: most likely label sets, some of them empty, read without the
            # separator; name it (last, so that the command line names its flag).
            joiner = None if sets else next((j for j in JOINERS if any(isinstance(v, str) and j in v for v in values)),
                                            None)  # fmt: skip
            if joiner:
                fix += f"; if a text may carry several labels or none, give '{joiner}' as label_separator"
            raise TailTuneError(f"{src}: {_describe_rows(table, bad)} {'no label list' if sets else 'an empty label'}; "
                                f"{fix}", setting="label_separator" if joiner else None)  # fmt: skip
        else:
            logger.warning("%s: %d rows have no label; reading the texts without labels", src, len(bad))
    return TextDataset(texts, labels, src)


def _texts(table: Table, column: str, *, allow_empty: bool) -> list[str]:
    """The text column as strings exactly as read, refusing missing, non-string and (unless allowed) empty texts."""
    values = table.columns[column]
    src = table.source
    missing = [i for i, v in enumerate(values) if _is_missing(v)]
    if missing:
        raise TailTuneError(
            f"{src}: {_describe_rows(table, missing)} no text (null, NaN or no value) in column '{column}'; "
            "fill it in or remove the row"
        )
    wrong = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if wrong:
        kinds = ", ".join(sorted({type(values[i]).__name__ for i in wrong}))
        raise TailTuneError(
            f"{src}: {_describe_rows(table, wrong)} a non-text value ({kinds}) in column '{column}'; expected "
            "text: store the column as strings"
        )
    if not allow_empty:
        empty = [i for i, v in enumerate(values) if is_empty_text(v)]
        if empty:
            raise TailTuneError(f"{src}: {_describe_rows(table, empty)} an empty text; fill it in or remove the row")
    # str() turns str subclasses (numpy's str_) into plain strings.
    return [str(v) for v in values]


def _label_names(table: Table, column: str) -> list[str | None]:
    """The label column as label names (see the module docstring), ``None`` or ``""`` where missing."""
    names = (table.class_names or {}).get(column)
    out: list[str | None] = []
    spellings: dict[str, Counter[str]] = {}
    for i, value in enumerate(table.columns[column]):
        if names is not None and not _is_missing(value):
            # ClassLabel ids become names; -1 is the hub's "no label" marker (e.g. GLUE test splits).
            if not -1 <= int(value) < len(names):
                raise TailTuneError(
                    f"{table.source}: {_describe_rows(table, [i])} label id {int(value)} in column '{column}', "
                    f"which has only {len(names)} class names; fix the dataset's labels"
                )
            value = None if int(value) < 0 else names[int(value)]
        try:
            written = _written_name(value)
        except TypeError:
            raise TailTuneError(
                f"{table.source}: {_describe_rows(table, [i])} a {type(value).__name__} in column "
                f"'{column}'; expected one label per row, a string or a number (or a list of labels in every row)"
            ) from None
        name = None if written is None else _whole_number(normal_label(written))
        if name:
            spellings.setdefault(name, Counter())[_whole_number(written.strip())] += 1
        out.append(name)
    _warn_merged_spellings(table.source, spellings)
    return out


def _warn_merged_spellings(source: str, spellings: dict[str, Counter[str]]) -> None:
    """Warn, naming both, of label spellings that differ only in invisible characters or Unicode composition."""
    merged = {name: written for name, written in spellings.items() if len(written) > 1}
    for name, written in list(merged.items())[:_MAX_ROWS_SHOWN]:
        ways = ", ".join(f"{shown(w)} in {n} row{'s' if n > 1 else ''}" for w, n in written.most_common())
        logger.warning(
            "%s: label '%s' is written %d ways that print alike (%s); read as one class '%s' (labels are compared "
            "in Unicode NFC, without invisible characters)", source, name, len(written), ways, name,
        )  # fmt: skip
    if len(merged) > _MAX_ROWS_SHOWN:
        logger.warning("%s: %d more labels are written several ways that print alike; each read as one class",
                       source, len(merged) - _MAX_ROWS_SHOWN)  # fmt: skip


def _warn_list_literals(table: Table, column: str, names: Sequence[str | None]) -> None:
    """Warn where most labels are lists written as text (``["grain", "wheat"]``, as ``DataFrame.to_csv`` writes a
    column of lists): each is read as one label named by the whole text."""
    listed = [i for i, name in enumerate(names) if name and name.startswith("[") and name.endswith("]")]
    if not listed or 2 * len(listed) < sum(1 for name in names if name):
        return
    first = listed[0]
    logger.warning("%s: %d labels in column '%s' are lists written as text (%s %s); each is read as one label. For "
                   "several labels a text, store lists (JSON lines, Parquet) or join the names with a separator and "
                   "give it as label_separator (--label-separator)", table.source, len(listed), column,
                   _describe_rows(table, [first]), shown(names[first]))  # fmt: skip


#: Whole-number labels, most of them distinct, are warned of as measurements from this many labels on.
WHOLE_NUMBER_ROWS = 50


def _warn_measurements(table: Table, column: str, names: Sequence[str | None]) -> None:
    """Warn where the labels look like measurements, not classes: numbers (nine in ten at least: a placeholder such
    as ``unknown`` may stand in for the rest), most of them distinct (a regression target read as hundreds of classes
    of one text each). Codes such as ``250.01`` repeat, and pass. Whole numbers are warned of from
    :data:`WHOLE_NUMBER_ROWS` labels on (ten texts labelled 0 to 9 once each are classes too)."""
    given = [name for name in names if name]
    numbers = [name for name in given if _is_number(name)]
    if len(given) < 10 or 10 * len(numbers) < 9 * len(given):
        return
    if not any("." in name for name in numbers) and len(given) < WHOLE_NUMBER_ROWS:
        return
    distinct = len(set(numbers))
    if 2 * distinct > len(numbers):
        example = next((name for name in numbers if "." in name), numbers[0])
        logger.warning("%s: %d of the %d labels in column '%s' are numbers, %d distinct (such as %s): a classifier "
                       "learns one class per value; if they are measurements, this is a regression task, not one "
                       "tailtune trains", table.source, len(numbers), len(given), column, distinct,
                       shown(example))  # fmt: skip


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _warn_case_variants(source: str, names: Iterable[str]) -> None:
    """Warn of labels that differ only in letter case, character width or white space: two classes that are likely
    one."""
    counts = Counter(names)
    groups: dict[str, list[str]] = {}
    for name in counts:
        groups.setdefault(folded_label(name), []).append(name)
    variants = [sorted(group, key=lambda name: (-counts[name], name)) for group in groups.values() if len(group) > 1]
    for group in variants[:_MAX_ROWS_SHOWN]:
        ways = ", ".join(f"{shown(name)} on {counts[name]} text{'s' if counts[name] > 1 else ''}" for name in group)
        logger.warning("%s: labels %s differ only in letter case, character width or white space; read as %d classes "
                       "(if they are one, write them one way)", source, ways, len(group))  # fmt: skip
    if len(variants) > _MAX_ROWS_SHOWN:
        logger.warning("%s: %d more groups of labels differ only in letter case, character width or white space; "
                       "each label read as its own class", source, len(variants) - _MAX_ROWS_SHOWN)  # fmt: skip


def _written_name(value: Any) -> str | None:
    """A label value as a string as written, ``None`` when missing; numbers and booleans get their name.

    Raises:
        TypeError: For a container (list, dict, array) or bytes, which are not one label.
    """
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, (list, dict, tuple, set, np.ndarray, bytes)):
        raise TypeError(type(value).__name__)
    return str(value)


def _whole_number(name: str) -> str:
    whole = _WHOLE_DECIMAL.fullmatch(name)
    return str(int(whole.group(1))) if whole else name


def _is_missing(value: Any) -> bool:
    """Null in any of the forms readers produce: None, pandas' NA and NaT, a float NaN."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _describe_rows(table: Table, bad: list[int]) -> str:
    return rows_text(bad, table.row_lines)


def rows_text(bad: list[int], lines: list[int] | None) -> str:
    """``data rows 2, 5 (lines 3, 7 of the file) have`` for the 0-based rows ``bad``."""
    shown = bad[:_MAX_ROWS_SHOWN]
    more = f" and {len(bad) - len(shown)} more" if len(bad) > len(shown) else ""
    noun = "data row" if len(bad) == 1 else "data rows"
    verb = "has" if len(bad) == 1 else "have"
    desc = f"{noun} {', '.join(str(i + 1) for i in shown)}{more}"
    if lines is not None:
        word = "line" if len(bad) == 1 else "lines"
        desc += f" ({word} {', '.join(str(lines[i]) for i in shown)} of the file)"
    return f"{desc} {verb}"


def column_of(values: Any, name: str, call: str) -> np.ndarray:
    """``values`` (an estimator's ``texts`` or ``labels``, given to ``call``) as a 1-D object array, one per row;
    refuses what is not one column of values.

    A column vector of labels (shape ``[n, 1]``) is raveled with scikit-learn's ``DataConversionWarning``.
    """
    if values is None:
        raise TailTuneError(f"{call}: {name} is None; give a list with one value per row")
    if isinstance(values, (str, bytes)):
        # Iterated, a string would be taken for a list of one-character texts.
        raise TailTuneError(f"{call}: {name} is a single string; give a list of them, e.g. [{values[:20]!r}]")
    if isinstance(values, pd.DataFrame) and name == "texts":
        columns = ", ".join(f"'{column}'" for column in values.columns)
        raise TailTuneError(f"{call}: texts is a DataFrame (columns {columns}); pass its text column, e.g. df['text']")
    sequence = hasattr(values, "__len__") and hasattr(values, "__getitem__")
    array_like = sequence or hasattr(values, "__array__")
    column = None if isinstance(values, (Mapping, Set)) or not array_like else np.asarray(values, dtype=object)
    if column is None or column.ndim == 0:  # a generator, a set, a sparse matrix, a number
        raise TailTuneError(f"{call}: {name} must be a list, tuple, 1-D NumPy array or pandas Series with one value "
                            f"per row (got {type(values).__name__})")  # fmt: skip
    if name == "labels" and column.ndim == 2 and column.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
                      "(n_samples, ), for example using ravel().", DataConversionWarning, stacklevel=3)  # fmt: skip
        column = column.ravel()
    if column.ndim != 1:
        raise TailTuneError(f"{call}: {name} has shape {column.shape}; give one value per row (a 1-D list)"
                            + (", one label per text" if name == "labels" else ""))  # fmt: skip
    return column
