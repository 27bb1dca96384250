"""Per-label thresholds: the best F1 cut, the fallback for rare labels, and the bias that reproduces them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.special import expit
from sklearn.metrics import f1_score

from tailtune.errors import TailTuneError
from tailtune.training.thresholds import (
    CLIP,
    MIN_POSITIVES,
    SHRINKAGE,
    apply_thresholds,
    best_threshold,
    choose_thresholds,
    fold_thresholds_into_bias,
    global_threshold,
    logit,
)

# Few distinct values, so that equal scores (and equal F1 at several cuts) are common; 0 and 1 included.
SCORE = st.sampled_from((0.0, 0.05, 0.2, 0.3, 0.45, 0.5, 0.55, 0.7, 0.9, 1.0)) | st.floats(0, 1)


@st.composite
def scored_column(draw):
    n = draw(st.integers(1, 25))
    scores = np.array(draw(st.lists(SCORE, min_size=n, max_size=n)))
    targets = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    return scores, targets


def cuts(scores: np.ndarray) -> np.ndarray:
    """Every threshold in [CLIP, 1 - CLIP] that can make a different cut: the scores, the midpoints, the ends."""
    values = np.unique(np.r_[scores, 0.0, 1.0])
    return np.clip(np.unique(np.r_[values, (values[:-1] + values[1:]) / 2, 0.5]), CLIP, 1 - CLIP)


def f1_at(scores, targets, threshold) -> float:
    """F1 of ``scores > threshold`` (0 where nothing is predicted or true, as scikit-learn's zero_division=0),
    counted 0 too where the predictions are no more often positive than a random text (precision at or below the
    positive rate): the cuts :func:`best_threshold` does not take."""
    predicted, true = np.asarray(scores) > threshold, np.asarray(targets) == 1
    tp = (predicted & true).sum()
    if tp * len(true) <= true.sum() * predicted.sum():
        return 0.0
    return float(2 * tp / (predicted.sum() + true.sum()))


@settings(max_examples=60, deadline=None)
@given(scored_column())
def test_best_threshold_finds_the_best_cut_nearest_one_half(column):
    scores, targets = column
    threshold, f1 = best_threshold(scores, targets)
    assert CLIP <= threshold <= 1 - CLIP
    assert f1 == pytest.approx(f1_at(scores, targets, threshold))  # the F1 it reports is the F1 it gives
    by_cut = {c: f1_at(scores, targets, c) for c in cuts(scores)}
    assert f1 == pytest.approx(max(by_cut.values()))
    values = np.unique(np.r_[scores, 0.0, 1.0])
    representatives = np.clip(np.r_[(values[:-1] + values[1:]) / 2, 0.5], CLIP, 1 - CLIP)
    for c in representatives:
        # A cut, represented by its midpoint (or 0.5), nearer 0.5 that does as well is the same cut.
        value = f1_at(scores, targets, c)
        if abs(c - 0.5) < abs(threshold - 0.5) and value == pytest.approx(f1):
            assert ((scores > c) == (scores > threshold)).all()
    if by_cut[0.5] == pytest.approx(f1):
        assert threshold == 0.5


def test_best_threshold_hand_examples():
    scores = [0.9, 0.8, 0.3, 0.2, 0.1]
    assert best_threshold(scores, [1, 1, 1, 0, 0]) == (0.25, 1.0)  # midpoint of 0.3 and 0.2
    assert best_threshold(scores, [1, 1, 0, 0, 0]) == (0.5, 1.0)  # every threshold in [0.3, 0.8) does; 0.5 wins
    # The positive ranked last: only "predict all" finds it, no more often right than chance, so no cut pays.
    assert best_threshold(scores, [0, 0, 0, 0, 1]) == (0.5, 0.0)
    assert best_threshold([0.4, 0.4, 0.4], [1, 0, 0]) == (0.5, 0.0)  # equal scores are cut together: all or none
    assert best_threshold([0.4, 0.4, 0.1], [1, 0, 0]) == (0.25, 2 / 3)  # the top two: precision 1/2 beats 1/3


@st.composite
def validation_sets(draw):
    n = draw(st.integers(1, 20))
    k = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    targets = (rng.random((n, k)) < draw(st.sampled_from((0.05, 0.2, 0.5)))).astype(int)
    probabilities = np.round(rng.random((n, k)), draw(st.sampled_from((1, 3))))  # rounding makes ties
    return probabilities, targets


@settings(max_examples=40, deadline=None)
@given(validation_sets(), st.integers(1, 4), st.sampled_from((0.0, 0.5, 1.0, 3.0)))
def test_choose_thresholds_follows_its_rule(validation, min_positives, shrinkage):
    probabilities, targets = validation
    chosen = choose_thresholds(probabilities, targets, min_positives=min_positives, shrinkage=shrinkage)
    glob = global_threshold(probabilities, targets)
    assert chosen.global_threshold == glob
    assert f1_at(probabilities.ravel(), targets.ravel(), glob) == pytest.approx(
        max(f1_at(probabilities.ravel(), targets.ravel(), c) for c in cuts(probabilities.ravel()))
    )  # the global threshold is the best for micro-F1
    for j, t in enumerate(chosen.thresholds):
        n = int(targets[:, j].sum())
        assert chosen.n_positives[j] == n
        assert 0 < t < 1
        if n < min_positives:  # too rare to validate: the global threshold
            assert (t, chosen.own_thresholds[j], chosen.weights[j]) == (glob, None, 0.0)
            continue
        own = chosen.own_thresholds[j]
        assert own == best_threshold(probabilities[:, j], targets[:, j])[0]
        w = n / (n + shrinkage)
        assert chosen.weights[j] == pytest.approx(w)
        assert logit(t) == pytest.approx(w * logit(own) + (1 - w) * logit(glob))
        if shrinkage == 0:  # unshrunk, a label's own threshold does at least as well as the global one
            assert f1_at(probabilities[:, j], targets[:, j], t) >= f1_at(probabilities[:, j], targets[:, j], glob)
    json.dumps(chosen.to_dict())


def test_rare_labels_fall_back_on_the_global_threshold():
    targets = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 0, 0], [0, 0, 0]])
    probabilities = np.array([
        [0.9, 0.2, 0.1], [0.8, 0.1, 0.1], [0.7, 0.3, 0.1], [0.2, 0.25, 0.05], [0.1, 0.05, 0.3], [0.4, 0.1, 0.2]
    ])  # fmt: skip
    chosen = choose_thresholds(probabilities, targets)
    assert (MIN_POSITIVES, SHRINKAGE) == (2, 1.0)
    assert chosen.n_positives == [3, 3, 1]
    glob = chosen.global_threshold
    assert chosen.thresholds[2] == glob and chosen.own_thresholds[2] is None  # one positive: not validated
    assert chosen.own_thresholds[1] == pytest.approx(0.15)  # between its lowest positive (0.2) and 0.1
    w = 3 / (3 + SHRINKAGE)
    assert chosen.weights[1] == pytest.approx(w)
    assert logit(chosen.thresholds[1]) == pytest.approx(w * logit(0.15) + (1 - w) * logit(glob))
    assert chosen.own_thresholds[0] == 0.5 and chosen.thresholds[0] == pytest.approx(
        float(1 / (1 + np.exp(-(w * logit(0.5) + (1 - w) * logit(glob)))))
    )


def long_tailed(rng: np.random.Generator, n: int, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores of a model that, like one trained with plain BCE, ranks each label well but scores rare labels low:
    logit = log(prior) + 3 * target + standard normal noise."""
    targets = (rng.random((n, len(prior))) < prior).astype(int)
    return expit(np.log(prior) + 3.0 * targets + rng.normal(size=targets.shape)), targets


def test_per_label_thresholds_beat_one_global_threshold_on_a_long_tail():
    rng = np.random.default_rng(0)
    prior = 0.3 * np.arange(1, 31) ** -1.2  # 30 labels, from 30% of texts down to 0.5%
    val_probs, val_targets = long_tailed(rng, 1000, prior)
    test_probs, test_targets = long_tailed(rng, 1000, prior)
    chosen = choose_thresholds(val_probs, val_targets)

    def macro(thresholds) -> float:
        return f1_score(test_targets, apply_thresholds(test_probs, thresholds), average="macro", zero_division=0)

    per_label, glob, half = macro(chosen.thresholds), macro(chosen.global_threshold), macro(0.5)
    # Measured: per-label 0.593, one global threshold (0.461) 0.296, 0.5 0.259.
    assert per_label >= glob + 0.03
    assert glob >= half


@settings(max_examples=200, deadline=None)
@given(st.floats(-40, 40), st.floats(CLIP, 1 - CLIP))
def test_folded_bias_reproduces_the_thresholds(z, t):
    shift = fold_thresholds_into_bias(np.zeros(1), [t])[0]
    assume(abs(z - logit(t)) > 1e-9 * (1 + abs(z)))  # an exact tie can go either way in floating point
    assert (expit(z + shift) > 0.5) == (expit(z) > t)


def test_folded_bias_in_a_float32_layer_gives_the_same_label_sets():
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 6)
    x = torch.randn(500, 8) * 3
    thresholds = np.array([0.5, 0.1, 0.9, 0.03, 0.6, 0.999])
    with torch.no_grad():
        logits = layer(x).double().numpy()
        layer.bias.copy_(torch.as_tensor(fold_thresholds_into_bias(layer.bias.numpy(), thresholds)))
        folded = (torch.sigmoid(layer(x)) > 0.5).numpy()  # what a plain sigmoid > 0.5 does with the saved layer
    expected = expit(logits) > thresholds
    far = np.abs(logits - logit(thresholds)) > 1e-4  # float32 rounds near a tie
    assert far.mean() > 0.99
    assert (folded == expected)[far].all()
    assert 0 < expected.sum() < expected.size


