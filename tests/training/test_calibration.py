"""Tests of the decision rule chosen on validation data and folded into the classifier's bias."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from tailtune.models.transformer import load_classifier
from tailtune.training.calibration import (
    MIN_VALIDATION_EXAMPLES,
    TAUS,
    Calibration,
    choose_calibration,
    fold_into_bias,
    log_prior,
    prior_tau_for,
)

LABELS = ["money", "sport", "tech"]


def _macro_f1(y: np.ndarray, logits: np.ndarray) -> float:
    return float(f1_score(y, logits.argmax(axis=1), labels=np.unique(y), average="macro", zero_division=0))


def _under_predicted(gap: float, n_rare: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Logits of 3 classes where every example of class 2 scores ``gap`` below class 0; the rest are right."""
    rows, labels = [], []
    for c in (0, 1):
        for _ in range(10):
            row = np.full(3, -5.0)
            row[c] = 2.0
            rows.append(row)
            labels.append(c)
    for _ in range(n_rare):
        rows.append(np.array([1.0, -5.0, 1.0 - gap]))
        labels.append(2)
    return np.array(rows), np.array(labels)


def test_logit_adjust_helps_rare_class():
    """A rare class the logits under-predict gets tau > 0, and validation macro-F1 rises."""
    logits, y = _under_predicted(gap=1.0)
    counts = [100, 100, 5]
    calibration = choose_calibration("logit-adjust", logits, y, counts)
    assert calibration.tau > 0
    assert calibration.tau in TAUS
    assert calibration.validation_before == pytest.approx(_macro_f1(y, logits))
    assert calibration.validation_after > calibration.validation_before
    adjusted = logits + calibration.offsets(counts)
    assert _macro_f1(y, adjusted) == pytest.approx(calibration.validation_after)
    assert calibration.validation_after == pytest.approx(1.0)
    assert calibration.class_offsets == [0.0, 0.0, 0.0]


def test_logit_adjust_keeps_perfect_logits():
    """Logits that are already right keep tau 0."""
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    logits = np.eye(3)[y] * 4.0
    calibration = choose_calibration("logit-adjust", logits, y, [100, 50, 2])
    assert calibration.tau == 0.0
    assert calibration.validation_before == calibration.validation_after == pytest.approx(1.0)
    np.testing.assert_array_equal(calibration.offsets([100, 50, 2]), np.zeros(3))


def test_none_returns_zero_offsets():
    """Method none changes nothing, even where logit adjustment would help."""
    logits, y = _under_predicted(gap=1.0)
    calibration = choose_calibration("none", logits, y, [100, 100, 5])
    assert calibration.method == "none" and calibration.tau == 0.0
    np.testing.assert_array_equal(calibration.offsets([100, 100, 5]), np.zeros(3))
    assert calibration.validation_before == calibration.validation_after


def test_class_bias_fixes_what_the_prior_cannot():
    """With a uniform prior tau cannot help; class-bias raises the under-predicted class's bias instead."""
    logits, y = _under_predicted(gap=0.1)
    counts = [30, 30, 30]
    adjusted = choose_calibration("logit-adjust", logits, y, counts)
    tuned = choose_calibration("class-bias", logits, y, counts)
    assert adjusted.tau == 0.0 and adjusted.validation_after == adjusted.validation_before
    assert tuned.class_offsets[2] > 0
    assert tuned.validation_after > adjusted.validation_after
    assert _macro_f1(y, logits + tuned.offsets(counts)) == pytest.approx(tuned.validation_after)


def test_class_bias_skips_classes_with_few_validation_examples():
    """A class with fewer than MIN_VALIDATION_EXAMPLES validation examples keeps a zero offset."""
    logits, y = _under_predicted(gap=0.1, n_rare=MIN_VALIDATION_EXAMPLES - 1)
    calibration = choose_calibration("class-bias", logits, y, [30, 30, 30])
    assert calibration.class_offsets[2] == 0.0
    # The same class with enough examples would be tuned: the skip is due to the count alone.
    logits, y = _under_predicted(gap=0.1, n_rare=MIN_VALIDATION_EXAMPLES)
    assert choose_calibration("class-bias", logits, y, [30, 30, 30]).class_offsets[2] > 0


def _random_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(2, 5)), int(rng.integers(6, 40))
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) * rng.uniform(0.2, 3.0) + np.eye(k)[y] * rng.uniform(0.0, 2.0)
    return logits, y, rng.integers(1, 100, k)


def test_class_bias_offsets_only_on_well_represented_classes():
    """On random validation sets, class-bias never moves the bias of a class with too few examples."""
    for seed in range(12):
        logits, y, counts = _random_case(seed)
        calibration = choose_calibration("class-bias", logits, y, counts)
        few = np.bincount(y, minlength=logits.shape[1]) < MIN_VALIDATION_EXAMPLES
        assert np.all(np.asarray(calibration.class_offsets)[few] == 0.0), seed
        assert calibration.validation_after == pytest.approx(_macro_f1(y, logits + calibration.offsets(counts)))


