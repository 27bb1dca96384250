"""Evaluation metrics for multi-label classification (several labels per text), overall, per label and per group.

The predictions are 0/1 indicator matrices (``[n, K]``, one column per label). Every number is the one
scikit-learn computes on the same matrices; where scikit-learn offers several conventions the docstring of
:func:`compute_multilabel_metrics` says which one is used and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import log_loss

from tailtune.errors import TailTuneError
from tailtune.metrics import GROUPS, frequency_groups

#: Huang et al. (EMNLP 2021) call a label tail with at most this many training documents ...
HUANG_TAIL_MAX = 8
#: ... and head with at least this many; the labels in between are medium.
HUANG_HEAD_MIN = 35


def huang_groups(train_counts: Sequence[int]) -> dict[str, list[int]]:
    """Split labels into head, medium and tail by their training documents, as Huang et al. (EMNLP 2021) do.

    Rule: tail holds the labels with at most :data:`HUANG_TAIL_MAX` (8) training documents, head those with at
    least :data:`HUANG_HEAD_MIN` (35), medium the rest (9 to 34). Unlike :func:`tailtune.metrics.frequency_groups`
    (thirds of the labels), the cuts are fixed counts, so a group can be empty; where every count is 0 (not
    known), every group is.

    Args:
        train_counts: Training documents per label, indexed by label id.

    Returns:
        ``{"head": [...], "medium": [...], "tail": [...]}``, each a list of label ids in ascending order.
    """
    counts = list(train_counts)
    if not any(counts):  # counts not known (a checkpoint trained elsewhere records none): no groups
        return {"head": [], "medium": [], "tail": []}
    return {
        "head": [c for c, n in enumerate(counts) if n >= HUANG_HEAD_MIN],
        "medium": [c for c, n in enumerate(counts) if HUANG_TAIL_MAX < n < HUANG_HEAD_MIN],
        "tail": [c for c, n in enumerate(counts) if n <= HUANG_TAIL_MAX],
    }


def _indicator(name: str, values: Any, k: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[1] != k:
        raise ValueError(f"{name} must be a [n, {k}] indicator matrix, got shape {array.shape}")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1")
    return array.astype(np.int64)


def _probabilities(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    probs = np.asarray(values, dtype=np.float64)
    if probs.shape != shape:
        raise ValueError(f"probabilities must have the shape of y_true {shape}, got {probs.shape}")
    if not (np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()):
        raise ValueError("probabilities must be finite and in [0, 1]")
    return probs


def _ratio(numerator: Any, denominator: Any) -> np.ndarray:
    """``numerator / denominator``, 0 where the denominator is 0 (scikit-learn's ``zero_division=0``)."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def compute_multilabel_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    label_names: Sequence[str],
    train_counts: Sequence[int],
    probabilities: np.ndarray | None = None,
) -> dict[str, Any]:
    """Multi-label metrics overall, per label and per frequency group, as scikit-learn computes them.

    A label is *measured* when it is true or predicted for at least one text, as in
    :func:`tailtune.metrics.compute_metrics`. ``macro_f1`` and the group F1s average over the measured labels
    only: a label predicted but never true counts with F1 0, a label neither true nor predicted has no score
    (per-label precision, recall and F1 None, support 0; listed in ``absent_labels``). This equals
    ``f1_score(y_true, y_pred, average="macro", zero_division=np.nan)`` and ``f1_score(..., labels=measured,
    average="macro")``. scikit-learn's ``average="macro"`` with ``zero_division=0`` and no ``labels`` differs on
    indicator matrices: it averages over all K columns and scores an absent label 0 (so a test set holding 2 of 6
    labels, every prediction right, scores 1/3); that number is ``macro_f1_all_labels``, for comparison with
    work that reports it. With no measured label at all (no text has a true or a predicted label) ``macro_f1``
    is None, where scikit-learn's ``zero_division=np.nan`` gives nan. Where a ratio of a measured label divides
    by zero (the precision of a label never predicted, the recall of one never true) it is 0.

    ``samples_f1`` is the mean F1 per text; a text with no true label and no predicted label is a correct answer
    and scores 1 (scikit-learn's ``average="samples", zero_division=1``; only such texts divide by zero), since
    texts without labels are negative examples and leaving them unlabelled is what a model should do.
    ``micro_f1`` pools every (text, label) decision. ``subset_accuracy`` is the share of texts whose predicted
    label set is exactly the true one (an empty set included); ``hamming_loss`` the share of wrong (text, label)
    decisions. ``log_loss`` is the mean binary cross-entropy over all ``n * K`` decisions (scikit-learn's
    ``log_loss`` of the flattened matrices with ``labels=[0, 1]``, probabilities clipped as it clips them); it is
    None without probabilities.

    Groups: ``head_f1``, ``medium_f1``, ``tail_f1`` use :func:`tailtune.metrics.frequency_groups` (thirds of the
    labels by training count, as for single-label data); ``huang_head_f1``, ``huang_medium_f1``,
    ``huang_tail_f1`` use :func:`huang_groups` (tail <= 8, head >= 35 training documents). A group F1 is the
    macro F1 over the group's measured labels; None, "not measured", when it has none.

    Args:
        y_true: True labels, a ``[n, K]`` 0/1 indicator matrix.
        y_pred: Predicted labels, a ``[n, K]`` 0/1 indicator matrix.
        label_names: Name of each label, indexed by label id; unique.
        train_counts: Training documents per label, indexed by label id.
        probabilities: Predicted probability of each label (``[n, K]``, each in ``[0, 1]``), where the model
            gives them.

    Returns:
        A JSON-serialisable dict with keys ``micro_f1``, ``macro_f1``, ``macro_f1_all_labels``, ``samples_f1``,
        ``subset_accuracy``, ``hamming_loss``, ``log_loss``, ``n_examples``, ``n_without_labels`` (texts with no
        true label), ``label_cardinality`` (mean true labels per text), ``predicted_cardinality`` (mean
        predicted labels per text), ``head_f1``, ``medium_f1``, ``tail_f1``, ``groups`` (group name -> label
        names), ``huang_head_f1``, ``huang_medium_f1``, ``huang_tail_f1``, ``huang_groups``, ``absent_labels``
        and ``per_label`` (label name -> ``precision``, ``recall``, ``f1``, ``support``, ``predicted``,
        ``train_count``, in label-id order).

    Raises:
        TailTuneError: If there are no examples.
        ValueError: If the inputs disagree in shape, hold values other than 0 and 1, or the probabilities are
            not in [0, 1].
    """
    k = len(label_names)
    if len(train_counts) != k:
        raise ValueError(f"{len(train_counts)} train counts for {k} label names")
    if len(set(label_names)) != k:
        raise ValueError("label names must be unique")
    if k == 0:
        raise TailTuneError("no labels: the training data must contain at least one label")
    true = _indicator("y_true", y_true, k)
    pred = _indicator("y_pred", y_pred, k)
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {true.shape} and {pred.shape}")
    if true.shape[0] == 0:
        raise TailTuneError("no examples to evaluate: the evaluation data is empty")

    # Counted here rather than through scikit-learn's averages, which read a [n, 1] matrix as binary labels and
    # refuse average="samples" for it; the tests hold these to scikit-learn's values for K >= 2 and to its
    # binary scores per label.
    tp = (true & pred).sum(axis=0)
    support = true.sum(axis=0)
    predicted = pred.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    measured = (support > 0) | (predicted > 0)
    row_true, row_pred = true.sum(axis=1), pred.sum(axis=1)
    row_f1 = np.where(row_true + row_pred > 0, _ratio(2 * (true & pred).sum(axis=1), row_true + row_pred), 1.0)

    def group_f1(ids: list[int]) -> float | None:
        scored = [c for c in ids if measured[c]]
        return float(np.mean(f1[scored])) if scored else None

    def score(values: np.ndarray, c: int) -> float | None:
        return float(values[c]) if measured[c] else None

    def named(groups: dict[str, list[int]]) -> dict[str, list[str]]:
        return {group: [label_names[c] for c in groups[group]] for group in GROUPS}

    thirds, huang = frequency_groups(train_counts), huang_groups(train_counts)
    counted = any(train_counts)  # all 0: not known (a checkpoint trained elsewhere records none)
    loss = None
    if probabilities is not None:
        probs = _probabilities(probabilities, true.shape)
        loss = float(log_loss(true.ravel(), probs.ravel(), labels=[0, 1]))
    return {
        "micro_f1": float(_ratio(2 * tp.sum(), support.sum() + predicted.sum())),
        "macro_f1": group_f1(list(range(k))),
        "macro_f1_all_labels": float(f1.mean()),
        "samples_f1": float(row_f1.mean()),
        "subset_accuracy": float((true == pred).all(axis=1).mean()),
        "hamming_loss": float((true != pred).mean()),
        "log_loss": loss,
        "n_examples": int(true.shape[0]),
        "n_without_labels": int((true.sum(axis=1) == 0).sum()),
        "label_cardinality": float(true.sum(axis=1).mean()),
        "predicted_cardinality": float(pred.sum(axis=1).mean()),
        **{f"{group}_f1": group_f1(thirds[group]) for group in GROUPS},
        "groups": named(thirds),
        **{f"huang_{group}_f1": group_f1(huang[group]) for group in GROUPS},
        "huang_groups": named(huang),
        "absent_labels": [label_names[c] for c in range(k) if not measured[c]],
        "per_label": {
            label_names[c]: {
                "precision": score(precision, c),
                "recall": score(recall, c),
                "f1": score(f1, c),
                "support": int(support[c]),
                "predicted": int(predicted[c]),
                "train_count": int(train_counts[c]) if counted else None,
            }
            for c in range(k)
        },
    }
