"""Per-label decision thresholds for multi-label models, chosen on validation data and folded into the bias.

A multi-label model scores each label with a sigmoid and predicts the labels whose probability exceeds a
threshold. One threshold for all labels (0.5, or one tuned on validation) suits the frequent labels and misses
the rare ones, whose probabilities a model trained on few positives keeps low. Here each label gets the
threshold that maximises its own validation F1; a label with few validation positives leans on a threshold
chosen for all labels together (shrinkage), since a threshold fitted to one or two examples is noise.

The rule: a label is predicted when ``probability > threshold`` (strictly). :func:`fold_thresholds_into_bias`
turns the thresholds into bias changes, so that a plain ``sigmoid(logit) > 0.5`` on the saved model (as
``transformers.pipeline(..., function_to_apply="sigmoid")`` does) gives the same label sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tailtune.errors import TailTuneError

#: A label needs at least this many validation positives for a threshold of its own; with fewer (0 or 1) it
#: takes the global threshold. With one positive the best threshold is just below that text's score: F1 1 on
#: validation whatever the model, which says nothing about new texts.
MIN_POSITIVES = 2
#: Prior strength of the global threshold, in validation positives: a label with ``n`` positives moves its
#: threshold a share ``n / (n + SHRINKAGE)`` of the way (in logit space) from the global threshold to its own.
SHRINKAGE = 1.0
#: Thresholds are kept in ``[CLIP, 1 - CLIP]`` so that their logits (at most about 13.8 in size) stay finite.
CLIP = 1e-6


@dataclass
class LabelThresholds:
    """Thresholds chosen on validation data, one per label, and how each was chosen.

    Attributes:
        thresholds: The threshold of each label (predict when ``probability > threshold``).
        global_threshold: The one threshold that maximises validation micro-F1 over all labels together.
        own_thresholds: The threshold that maximises each label's own validation F1 (None for a label with
            fewer than ``min_positives`` validation positives).
        weights: The share of each label's threshold (in logit space) that comes from its own threshold; the
            rest comes from the global one.
        n_positives: Validation positives per label.
        min_positives: Positives a label needed for a threshold of its own.
        shrinkage: Prior strength of the global threshold, in validation positives.
    """

    thresholds: list[float]
    global_threshold: float
    own_thresholds: list[float | None]
    weights: list[float]
    n_positives: list[int]
    min_positives: int
    shrinkage: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable record of the choice."""
        return {
            "thresholds": [round(t, 6) for t in self.thresholds],
            "global_threshold": round(self.global_threshold, 6),
            "own_thresholds": [None if t is None else round(t, 6) for t in self.own_thresholds],
            "weights": [round(w, 6) for w in self.weights],
            "n_positives": self.n_positives,
            "min_positives": self.min_positives,
            "shrinkage": self.shrinkage,
        }


def _check(probabilities: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probabilities, dtype=np.float64)
    true = np.asarray(targets)
    if probs.ndim != 2 or probs.shape != true.shape:
        raise ValueError(f"probabilities and targets must be [n, K] of one shape, got {probs.shape} and {true.shape}")
    if not (np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()):
        raise ValueError("probabilities must be finite and in [0, 1]")
    if not np.isin(true, (0, 1)).all():
        raise ValueError("targets must hold only 0 and 1")
    if probs.shape[0] == 0:
        raise TailTuneError("no validation examples to choose thresholds on: the validation data is empty")
    return probs, true.astype(np.int64)