def test_class_bias_never_below_logit_adjust():
    """On random validation sets, class-bias's validation macro-F1 is never below logit-adjust's."""
    lowered = []
    for seed in range(12):
        logits, y, counts = _random_case(seed)
        adjusted = choose_calibration("logit-adjust", logits, y, counts)
        tuned = choose_calibration("class-bias", logits, y, counts)
        assert tuned.tau == adjusted.tau
        if tuned.validation_after < adjusted.validation_after - 1e-12:
            lowered.append(seed)
    assert lowered == []


def test_empty_validation_changes_nothing():
    """An empty validation set gives a calibration with zero offsets rather than an error."""
    calibration = choose_calibration("logit-adjust", np.zeros((0, 3)), np.zeros(0, dtype=np.int64), [5, 3, 1])
    assert calibration.tau == 0.0


def test_offsets_formula():
    """offsets(counts) is -tau * log(prior) + class_offsets, with the prior of the counts given."""
    calibration = Calibration("class-bias", 0.75, [0.5, 0.0, -0.25])
    counts = [80, 15, 5]
    expected = -0.75 * np.log(np.array(counts) / 100.0) + np.array([0.5, 0.0, -0.25])
    np.testing.assert_allclose(calibration.offsets(counts), expected)
    # A refit model's counts give its own prior.
    np.testing.assert_allclose(
        calibration.offsets([90, 18, 6]), -0.75 * np.log(np.array([90, 18, 6]) / 114.0) + [0.5, 0.0, -0.25]
    )


def test_log_prior_counts_empty_class_as_one():
    """A class without training examples counts as one example in the prior (no log of zero)."""
    np.testing.assert_allclose(log_prior([9, 0]), np.log([1.0, 1.0 / 9.0]))


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_fold_into_bias_shifts_logits(tiny_model_no_dropout, head):
    """Folding offsets into the final layer's bias shifts every logit by exactly its class's offset."""
    torch.manual_seed(0)
    model, tokenizer = load_classifier(tiny_model_no_dropout, LABELS, head=head, pooling="cls")
    model.eval()
    batch = tokenizer(["match goal team win", "bank shares profit", "chip phone data"], padding=True,
                      return_tensors="pt")  # fmt: skip
    offsets = np.array([0.5, -1.25, 2.0])
    with torch.no_grad():
        before = model(**batch).logits
        fold_into_bias(model, offsets)
        after = model(**batch).logits
    torch.testing.assert_close(after - before, torch.tensor(offsets, dtype=torch.float32).expand_as(before),
                               rtol=0, atol=1e-5)  # fmt: skip


def test_ties_go_to_the_prior_tau():
    """When validation scores every tau alike, the choice follows prior_tau (1 after plain cross-entropy)."""
    logits = np.array([[9.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 9.0]] * 4)
    y = np.array([0, 1, 2] * 4)
    counts = [100, 20, 4]
    assert choose_calibration("logit-adjust", logits, y, counts, prior_tau=1.0).tau == 1.0
    assert choose_calibration("logit-adjust", logits, y, counts, prior_tau=0.0).tau == 0.0
    assert prior_tau_for("ce", "none", "random") == 1.0
    assert prior_tau_for("ldam", "effective", "random") == 0.0
    assert prior_tau_for("ce", "inverse", "random") == 0.5
    assert prior_tau_for("focal", "none", "sqrt") == 0.5
    assert prior_tau_for("ce", "none", "class-balanced") == 0.0


def test_label_thresholds_record_what_one_threshold_gives():
    """Two labels whose positives and negatives part at different logits: one threshold for both loses one of them,
    each label's own threshold separates both, and the record says so in validation macro-F1."""
    from tailtune.task import get_task

    rng = np.random.default_rng(0)
    targets = np.zeros((80, 2), dtype=np.int64)
    targets[:20, 0] = targets[40:60, 1] = 1
    logits = np.where(targets == 1, np.array([3.0, -1.0]), np.array([1.0, -3.0])) + rng.normal(0, 0.1, (80, 2))
    rule = get_task("multi-label").choose_rule("logit-adjust", logits, targets, [20, 20], prior_tau=0.0)
    record = rule.to_dict()
    one = record["one_threshold"]
    decided = (1 / (1 + np.exp(-logits)) > one["threshold"]).astype(int)
    assert one["validation_macro_f1"] == pytest.approx(f1_score(targets, decided, average="macro"))
    assert record["validation_macro_f1_after"] == pytest.approx(1.0)
    assert one["validation_macro_f1"] < 0.9
    assert "one_threshold" not in Calibration("none", 0.0, [0.0, 0.0]).to_dict()
    assert one["kept"] == "per-label thresholds"


def test_label_thresholds_are_kept_only_where_validation_says_they_pay():
    """Logits already right at 0.5 for every label: thresholds can do no better on validation, so 0.5 is kept (zero
    offsets) rather than thresholds that only move with noise."""
    from tailtune.task import get_task

    targets = np.zeros((60, 3), dtype=np.int64)
    targets[:20, 0] = targets[20:40, 1] = targets[40:42, 2] = 1
    logits = np.where(targets == 1, 2.0, -2.0)
    rule = get_task("multi-label").choose_rule("logit-adjust", logits, targets, [20, 20, 2], prior_tau=0.0)
    record = rule.to_dict()
    assert record["one_threshold"]["kept"] == "0.5" and record["class_offsets"] == [0.0, 0.0, 0.0]
    assert record["validation_macro_f1_after"] == record["validation_macro_f1_before"] == pytest.approx(1.0)
