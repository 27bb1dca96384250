"""The estimators' ``score``: macro-F1 of a model's predictions against the labels given, for :class:`TailTuner`
and the TF-IDF models that ``TailTuner.load`` gives alike."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from tailtune.data.given import check_listed_kinds
from tailtune.data.label_sets import indicator_columns, indicator_sets
from tailtune.data.types import LabelMap, near_twins, quote_names
from tailtune.data.values import column_of, dataset_from_values
from tailtune.errors import TailTuneError
from tailtune.task import DEFAULT_TASK

logger = logging.getLogger(__name__)


def macro_f1_score(model: Any, texts: Sequence[str], labels: Any, sample_weight: Any = None) -> float:
    """``f1_score(labels, model.predict(texts), average="macro")`` over the classes present in ``labels`` or in the
    predictions (the labels true or predicted, for label sets).

    Args:
        model: A fitted model with ``task``, ``label_map``, ``classes_`` and ``predict``.
        texts: One string per example.
        labels: One label per text (compared by name after the normalisation of training: ``1.0`` is ``1``); for a
            multi-label model a list of labels per text, or a 0/1 indicator matrix with one column per class of
            ``classes_``, as ``predict`` gives.
        sample_weight: Weights per text, as scikit-learn's ``f1_score`` takes them.

    Returns:
        The macro-F1; for label sets with no label true or predicted on any text, nan (``metrics.json`` says null).
    """
    from sklearn.metrics import f1_score

    texts = column_of(texts, "texts", "score()")
    if model.task.name != DEFAULT_TASK:
        if getattr(labels, "ndim", 1) == 2:  # an indicator matrix, its columns in classes_ order as predict gives
            shape = tuple(labels.shape)
            if shape != (len(texts), len(model.classes_)):
                raise TailTuneError(f"score(): y has shape {shape}; give one row per text and one column per "
                                    f"class of classes_ ({len(texts)} x {len(model.classes_)})")  # fmt: skip
            classes = [str(name) for name in model.classes_]
            labels = _in_class_order(labels, classes)
            # Read as fit() reads one: only 0 and 1 (or booleans), so a 2 or a nan is refused, not scored.
            column = {name: j for j, name in enumerate(classes)}
            truth = np.zeros(shape, dtype=np.int64)
            for i, row in enumerate(indicator_sets(labels, classes, source="score()")):
                truth[i, [column[name] for name in row]] = 1
        else:
            data = dataset_from_values(texts, labels, source="score()", allow_empty_texts=True)
            check_listed_kinds(labels, "score()")  # as fit() checks them
            names = iter(model.label_map.known_as([name for row in data.labels for name in row], source="score()"))
            data.labels = [tuple(next(names) for _ in row) for row in data.labels]  # as the model spells them
            # A label never seen in training is one the model cannot predict: scored as missed on every text it is
            # on (as an unseen single label is), not refused, so cross_val_score can score a fold holding one.
            unseen = sorted({name for row in data.labels for name in row} - set(model.label_map.labels))
            _warn_of_unseen(unseen, model.label_map.labels)
            truth = model.task.encode(LabelMap([*model.label_map.labels, *unseen]), data)
        predicted = np.asarray(model.predict(texts))
        truth = np.asarray(truth)
        predicted = np.pad(predicted, ((0, 0), (0, truth.shape[1] - predicted.shape[1])))  # the unseen labels' columns
        # Over the labels true or predicted, as metrics.json's macro_f1: scikit-learn's plain macro average of
        # indicator matrices also counts every label absent from both as 0 (macro_f1_all_labels).
        measured = np.flatnonzero((truth.sum(axis=0) + predicted.sum(axis=0)) > 0)
        if not len(measured):  # no label true or predicted anywhere: nothing to score, as macro_f1 is None
            return float("nan")
        return float(f1_score(truth, predicted, labels=measured, average="macro", sample_weight=sample_weight,
                              zero_division=0))  # fmt: skip
    else:
        data = dataset_from_values(texts, column_of(labels, "labels", "score()"), source="score()",
                                   allow_empty_texts=True)  # fmt: skip
        truth = model.label_map.known_as(data.labels, source="score()")
        _warn_of_unseen(sorted(set(truth) - set(model.label_map.labels)), model.label_map.labels)
        # By name, as training compared them: an integer model scored on whole floats (1.0) still matches.
        predicted = [str(label) for label in model.predict(data.texts)]
    return float(f1_score(truth, predicted, average="macro", sample_weight=sample_weight, zero_division=0))


def _warn_of_unseen(unseen: list[str], known: list[str]) -> None:
    """Say which labels the model never saw in training (it cannot predict them: they score as missed), naming the
    model's label where one differs only in letter case, width or spacing."""
    if unseen:
        near = near_twins(unseen, known)
        logger.warning("score(): label(s) %s never seen in training are scored as missed on every text%s",
                       quote_names(unseen), f" ({'; '.join(near[:3])})" if near else "")  # fmt: skip


def _in_class_order(matrix: Any, classes: list[str]) -> Any:
    """A DataFrame indicator matrix with its columns in the order of ``classes`` (``classes_``), matched by name as
    fit() named them; a matrix without names (or a DataFrame with the default columns 0 .. K-1) as it is.

    Raises:
        TailTuneError: For a DataFrame whose column names are not the classes.
    """
    columns = indicator_columns(matrix, source="score()") if hasattr(matrix, "columns") else None
    if columns is None or columns == classes or columns == [str(j) for j in range(len(classes))]:
        return matrix
    if sorted(columns) != sorted(classes):
        unknown = sorted(set(columns) - set(classes)) or sorted(set(classes) - set(columns))
        raise TailTuneError(f"score(): y's columns are not the model's classes ({quote_names(unknown[:3])} differ); "
                            "name them as classes_ does, or give a matrix whose columns follow classes_")  # fmt: skip
    return matrix.iloc[:, [columns.index(name) for name in classes]]
