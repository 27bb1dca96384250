"""Evaluation metrics for long-tailed classification, overall and per head/medium/tail group."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, log_loss, precision_recall_fscore_support

from tailtune.errors import TailTuneError

if TYPE_CHECKING:
    import pandas as pd

GROUPS = ("head", "medium", "tail")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``[n, K]`` logits: class probabilities that sum to 1 in each row.

    The row maximum is subtracted first so that large logits do not overflow ``exp``.
    """
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def head_to_tail(train_counts: Sequence[int]) -> list[int]:
    """Class ids from the most frequent in training to the rarest (ties: lower class id first)."""
    return sorted(range(len(train_counts)), key=lambda c: (-train_counts[c], c))


def frequency_groups(train_counts: Sequence[int]) -> dict[str, list[int]]:
    """Split classes into head, medium and tail groups by training frequency.

    Rule: sort the K classes by training count, most frequent first (ties broken by lower class id first),
    and cut the sorted list into three contiguous groups: head gets the first ``ceil(K / 3)`` classes, tail
    the last ``floor((K + 1) / 3)``, medium the rest. The groups are as equal in size as possible; when K is
    not a multiple of 3 the first extra class goes to head and the second to tail. So K = 4 gives 2/1/1,
    K = 5 gives 2/1/2, K = 2 gives head 1, medium 0, tail 1, and K = 1 puts the single class in head.
    Classes with equal counts can fall on either side of a cut. Where every count is 0 (not known: a checkpoint
    trained elsewhere records none) every group is empty, so that no group F1 is measured on a made-up order.

    Args:
        train_counts: Training examples per class, indexed by class id.
        probabilities: The predicted probabilities (``[n, K]``), where the model gives any: ``log_loss``
            (scikit-learn's, over all K classes; None without them) tells apart models whose labels score alike.

    Returns:
        ``{"head": [...], "medium": [...], "tail": [...]}``, each a list of class ids in ascending order.

    Raises:
        TailTuneError: If there are no classes.
    """
    k = len(train_counts)
    if k == 0:
        raise TailTuneError("class counts are empty: the training data must contain at least one class")
    if not any(train_counts):  # counts not known (a checkpoint trained elsewhere records none): no groups
        return {name: [] for name in GROUPS}
    order = head_to_tail(train_counts)
    n_head = math.ceil(k / 3)
    n_tail = (k + 1) // 3
    parts = (order[:n_head], order[n_head : k - n_tail], order[k - n_tail :])
    return {name: sorted(part) for name, part in zip(GROUPS, parts, strict=True)}