def best_threshold(scores: Any, targets: Any) -> tuple[float, float]:
    """The threshold that maximises the F1 of ``scores > threshold`` against binary ``targets``.

    Every distinct way of cutting the sorted scores is tried (predict none, the top one, the top two, ... all).
    A cut is represented by the midpoint between the two scores it separates (0 and 1 bound the ends; kept in
    ``[CLIP, 1 - CLIP]``), or by 0.5 where 0.5 makes the same cut. Among cuts with the best F1 the threshold
    nearest 0.5 wins, so a model whose default already does best keeps it. F1 is 0 where nothing is predicted
    or nothing is true; without any positive target every cut scores 0 and the tie rule returns the threshold
    nearest 0.5. A cut whose predictions are no more often positive than a text drawn at random (precision at or
    below the positive rate, as "predict every text" is) counts as F1 0 too: where a model ranks a label's
    positives below its negatives, predicting it for (nearly) every text has a small positive F1 of its own and
    ruins every other text's label set.

    Args:
        scores: Scores in ``[0, 1]``, one per example.
        targets: 0/1 targets, one per example.

    Returns:
        ``(threshold, f1)``: the chosen threshold and the F1 it gives on these scores.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(targets, dtype=np.int64).ravel()
    if s.size == 0:
        return 0.5, 0.0
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # The last position of each run of equal scores: predicting the top (i + 1) is a cut only there.
    ends = np.flatnonzero(np.r_[s[:-1] > s[1:], True])
    tp = np.cumsum(y)[ends]
    n_pred = ends + 1
    n_true = int(y.sum())
    # F1 = 2 TP / (predicted + true); the cut "predict none" (threshold at or above the top score) comes first.
    better_than_chance = tp * len(s) > n_true * n_pred  # precision tp / n_pred above the rate n_true / n
    f1 = np.r_[0.0, np.divide(2.0 * tp, n_pred + n_true, out=np.zeros(len(ends)), where=better_than_chance)]
    # A cut's thresholds lie in [lower, upper): between the lowest score it predicts and the highest it leaves.
    upper = np.r_[1.0, s[ends]]
    lower = np.r_[s[ends], 0.0]
    middle = np.clip((lower + upper) / 2, CLIP, 1 - CLIP)
    candidates = np.where((lower <= 0.5) & (upper > 0.5), 0.5, middle)
    # Scores within CLIP of 0 or 1 can leave a cut no threshold in [CLIP, 1 - CLIP] makes; such a cut is not
    # offered. The cut that 0.5 makes is always offered.
    f1 = np.where((lower <= candidates) & (candidates < upper), f1, -1.0)
    best = np.flatnonzero(f1 == f1.max())
    pick = best[np.argmin(np.abs(candidates[best] - 0.5))]
    return float(candidates[pick]), float(f1[pick])


def global_threshold(probabilities: Any, targets: Any) -> float:
    """One threshold for every label: the one that maximises validation micro-F1 (ties toward 0.5).

    Micro-F1 pools every (text, label) decision, so this is :func:`best_threshold` of the flattened matrices.

    Args:
        probabilities: Validation sigmoid probabilities, ``[n, K]``.
        targets: Validation 0/1 targets, ``[n, K]``.
    """
    probs, true = _check(probabilities, targets)
    return best_threshold(probs.ravel(), true.ravel())[0]


def logit(p: Any) -> np.ndarray:
    """``log(p / (1 - p))`` of ``p`` clipped to ``[CLIP, 1 - CLIP]`` (so 0 and 1 give finite values)."""
    q = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1 - CLIP)
    return np.log(q) - np.log1p(-q)


def sigmoid(z: Any) -> np.ndarray:
    """``1 / (1 + exp(-z))``."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def choose_thresholds(
    probabilities: Any,
    targets: Any,
    *,
    min_positives: int = MIN_POSITIVES,
    shrinkage: float = SHRINKAGE,
) -> LabelThresholds:
    """Choose one threshold per label on validation data.

    Rule, for a label with ``n`` validation positives:

    - ``n >= min_positives``: its own threshold ``t_own`` (:func:`best_threshold` on its column) shrunk toward the
      global threshold ``t_glob`` (:func:`global_threshold`) in logit space:
      ``logit(t) = w * logit(t_own) + (1 - w) * logit(t_glob)`` with ``w = n / (n + shrinkage)``. A label with
      many positives keeps nearly its own threshold; one with two leans on the global one (``w = 0.5`` at the
      default ``shrinkage`` 2). Logit space, because that is where the threshold acts on the model (as a bias),
      and there a move from 0.5 to 0.1 is as large as one from 0.5 to 0.9.
    - ``n < min_positives`` (too rare to validate): the global threshold. The global threshold is itself chosen
      on validation, on every label's decisions at once, so it is the best-supported estimate available. A
      threshold from the label's training prior was not taken: it presumes calibrated probabilities, which the
      balancing losses for the tail deliberately give up.

    Args:
        probabilities: Validation sigmoid probabilities, ``[n, K]``.
        targets: Validation 0/1 targets, ``[n, K]``.
        min_positives: Validation positives a label needs for a threshold of its own (at least 1).
        shrinkage: Prior strength of the global threshold, in validation positives (0: no shrinkage).

    Raises:
        TailTuneError: If there are no validation examples.
        ValueError: If the inputs disagree in shape or range, or the settings are out of range.
    """
    if min_positives < 1:
        raise ValueError(f"min_positives must be at least 1, got {min_positives}")
    if not shrinkage >= 0:
        raise ValueError(f"shrinkage must be at least 0, got {shrinkage}")
    probs, true = _check(probabilities, targets)
    t_glob = best_threshold(probs.ravel(), true.ravel())[0]
    n_pos = true.sum(axis=0)
    thresholds, own, weights = [], [], []
    for j in range(probs.shape[1]):
        if n_pos[j] < min_positives:
            thresholds.append(t_glob)
            own.append(None)
            weights.append(0.0)
            continue
        t_own = best_threshold(probs[:, j], true[:, j])[0]
        w = float(n_pos[j] / (n_pos[j] + shrinkage))
        thresholds.append(float(sigmoid(w * logit(t_own) + (1 - w) * logit(t_glob))))
        own.append(t_own)
        weights.append(w)
    return LabelThresholds(
        thresholds=thresholds, global_threshold=t_glob, own_thresholds=own, weights=weights,
        n_positives=[int(n) for n in n_pos], min_positives=min_positives, shrinkage=float(shrinkage),
    )  # fmt: skip