def test_thresholds_are_clipped_and_must_lie_between_0_and_1():
    assert fold_thresholds_into_bias([1.0], [1e-9])[0] == pytest.approx(1.0 - logit(CLIP))
    assert fold_thresholds_into_bias([0.0], [1 - 1e-12])[0] == pytest.approx(-np.log((1 - CLIP) / CLIP))
    assert fold_thresholds_into_bias([0.5, 0.0], 0.5).tolist() == [0.5, 0.0]  # one threshold for all labels
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            fold_thresholds_into_bias([0.0], [bad])


@pytest.mark.parametrize(
    ("probabilities", "targets", "kwargs", "error"),
    [
        (np.zeros((0, 2)), np.zeros((0, 2)), {}, TailTuneError),
        (np.zeros((2, 2)), np.zeros((2, 3)), {}, ValueError),
        (np.zeros(2), np.zeros(2), {}, ValueError),
        (np.full((2, 2), 1.5), np.zeros((2, 2)), {}, ValueError),
        (np.zeros((2, 2)), np.full((2, 2), 2), {}, ValueError),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"min_positives": 0}, ValueError),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"shrinkage": -1.0}, ValueError),
    ],
)
def test_bad_input_is_refused(probabilities, targets, kwargs, error):
    with pytest.raises(error):
        choose_thresholds(probabilities, targets, **kwargs)