def compute_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    *,
    label_names: Sequence[str],
    train_counts: Sequence[int],
    probabilities: np.ndarray | None = None,
) -> dict[str, Any]:
    """Classification metrics overall, per class and per frequency group, as scikit-learn computes them.

    A class is *measured* when it occurs in ``y_true`` or ``y_pred``. Macro averages (``macro_f1`` and the
    group F1s) run over the measured classes only, as ``sklearn.metrics.f1_score(average="macro")`` does by
    default: a class predicted but never true counts with F1 0, while a training class with no test example
    and no prediction has no score at all (its per-class precision, recall and F1 are None, support 0) and
    is listed in ``absent_classes``. Scoring such a class 0 would make a test file holding 2 of 6 classes,
    every prediction right, report macro-F1 1/3. Where a ratio divides by zero for a measured class (the
    precision of a class never predicted, the recall of one never true) it is 0, as in scikit-learn.
    ``weighted_f1`` weights each class's F1 by its support in ``y_true``; ``balanced_accuracy`` is the mean
    recall over the classes present in ``y_true``; ``micro_f1`` equals ``accuracy`` for single-label data.
    Groups come from :func:`frequency_groups`.

    Args:
        y_true: True class ids, each in ``[0, K)``.
        y_pred: Predicted class ids, each in ``[0, K)``.
        label_names: Name of each class, indexed by class id; unique.
        train_counts: Training examples per class, indexed by class id.
        probabilities: The predicted probabilities (``[n, K]``), where the model gives any: ``log_loss``
            (scikit-learn's, over all K classes; None without them) tells apart models whose labels score alike.

    Returns:
        A JSON-serialisable dict with keys ``accuracy``, ``micro_f1``, ``macro_f1``, ``weighted_f1``,
        ``balanced_accuracy``, ``n_examples``, ``head_f1``, ``medium_f1``, ``tail_f1`` (macro F1 over the
        group's measured classes; None, "not measured", when the group has none), ``groups`` (group name ->
        class names), ``absent_classes`` (names of the classes neither true nor predicted, in class-id
        order), ``per_class`` (class name -> ``precision``, ``recall``, ``f1``, ``support``, ``train_count``:
        None where every count is 0, not known; in class-id order) and ``confusion_matrix`` (``labels``: class
        names; ``matrix``: counts with true classes as rows and predicted classes as columns).

    Raises:
        TailTuneError: If there are no examples.
        ValueError: If the inputs disagree in length or a class id is out of range.
    """
    k = len(label_names)
    if len(train_counts) != k:
        raise ValueError(f"{len(train_counts)} train counts for {k} label names")
    if len(set(label_names)) != k:
        raise ValueError("label names must be unique")
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and of equal length, got {true.shape} and {pred.shape}")
    if true.size == 0:
        raise TailTuneError("no examples to evaluate: the evaluation data is empty")
    for name, ids in (("y_true", true), ("y_pred", pred)):
        if ids.min() < 0 or ids.max() >= k:
            raise ValueError(f"{name} holds class ids outside [0, {k})")

    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        true, pred, labels=labels, average=None, zero_division=0
    )
    measured = (support > 0) | (np.bincount(pred, minlength=k) > 0)
    groups = frequency_groups(train_counts)
    counted = any(train_counts)  # all 0: not known (a checkpoint trained elsewhere records none)

    def group_f1(ids: list[int]) -> float | None:
        scored = [c for c in ids if measured[c]]
        return float(np.mean(f1[scored])) if scored else None

    def score(values: np.ndarray, c: int) -> float | None:
        return float(values[c]) if measured[c] else None

    loss = None
    if probabilities is not None:
        probs = np.asarray(probabilities, dtype=np.float64)  # float32 rows sum to 1 only within float32's precision
        loss = float(log_loss(true, probs / probs.sum(axis=1, keepdims=True), labels=labels))
    return {
        "accuracy": float(np.mean(true == pred)),
        # No labels= argument: scikit-learn's default averages over the classes in y_true or y_pred.
        "micro_f1": float(f1_score(true, pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(true, pred, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(true, pred, average="weighted", zero_division=0)),
        "balanced_accuracy": float(np.mean(recall[support > 0])),
        "n_examples": int(true.size),
        **{f"{group}_f1": group_f1(ids) for group, ids in groups.items()},
        "groups": {group: [label_names[c] for c in ids] for group, ids in groups.items()},
        "absent_classes": [label_names[c] for c in labels if not measured[c]],
        "per_class": {
            label_names[c]: {
                "precision": score(precision, c),
                "recall": score(recall, c),
                "f1": score(f1, c),
                "support": int(support[c]),
                "train_count": int(train_counts[c]) if counted else None,
            }
            for c in labels
        },
        "confusion_matrix": {
            "labels": list(label_names),
            "matrix": confusion_matrix(true, pred, labels=labels).tolist(),
        },
        "log_loss": loss,
    }


def score_probabilities(
    y_true: Sequence[int],
    probabilities: np.ndarray,
    *,
    texts: Sequence[str],
    labels: Sequence[str],
    label_names: Sequence[str],
    train_counts: Sequence[int],
    calibrated: bool = True,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """A model's class scores on labelled data, scored: :func:`compute_metrics` of their argmax (with the log
    loss where the scores are ``calibrated`` probabilities), and one row per example (``text``, ``label``,
    ``predicted`` and the predicted class's ``score``), as every run's ``predictions.csv`` holds them."""
    import pandas as pd  # not at import time: the command line's --help reads this module

    predicted = probabilities.argmax(axis=1)
    metrics = compute_metrics(y_true, predicted, label_names=label_names, train_counts=train_counts,
                              probabilities=probabilities if calibrated else None)  # fmt: skip
    predictions = pd.DataFrame({
        "text": list(texts),
        "label": list(labels),
        "predicted": [label_names[i] for i in predicted],
        "score": probabilities[np.arange(len(predicted)), predicted].round(6),
    })  # fmt: skip
    return metrics, predictions


def present_macro_f1(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Macro-F1 over the classes present in ``y_true`` only: how validation data is scored.

    Unlike :func:`compute_metrics` (and scikit-learn's default), it leaves out classes that are predicted but
    never true. Validation scores pick epochs, the decision rule and tuning trials, and a split carved from the
    training data lacks the classes too small to hold out: under the default, a single prediction of such a
    class would add a whole class with F1 0, a step penalty of 1/(n+1) of the score that steers every choice
    away from models that predict the rarest classes at all, the ones long-tailed training is for. Such a
    prediction is still an error: it lowers the recall of its true class.
    """
    return float(f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0))


def present_macro_f1_of(metrics: dict[str, Any]) -> float:
    """:func:`present_macro_f1` of the predictions :func:`compute_metrics` scored: the mean F1 of the classes
    with support (0.0 where none has)."""
    scores = [row["f1"] for row in metrics["per_class"].values() if row["support"]]
    return float(sum(scores) / len(scores)) if scores else 0.0


def score_predictions(metric: str, y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """One score (higher is better) by name: ``macro_f1``, ``micro_f1``, ``balanced_accuracy`` or ``accuracy``.

    ``macro_f1`` averages over the classes present in ``y_true`` (:func:`present_macro_f1`): this score picks
    epochs on a validation split.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    if metric == "macro_f1":
        return present_macro_f1(y_true, y_pred)
    if metric == "micro_f1":
        return float(f1_score(y_true, y_pred, average="micro", zero_division=0))
    if metric == "balanced_accuracy":
        return float(balanced_accuracy_score(y_true, y_pred))
    if metric == "accuracy":
        return float(accuracy_score(y_true, y_pred))
    raise TailTuneError(f"select_metric: unknown metric {metric!r}", setting="select_metric")
