"""A decision rule for the tail, chosen on validation data and folded into the classifier's bias.

- ``logit-adjust``: post-hoc logit adjustment (Menon et al., ICLR 2021) subtracts ``tau * log(prior)`` from
  the logits, which favours rare classes; ``tau`` is chosen on validation macro-F1 from a small grid that
  includes 0 (no change), and where validation cannot tell values apart, theory decides (1 after plain
  cross-entropy, 0 after a class-balancing loss).
- ``class-bias``: starts from the chosen logit adjustment, then tunes one bias per class for validation
  macro-F1, one class at a time. Tuned thresholds overfit small validation sets, so a class is tuned only
  with enough validation examples, a change must gain a clear margin, and half a step is kept where half
  keeps the gain.

Either way the result is a vector added to the final layer's bias, so the saved model applies the rule
wherever it is loaded (``transformers.pipeline`` included).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tailtune.metrics import present_macro_f1
from tailtune.models.scopes import final_linear

logger = logging.getLogger(__name__)

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)
CLASS_BIAS_STEPS = (-2.0, -1.0, -0.5, -0.25, 0.25, 0.5, 1.0, 2.0)
MIN_GAIN = 0.005  # macro-F1 a change must gain on validation to be kept
MIN_VALIDATION_EXAMPLES = 3  # a class with fewer validation examples keeps its bias


@dataclass
class Calibration:
    """A chosen decision rule: a logit adjustment ``tau`` and per-class bias changes on top of it.

    Attributes:
        method: A name from :data:`tailtune.config.CALIBRATIONS`.
        tau: Strength of the logit adjustment (0: none).
        class_offsets: Per-class bias changes that ``class-bias`` tuned (zeros otherwise).
        validation_before: Validation macro-F1 of the plain argmax.
        validation_after: Validation macro-F1 with the rule.
        one_threshold: Label sets only: the one threshold for every label that validation chose (its best
            micro-F1, which the per-label thresholds shrink toward), the validation macro-F1 it alone gives, and
            which rule was ``kept`` (per-label thresholds, that one threshold, or 0.5); None otherwise.
    """

    method: str
    tau: float
    class_offsets: list[float]
    validation_before: float | None = None
    validation_after: float | None = None
    one_threshold: dict[str, Any] | None = None

    def offsets(self, class_counts: Sequence[int]) -> np.ndarray:
        """The bias offsets for a model trained on ``class_counts`` (a refit model has its own prior)."""
        return -self.tau * log_prior(class_counts) + np.asarray(self.class_offsets, dtype=np.float64)

    def to_dict(self) -> dict:
        record = {
            "method": self.method,
            "tau": self.tau,
            "class_offsets": [round(x, 6) for x in self.class_offsets],
            "validation_macro_f1_before": self.validation_before,
            "validation_macro_f1_after": self.validation_after,
        }
        return record if self.one_threshold is None else {**record, "one_threshold": self.one_threshold}


def _macro_f1(y_true: np.ndarray, logits: np.ndarray) -> float:
    # Macro over the classes validation holds: a class it lacks (too small to hold out) would add a constant 0.
    return present_macro_f1(y_true, logits.argmax(axis=1))


def log_prior(class_counts: Sequence[int]) -> np.ndarray:
    """Log class frequencies of the training data (a class with no example counts as one)."""
    counts = np.asarray(class_counts, dtype=np.float64)
    return np.log(np.maximum(counts, 1.0) / max(counts.sum(), 1.0))


def choose_calibration(
    method: str,
    logits: np.ndarray,
    y_true: np.ndarray,
    class_counts: Sequence[int],
    *,
    prior_tau: float = 0.0,
) -> Calibration:
    """Choose a decision rule on validation ``logits`` (``[n, K]``) with labels ``y_true``.

    ``tau`` is the grid value with the best validation macro-F1; values within :data:`MIN_GAIN` of the best
    count as ties, and a tie goes to the value nearest ``prior_tau``. A small validation split drawn from the
    training data often cannot tell the values apart (it may score perfectly at every one of them); the
    choice then falls back on what theory says for the model.

    Args:
        method: A name from :data:`tailtune.config.CALIBRATIONS`.
        logits: The model's validation logits.
        y_true: Validation label ids.
        class_counts: Training examples per class (the prior).
        prior_tau: The adjustment to prefer when validation cannot decide: 1 for a model trained with plain
            cross-entropy (Menon et al.: it then estimates the training prior, and ``tau = 1`` removes it), 0
            for one whose loss already balanced the classes (see :func:`prior_tau_for`).
    """
    k = logits.shape[1]
    if len(y_true) == 0:
        return Calibration(method, 0.0, [0.0] * k)
    before = _macro_f1(y_true, logits)
    if method == "none":
        return Calibration(method, 0.0, [0.0] * k, before, before)
    prior = log_prior(class_counts)
    scores = {tau: _macro_f1(y_true, logits - tau * prior) for tau in TAUS}
    top = max(scores.values())
    best_tau = min((tau for tau, score in scores.items() if score >= top - MIN_GAIN), key=lambda t: abs(t - prior_tau))
    best = scores[best_tau]
    adjusted = logits - best_tau * prior
    class_offsets = np.zeros(k)
    if method == "class-bias":
        class_offsets, best = _tune_class_biases(adjusted, y_true, best)
    logger.info("calibration %s: tau %.2f, validation macro-F1 %.4f -> %.4f", method, best_tau, before, best)
    return Calibration(method, best_tau, class_offsets.tolist(), before, best)


def _tune_class_biases(logits: np.ndarray, y_true: np.ndarray, score: float) -> tuple[np.ndarray, float]:
    offsets = np.zeros(logits.shape[1])
    counts = np.bincount(y_true, minlength=logits.shape[1])
    for c in np.argsort(counts):  # rarest first: the tail is what the rule is for
        if counts[c] < MIN_VALIDATION_EXAMPLES:
            continue
        best_step, best = 0.0, score
        for step in CLASS_BIAS_STEPS:
            trial = offsets.copy()
            trial[c] += step
            value = _macro_f1(y_true, logits + trial)
            if value > best + MIN_GAIN:
                best_step, best = step, value
        if best_step:
            # Shrink toward no change (the gain was measured on few examples), unless half the step loses it.
            for step in (best_step / 2, best_step):
                trial = offsets.copy()
                trial[c] += step
                value = _macro_f1(y_true, logits + trial)
                if value >= score + MIN_GAIN:
                    offsets, score = trial, value
                    break
    return offsets, score


def fold_into_bias(model: torch.nn.Module, offsets: Sequence[float]) -> None:
    """Add ``offsets`` to the bias of the model's final layer (the rule then travels with the checkpoint)."""
    layer = final_linear(model)
    with torch.no_grad():
        layer.bias.add_(torch.as_tensor(np.asarray(offsets), dtype=layer.bias.dtype, device=layer.bias.device))


def prior_tau_for(loss: str, weights: str, sampler: str) -> float:
    """The logit adjustment to fall back on, for a model whose last stage trained with this loss.

    - 0 where training already targets the balanced error: losses built on the prior (``ldam``,
      ``logit-adjusted``, ``balanced-softmax``) or class-balanced re-sampling.
    - 1 after plain cross-entropy (or focal loss) on the natural frequencies: the model then estimates the
      training prior, and ``tau = 1`` removes it (Menon et al., ICLR 2021).
    - 0.5 in between: class weights or square-root re-sampling. Weights change what an over-parameterised
      model converges to less than their size suggests (Byrd & Lipton, ICML 2019); on the demo's balanced
      validation split, which holds the rarest topic, the class-weighted probe chose 0.5.
    """
    if loss in ("ldam", "logit-adjusted", "balanced-softmax") or sampler == "class-balanced":
        return 0.0
    if weights != "none" or sampler == "sqrt":
        return 0.5
    return 1.0