def apply_thresholds(probabilities: Any, thresholds: Any) -> np.ndarray:
    """The 0/1 predictions ``probabilities > thresholds`` (``[n, K]`` against ``[K]`` or one number)."""
    return (np.asarray(probabilities, dtype=np.float64) > np.asarray(thresholds, dtype=np.float64)).astype(np.int64)


def fold_thresholds_into_bias(bias: Any, thresholds: Any) -> np.ndarray:
    """The final layer's bias with per-label thresholds folded in: ``bias - logit(threshold)``.

    With the new bias the logit of label ``j`` becomes ``z_j - logit(t_j)``, and ``sigmoid(z_j - logit(t_j)) >
    0.5`` holds exactly when ``sigmoid(z_j) > t_j`` (sigmoid is increasing and ``sigmoid(logit(t)) = t``), so a
    plain ``> 0.5`` rule on the saved model gives the thresholded label sets. The two can differ only where a
    logit lies within floating-point rounding of its threshold's logit. Thresholds must lie in (0, 1); they are
    clipped to ``[1e-6, 1 - 1e-6]`` (:data:`CLIP`), which changes a decision only for logits beyond about
    ±13.8, where the probability is within 1e-6 of 0 or 1.

    Args:
        bias: The final layer's bias, ``[K]``.
        thresholds: One threshold per label, ``[K]`` (or one for all).

    Returns:
        The new bias, ``[K]``, as float64 (cast it to the layer's dtype to store it).

    Raises:
        ValueError: If a threshold is not in (0, 1).
    """
    t = np.asarray(thresholds, dtype=np.float64)
    if not ((t > 0) & (t < 1)).all():
        raise ValueError("thresholds must lie strictly between 0 and 1")
    return np.asarray(bias, dtype=np.float64) - logit(t)
