"""The data types every layer shares: a labelled text dataset, the label map, a run's splits.

Labels are names (strings) whatever the source stored: :mod:`tailtune.data.values` normalises them on the way in.
A single-label dataset holds one name per text; a multi-label one a tuple of names per text (sorted, without
repeats, empty for a text that carries no label).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tailtune.data.visible import folded_label, normal_label, shown
from tailtune.errors import TailTuneError

logger = logging.getLogger(__name__)

_INT_LITERAL = re.compile(r"[+-]?\d+")


def near_twins(unknown: Sequence[str], known: Sequence[str]) -> list[str]:
    """For each name of ``unknown`` that a name of ``known`` differs from only in letter case, width or spacing
    (:func:`~tailtune.data.visible.folded_label`), a phrase naming them: ``'Money' is the model's 'money' in another
    letter case, width or spacing``."""
    folded: dict[str, list[str]] = {}
    for name in known:
        folded.setdefault(folded_label(name), []).append(name)
    return [f"{shown(name)} is the model's {' or '.join(map(shown, folded[folded_label(name)]))} in another letter "
            "case, width or spacing" for name in unknown if folded_label(name) in folded]  # fmt: skip


def placeholder_labels(k: int) -> list[str]:
    """The names transformers gives the ``k`` classes of a config saved without names: ``LABEL_0`` ... ."""
    return [f"LABEL_{i}" for i in range(k)]


@dataclass
class TextDataset:
    """Texts with their label names.

    Attributes:
        texts: The input texts.
        labels: Aligned with ``texts``: one label name per text (single-label), or one tuple of label names per
            text (multi-label: sorted, no name twice, ``()`` for a text with no label); ``None`` for unlabelled
            data.
        source: Where the data came from (a path or hub spec), used in messages.
        columns: Every column of the source, in its order, with the values as read (strings for CSV and
            TSV), for writing them back out beside predictions; set by :func:`read_dataset`, ``None``
            for data built in memory.
    """

    texts: list[str]
    labels: list[str] | list[tuple[str, ...]] | None
    source: str
    columns: dict[str, list[Any]] | None = None

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if self.labels and len({isinstance(y, tuple) for y in self.labels}) > 1:
            raise ValueError("labels mix single names and tuples of names; give every text one kind")
        if self.columns is not None and any(len(v) != len(self.texts) for v in self.columns.values()):
            raise ValueError(f"columns of another length than the {len(self.texts)} texts")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def multi_label(self) -> bool:
        """Whether the labels are label sets (a tuple of names per text) rather than one name per text."""
        return bool(self.labels) and isinstance(self.labels[0], tuple)  # type: ignore[index]

    def subset(self, indices: Sequence[int] | np.ndarray) -> TextDataset:
        """Return a new dataset with the rows at ``indices`` (in that order), from the same source."""
        idx = [int(i) for i in np.asarray(indices, dtype=np.int64).ravel()]
        labels = None if self.labels is None else [self.labels[i] for i in idx]
        columns = None if self.columns is None else {k: [v[i] for i in idx] for k, v in self.columns.items()}
        return TextDataset([self.texts[i] for i in idx], labels, self.source, columns)


@dataclass
class LabelMap:
    """The mapping between label names and the integer ids a model is trained on.

    Attributes:
        labels: Label names in id order (``labels[i]`` has id ``i``).
    """

    labels: list[str]

    def __post_init__(self) -> None:
        self.labels = [str(x) for x in self.labels]
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"duplicate label names in {self.labels}")

    @property
    def kind(self) -> str:
        """``integer`` where every name is a whole number as its own canonical spelling (a column of them comes back
        as integers when loaded), else ``string``."""
        whole = all(name.lstrip("-").isdigit() and str(int(name)) == name for name in self.labels)
        return "integer" if whole else "string"

    @classmethod
    def from_labels(cls, values: Iterable[str]) -> LabelMap:
        """Build a map from the label names seen in training data.

        The order is stable across runs and files: numerically when every name is an integer literal (so
        ``"2"`` comes before ``"10"``), otherwise as plain strings.
        """
        names = set(values)
        if names and all(_INT_LITERAL.fullmatch(n) for n in names):
            ordered = sorted(names, key=lambda n: (int(n), n))
        else:
            ordered = sorted(names)
        return cls(ordered)

    @classmethod
    def from_label_sets(cls, rows: Iterable[Iterable[str]]) -> LabelMap:
        """Build a map from the label sets of multi-label training data: every name that occurs in any row, in
        the order :meth:`from_labels` gives."""
        return cls.from_labels(name for row in rows for name in row)

    @property
    def label2id(self) -> dict[str, int]:
        """Label name -> class id."""
        return {name: i for i, name in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def encode(self, values: Sequence[str], *, source: str) -> np.ndarray:
        """Turn label names into int64 ids.

        A name matches the map's name it is spelled like once both are in the one form labels are compared in
        (:func:`~tailtune.data.visible.normal_label`), so that a model saved with a label written in another
        Unicode form, or with a zero-width space, still knows it.

        Args:
            values: Label names.
            source: The file the names came from, for the error message.

        Raises:
            TailTuneError: If a name is not in the map.
        """
        mapping = self._lookup(source)
        unknown = sorted({v for v in values if v not in mapping and normal_label(v) not in mapping})
        if unknown:
            near = near_twins(unknown, self.labels)
            raise TailTuneError(
                f"{source}: label(s) {quote_names(unknown)} never seen in training; the model knows "
                f"{quote_names(self.labels)} - relabel those rows or retrain with them"
                + (f" ({'; '.join(near[:3])})" if near else "")
            )
        self._say_ids_read_as_names(values, source)
        ids = (mapping[v] if v in mapping else mapping[normal_label(v)] for v in values)
        return np.fromiter(ids, dtype=np.int64, count=len(values))

    def known_as(self, values: Sequence[str], *, source: str) -> list[str]:
        """Each name as the map spells it where it matches one as :meth:`encode` matches names (its normal form, or a
        class id for transformers' ``LABEL_<id>``); a name the map does not know, as it is."""
        mapping = self._lookup(source)
        self._say_ids_read_as_names(values, source)
        known = ((v, mapping.get(v, mapping.get(normal_label(v)))) for v in values)
        return [v if i is None else self.labels[i] for v, i in known]

    def encode_sets(self, rows: Sequence[Iterable[str]], *, source: str) -> np.ndarray:
        """Turn label sets into a 0/1 indicator matrix: shape ``(len(rows), len(self))``, float32, a 1 where the
        row carries the class of that column.

        Names match as in :meth:`encode`; an empty row is a row of zeros.

        Args:
            rows: One collection of label names per text.
            source: The file the names came from, for the error message.

        Raises:
            TailTuneError: If a name is not in the map (the message :meth:`encode` gives).
        """
        rows = [tuple(row) for row in rows]
        ids = self.encode([name for row in rows for name in row], source=source)
        out = np.zeros((len(rows), len(self)), dtype=np.float32)
        out[np.repeat(np.arange(len(rows)), [len(row) for row in rows]), ids] = 1.0
        return out

    def _lookup(self, source: str) -> dict[str, int]:
        """Label name -> class id, the names also in their normal form where that names one class only."""
        mapping = self.label2id
        normal: dict[str, list[str]] = {}
        for name in mapping:
            normal.setdefault(normal_label(name), []).append(name)
        # A model trained before labels were normalised may hold two spellings of one name: each matches only
        # exactly, and data read now arrives in the normal form.
        for name, names in normal.items():
            if len(names) > 1:
                logger.warning(
                    "%s: the model has %d classes that print alike (%s), saved before labels were compared in one "
                    "form, while data is read as %s now: retrain the model to make them one class",
                    source, len(names), ", ".join(map(shown, names)), shown(name),
                )  # fmt: skip
        normal_names = {name: mapping[names[0]] for name, names in normal.items() if len(names) == 1}
        return {**self._placeholder_ids(), **normal_names, **mapping}

    def _say_ids_read_as_names(self, values: Iterable[str], source: str) -> None:
        ids = sorted(set(values) & set(self._placeholder_ids()), key=int)
        if ids:
            logger.info("%s: labels %s read as the model's %s (the names transformers gives classes saved without "
                        "names)", source, ", ".join(ids), ", ".join(f"LABEL_{i}" for i in ids))  # fmt: skip

    def _placeholder_ids(self) -> dict[str, int]:
        """``{"0": 0, "1": 1, ...}`` where the classes are named as transformers names those of a checkpoint saved
        without names (``LABEL_0``, ``LABEL_1``, ...): data labelled with class ids means them."""
        if self.labels != placeholder_labels(len(self.labels)):
            return {}
        return {str(i): i for i in range(len(self.labels))}

    def counts(self, dataset: TextDataset) -> list[int]:
        """Examples per class of a labelled dataset, in class-id order (a class it lacks counts 0); for a
        multi-label dataset, the texts carrying each class (a text counts once for each of its labels).

        Raises:
            TailTuneError: If a label is not in the map.
        """
        labels: list[Any] = list(dataset.labels or [])
        if dataset.multi_label:
            labels = [name for row in labels for name in row]
        ids = self.encode(labels, source=dataset.source)
        return np.bincount(ids, minlength=len(self)).tolist()


@dataclass
class Splits:
    """The data of one run: training data and optional eval/test data."""

    train: TextDataset
    eval: TextDataset | None = None
    test: TextDataset | None = None


def check_labels(splits: Splits) -> LabelMap:
    """The label map of single-label training data; eval/test labels must all occur in training.

    Raises:
        TailTuneError: No training labels, fewer than two classes, an eval/test label unseen in training, or
            label sets (multi-label data) in any split.
    """
    if splits.train.labels is None:
        raise TailTuneError(f"{splits.train.source}: training data needs labels")
    _check_one_shape(splits)
    if splits.train.multi_label:
        raise TailTuneError(
            f"{splits.train.source}: the labels are label sets (several labels a text); train a multi-label task "
            "on them, or give each text one label"
        )
    label_map = LabelMap.from_labels(splits.train.labels)
    if len(label_map) < 2:
        raise TailTuneError(
            f"{splits.train.source}: only one class ({label_map.labels[0]!r}); a classifier needs at least two"
        )
    for part in (splits.eval, splits.test):
        if part is not None and part.labels is not None:
            label_map.encode(part.labels, source=part.source)
    return label_map


def check_label_sets(splits: Splits) -> LabelMap:
    """The label map of multi-label training data: every label name that occurs in training (texts without a
    label are negative examples); the eval/test label names must all occur in training.

    Raises:
        TailTuneError: No training labels, one label name per text instead of label sets, splits of different
            shapes (label sets in one, one label a text in another), fewer than two labels in all, or an
            eval/test label unseen in training.
    """
    train = splits.train
    if train.labels is None:
        raise TailTuneError(f"{train.source}: training data needs labels")
    _check_one_shape(splits)
    if not train.multi_label:
        raise TailTuneError(
            f"{train.source}: the labels are one name a text, not label sets; store them as lists (JSON lines, "
            "Parquet) or split a CSV/TSV label column with label_separator"
        )
    label_map = LabelMap.from_label_sets(train.labels)  # type: ignore[arg-type]
    if len(label_map) < 2:
        if not label_map.labels:
            raise TailTuneError(f"{train.source}: no label on any text; a multi-label classifier needs at least two "
                                "labels (is the label column the right one?)")  # fmt: skip
        raise TailTuneError(f"{train.source}: only the label {label_map.labels[0]!r}; a multi-label classifier needs "
                            "at least two labels: for one label that a text has or has not, train a single-label "
                            f"classifier on two (label each text {label_map.labels[0]!r} or another name, such as "
                            "'other')")  # fmt: skip
    for part in (splits.eval, splits.test):
        if part is not None and part.labels is not None:
            label_map.encode_sets(part.labels, source=part.source)  # type: ignore[arg-type]
    return label_map


def _check_one_shape(splits: Splits) -> None:
    """Refuse a run whose labelled splits mix label sets (multi-label) and one label a text (single-label)."""
    parts = [p for p in (splits.train, splits.eval, splits.test) if p is not None and p.labels]
    if len({p.multi_label for p in parts}) > 1:
        shape = {True: "label sets (multi-label)", False: "one label a text (single-label)"}
        first, other = parts[0], next(p for p in parts if p.multi_label != parts[0].multi_label)
        raise TailTuneError(
            f"{other.source}: has {shape[other.multi_label]} while {first.source} has {shape[first.multi_label]}; "
            "read every split of a run the same way (label_separator for CSV/TSV, lists in JSON lines or Parquet)"
        )


def quote_names(values: Iterable[Any], limit: int = 20) -> str:
    values = list(values)
    text = ", ".join(shown(str(v)) for v in values[:limit])  # escaped: names that print alike read apart
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")
