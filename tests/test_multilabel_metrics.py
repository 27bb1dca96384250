"""Multi-label metrics: equal to scikit-learn's on the same indicator matrices, groups, and input checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, hamming_loss, log_loss, precision_recall_fscore_support

from tailtune.errors import TailTuneError
from tailtune.metrics import frequency_groups
from tailtune.multilabel_metrics import compute_multilabel_metrics, huang_groups


@st.composite
def indicator_pairs(draw):
    """True and predicted [n, K] indicator matrices, with all-zero rows and labels never true or never predicted
    drawn on purpose (random matrices of this size rarely hold them by chance)."""
    n = draw(st.integers(1, 12))
    k = draw(st.integers(1, 6))
    density = draw(st.sampled_from((0.1, 0.3, 0.6)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    true = (rng.random((n, k)) < density).astype(int)
    pred = (rng.random((n, k)) < density).astype(int)
    for matrix in (true, pred):
        matrix[draw(st.lists(st.integers(0, n - 1), max_size=n)), :] = 0  # texts without labels
        matrix[:, draw(st.lists(st.integers(0, k - 1), max_size=k))] = 0  # labels never true / never predicted
    train_counts = draw(st.lists(st.integers(0, 60), min_size=k, max_size=k))
    probabilities = rng.random((n, k))
    probabilities[rng.random((n, k)) < 0.1] = draw(st.sampled_from((0.0, 1.0)))  # exact 0 and 1: clipped
    return true, pred, train_counts, probabilities


def metrics_of(true, pred, train_counts, probabilities=None):
    names = [f"label{c}" for c in range(true.shape[1])]
    return compute_multilabel_metrics(true, pred, label_names=names, train_counts=train_counts,
                                      probabilities=probabilities)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(indicator_pairs())
def test_equal_to_scikit_learn(case):
    true, pred, train_counts, probabilities = case
    m = metrics_of(true, pred, train_counts, probabilities)
    measured = np.flatnonzero(true.any(axis=0) | pred.any(axis=0))

    # scikit-learn reads a [n, 1] matrix as binary labels; a label column that is never true and never predicted
    # changes none of these averages, so one is added there.
    t, p = (true, pred) if true.shape[1] > 1 else (np.c_[true, 0 * true], np.c_[pred, 0 * pred])
    assert m["micro_f1"] == pytest.approx(f1_score(t, p, average="micro", zero_division=0))
    if measured.size:
        assert m["macro_f1"] == pytest.approx(f1_score(t, p, average="macro", zero_division=np.nan))
        assert m["macro_f1"] == pytest.approx(f1_score(t, p, labels=measured, average="macro", zero_division=0))
    else:
        assert m["macro_f1"] is None
        assert math.isnan(f1_score(t, p, average="macro", zero_division=np.nan))
    assert m["samples_f1"] == pytest.approx(f1_score(t, p, average="samples", zero_division=1))
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(t, p))
    if true.shape[1] > 1:
        assert m["macro_f1_all_labels"] == pytest.approx(f1_score(true, pred, average="macro", zero_division=0))
        assert m["hamming_loss"] == pytest.approx(hamming_loss(true, pred))
    else:
        assert m["macro_f1_all_labels"] == pytest.approx(f1_score(true[:, 0], pred[:, 0], zero_division=0))
        assert m["hamming_loss"] == pytest.approx(1 - accuracy_score(true[:, 0], pred[:, 0]))
    assert m["log_loss"] == pytest.approx(log_loss(true.ravel(), probabilities.ravel(), labels=[0, 1]))
    eps = np.finfo(np.float64).eps  # the mean binary cross-entropy, by hand, clipped as scikit-learn clips
    q = np.clip(probabilities, eps, 1 - eps)
    assert m["log_loss"] == pytest.approx(-np.mean(true * np.log(q) + (1 - true) * np.log(1 - q)))

    for c, row in enumerate(m["per_label"].values()):
        assert row["support"] == true[:, c].sum()
        assert row["predicted"] == pred[:, c].sum()
        assert row["train_count"] == (train_counts[c] if any(train_counts) else None)  # None: not known
        if c not in measured:
            assert row["precision"] is row["recall"] is row["f1"] is None
            continue
        scores = precision_recall_fscore_support(true[:, c], pred[:, c], average="binary", zero_division=0)[:3]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(scores)
    assert m["absent_labels"] == [f"label{c}" for c in range(true.shape[1]) if c not in measured]
    json.dumps(m)  # the record is written as metrics.json


@settings(max_examples=25, deadline=None)
@given(indicator_pairs())
def test_group_scores_are_macro_f1_over_the_groups_measured_labels(case):
    true, pred, train_counts, _ = case
    m = metrics_of(true, pred, train_counts)
    for prefix, groups in (("", frequency_groups(train_counts)), ("huang_", huang_groups(train_counts))):
        for group, ids in groups.items():
            measured = [c for c in ids if true[:, c].any() or pred[:, c].any()]
            expected = float(np.mean([f1_score(true[:, c], pred[:, c]) for c in measured])) if measured else None
            assert m[f"{prefix}{group}_f1"] == pytest.approx(expected)
            assert m[f"{prefix}groups"][group] == [f"label{c}" for c in ids]
    assert m["n_without_labels"] == int((true.sum(axis=1) == 0).sum())
    assert m["label_cardinality"] == pytest.approx(true.sum(axis=1).mean())
    assert m["predicted_cardinality"] == pytest.approx(pred.sum(axis=1).mean())


def test_macro_f1_leaves_out_labels_the_test_data_lacks():
    # 2 of 6 labels in the test data, every decision right.
    true = np.array([[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    m = metrics_of(true, true.copy(), [50, 40, 30, 20, 5, 1])
    assert m["macro_f1"] == 1.0
    assert m["macro_f1_all_labels"] == pytest.approx(2 / 6)  # scikit-learn's default scores the other four 0
    assert m["absent_labels"] == ["label2", "label3", "label4", "label5"]
    assert m["tail_f1"] is None and m["huang_tail_f1"] is None
    assert m["samples_f1"] == 1.0  # the text without labels, left without labels, is a right answer
    assert m["subset_accuracy"] == 1.0 and m["hamming_loss"] == 0.0


def test_a_label_predicted_but_never_true_counts_zero():
    true = np.array([[1, 0], [1, 0]])
    pred = np.array([[1, 1], [1, 0]])
    m = metrics_of(true, pred, [10, 10])
    assert m["macro_f1"] == pytest.approx(0.5)
    assert m["per_label"]["label1"] == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 1, "train_count": 10,
    }  # fmt: skip
    assert m["samples_f1"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["subset_accuracy"] == 0.5 and m["hamming_loss"] == 0.25


def test_huang_groups_cut_at_8_and_35_training_documents():
    groups = huang_groups([0, 1, 8, 9, 34, 35, 2877])
    assert groups == {"head": [5, 6], "medium": [3, 4], "tail": [0, 1, 2]}


def test_no_groups_where_no_training_counts_are_known():
    """A checkpoint trained elsewhere records no counts (all 0): no group is made up from the label order."""
    empty = {"head": [], "medium": [], "tail": []}
    assert huang_groups([0, 0, 0]) == empty and frequency_groups([0, 0, 0]) == empty
    m = metrics_of(np.eye(3, dtype=int), np.eye(3, dtype=int), [0, 0, 0])
    assert m["tail_f1"] is None and m["huang_tail_f1"] is None and m["head_f1"] is None


def test_groups_by_thirds_are_those_of_single_label_metrics():
    counts = [2877, 1650, 538, 30, 9, 8, 1, 1, 1]
    m = metrics_of(np.eye(9, dtype=int), np.eye(9, dtype=int), counts)
    thirds = frequency_groups(counts)
    assert m["groups"] == {g: [f"label{c}" for c in ids] for g, ids in thirds.items()}
    assert m["huang_groups"] == {
        "head": ["label0", "label1", "label2"], "medium": ["label3", "label4"],
        "tail": ["label5", "label6", "label7", "label8"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("true", "pred", "kwargs", "error"),
    [
        (np.zeros((2, 3)), np.zeros((2, 2)), {}, ValueError),
        (np.zeros((2, 2)), np.zeros((3, 2)), {}, ValueError),
        (np.array([[0, 2], [1, 0]]), np.zeros((2, 2)), {}, ValueError),
        (np.zeros(2), np.zeros(2), {}, ValueError),
        (np.zeros((0, 2)), np.zeros((0, 2)), {}, TailTuneError),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"probabilities": np.full((2, 2), 1.5)}, ValueError),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"probabilities": np.full((2, 3), 0.5)}, ValueError),
    ],
)
def test_bad_input_is_refused(true, pred, kwargs, error):
    with pytest.raises(error):
        compute_multilabel_metrics(true, pred, label_names=["a", "b"], train_counts=[1, 1], **kwargs)


def test_label_names_and_counts_must_agree():
    with pytest.raises(ValueError, match="train counts"):
        compute_multilabel_metrics(np.zeros((1, 2)), np.zeros((1, 2)), label_names=["a", "b"], train_counts=[1])
    with pytest.raises(ValueError, match="unique"):
        compute_multilabel_metrics(np.zeros((1, 2)), np.zeros((1, 2)), label_names=["a", "a"], train_counts=[1, 1])
