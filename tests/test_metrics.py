from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

from tailtune.cli.common import metrics_table
from tailtune.errors import TailTuneError
from tailtune.metrics import compute_metrics, frequency_groups, score_predictions, softmax

NAMES = ["a", "b", "c", "d", "e"]
TRAIN_COUNTS = [40, 30, 10, 5, 2]
# Class "e" (4) is in training but absent from both y_true and y_pred.
Y_TRUE = [0, 0, 0, 0, 1, 1, 2, 2, 3]
Y_PRED = [0, 0, 0, 1, 1, 0, 2, 3, 3]


def _metrics() -> dict:
    return compute_metrics(Y_TRUE, Y_PRED, label_names=NAMES, train_counts=TRAIN_COUNTS)


def test_per_class_by_hand() -> None:
    # a: TP 3, FP 1 (example 5), FN 1 (example 3) -> P 3/4, R 3/4, F1 3/4.
    # b: TP 1, FP 1 (example 3), FN 1 (example 5) -> P 1/2, R 1/2, F1 1/2.
    # c: TP 1, FP 0, FN 1 (example 7)             -> P 1,   R 1/2, F1 2/3.
    # d: TP 1, FP 1 (example 7), FN 0             -> P 1/2, R 1,   F1 2/3.
    # e: nothing predicted, nothing true          -> not measured: None, not 0.
    expected = {
        "a": (0.75, 0.75, 0.75, 4, 40),
        "b": (0.5, 0.5, 0.5, 2, 30),
        "c": (1.0, 0.5, 2 / 3, 2, 10),
        "d": (0.5, 1.0, 2 / 3, 1, 5),
        "e": (None, None, None, 0, 2),
    }
    per_class = _metrics()["per_class"]
    assert list(per_class) == NAMES
    for name, (p, r, f1, support, train_count) in expected.items():
        row = per_class[name]
        for key, value in (("precision", p), ("recall", r), ("f1", f1)):
            assert row[key] == (None if value is None else pytest.approx(value))
        assert row["support"] == support
        assert row["train_count"] == train_count


def test_summary_by_hand() -> None:
    m = _metrics()
    assert m["n_examples"] == 9
    assert m["accuracy"] == pytest.approx(6 / 9)  # examples 0, 1, 2, 4, 6, 8 are right
    assert m["micro_f1"] == pytest.approx(6 / 9)
    # Macro over the four classes in y_true or y_pred, as scikit-learn's default: "e" has no score to average.
    assert m["macro_f1"] == pytest.approx((0.75 + 0.5 + 2 / 3 + 2 / 3) / 4)
    assert m["absent_classes"] == ["e"]
    assert m["weighted_f1"] == pytest.approx((4 * 0.75 + 2 * 0.5 + 2 * 2 / 3 + 1 * 2 / 3) / 9)
    # Mean recall over the four classes present in y_true.
    assert m["balanced_accuracy"] == pytest.approx((0.75 + 0.5 + 0.5 + 1.0) / 4)


def test_groups_and_group_f1() -> None:
    m = _metrics()
    # K = 5 -> head 2, medium 1, tail 2.
    assert m["groups"] == {"head": ["a", "b"], "medium": ["c"], "tail": ["d", "e"]}
    assert m["head_f1"] == pytest.approx((0.75 + 0.5) / 2)
    assert m["medium_f1"] == pytest.approx(2 / 3)
    assert m["tail_f1"] == pytest.approx(2 / 3)  # "e" is not measured, so the tail is "d" alone


def test_confusion_matrix() -> None:
    assert _metrics()["confusion_matrix"] == {
        "labels": NAMES,
        "matrix": [
            [3, 1, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [0, 0, 1, 1, 0],
            [0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0],
        ],
    }


def test_keys_and_plain_python_types() -> None:
    m = _metrics()
    assert set(m) == {
        "accuracy",
        "log_loss",
        "micro_f1",
        "macro_f1",
        "weighted_f1",
        "balanced_accuracy",
        "n_examples",
        "head_f1",
        "medium_f1",
        "tail_f1",
        "groups",
        "absent_classes",
        "per_class",
        "confusion_matrix",
    }
    assert json.loads(json.dumps(m)) == m
    for key in ("accuracy", "macro_f1", "head_f1", "balanced_accuracy"):
        assert type(m[key]) is float
    assert type(m["n_examples"]) is int
    assert type(m["per_class"]["a"]["support"]) is int
    assert type(m["confusion_matrix"]["matrix"][0][0]) is int


def test_classes_missing_from_the_test_data_are_absent_not_zero() -> None:
    """Two of six classes in the test data, every prediction right: a perfect score, the others unscored."""
    names = ["a", "b", "c", "d", "e", "f"]
    m = compute_metrics([0, 0, 1, 1, 1], [0, 0, 1, 1, 1], label_names=names, train_counts=[60, 50, 40, 30, 20, 10])
    assert m["accuracy"] == m["macro_f1"] == m["weighted_f1"] == m["balanced_accuracy"] == 1.0
    assert m["head_f1"] == 1.0
    assert m["medium_f1"] is None and m["tail_f1"] is None  # no medium or tail class: not measured
    assert m["absent_classes"] == ["c", "d", "e", "f"]
    for name in "cdef":
        assert m["per_class"][name] == {"precision": None, "recall": None, "f1": None, "support": 0,
                                        "train_count": m["per_class"][name]["train_count"]}  # fmt: skip
    table = metrics_table({**m, "split": "test.csv"})
    assert "macro-F1 1.0000" in table and "tail F1 not measured" in table
    row = next(line for line in table.splitlines() if line.startswith("f "))
    assert row.split()[-3:] == ["-", "-", "-"]
    assert "4 class(es) with no example here and no prediction" in table and "c, d, e, f" in table


def test_a_class_predicted_but_never_true_counts_as_zero() -> None:
    """As in scikit-learn: a wrong prediction of a class the data lacks is scored, with F1 0."""
    m = compute_metrics([0, 0, 1], [0, 0, 2], label_names=["a", "b", "c"], train_counts=[9, 5, 1])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "train_count": 1}
    assert m["macro_f1"] == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    assert m["tail_f1"] == 0.0 and m["absent_classes"] == []


def test_validation_score_leaves_out_classes_only_predicted() -> None:
    """Epoch selection averages over the classes validation holds (see score_predictions for why)."""
    assert score_predictions("macro_f1", [0, 0, 1], [0, 0, 2]) == pytest.approx((1.0 + 0.0) / 2)
    assert score_predictions("macro_f1", [0, 1, 1], [0, 1, 1]) == 1.0


def _cases(k: int) -> st.SearchStrategy:
    """K classes and 1-40 (true, predicted) pairs of class ids."""
    pair = st.tuples(st.integers(0, k - 1), st.integers(0, k - 1))
    return st.lists(pair, min_size=1, max_size=40).map(lambda pairs: (k, pairs))


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 8).flatmap(_cases))
def test_overall_scores_agree_with_scikit_learn(case) -> None:
    """macro/micro/weighted F1, balanced accuracy and accuracy equal scikit-learn's defaults (no labels=)."""
    k, pairs = case
    y_true, y_pred = [t for t, _ in pairs], [p for _, p in pairs]
    m = compute_metrics(y_true, y_pred, label_names=[f"c{i}" for i in range(k)], train_counts=list(range(k, 0, -1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-defined precision/recall and classes only predicted warn
        expected = {
            "macro_f1": f1_score(y_true, y_pred, average="macro"),
            "micro_f1": f1_score(y_true, y_pred, average="micro"),
            "weighted_f1": f1_score(y_true, y_pred, average="weighted"),
            "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
            "accuracy": accuracy_score(y_true, y_pred),
        }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-12), key
    seen = set(y_true) | set(y_pred)
    for c in range(k):
        assert (m["per_class"][f"c{c}"]["f1"] is None) == (c not in seen)
    for group, names in m["groups"].items():
        scored = [m["per_class"][n]["f1"] for n in names if m["per_class"][n]["f1"] is not None]
        assert m[f"{group}_f1"] == (pytest.approx(np.mean(scored)) if scored else None)


def test_two_classes_leave_medium_empty() -> None:
    m = compute_metrics([0, 1, 1], [0, 1, 0], label_names=["pos", "neg"], train_counts=[3, 9])
    assert m["groups"] == {"head": ["neg"], "medium": [], "tail": ["pos"]}
    assert m["medium_f1"] is None
    assert m["head_f1"] == pytest.approx(2 / 3)  # neg: P 1, R 1/2
    assert m["tail_f1"] == pytest.approx(2 / 3)  # pos: P 1/2, R 1


@pytest.mark.parametrize(
    ("k", "sizes"),
    [
        (1, (1, 0, 0)),
        (2, (1, 0, 1)),
        (3, (1, 1, 1)),
        (4, (2, 1, 1)),
        (5, (2, 1, 2)),
        (6, (2, 2, 2)),
        (7, (3, 2, 2)),
        (8, (3, 2, 3)),
    ],
)
def test_group_sizes(k: int, sizes: tuple[int, int, int]) -> None:
    groups = frequency_groups(list(range(k, 0, -1)))
    assert tuple(len(groups[g]) for g in ("head", "medium", "tail")) == sizes
    assert sorted(groups["head"] + groups["medium"] + groups["tail"]) == list(range(k))


def test_groups_sort_by_count_then_class_id() -> None:
    # Order by count: 1 (100), 3 (50), 2 (10), 0 (1).
    assert frequency_groups([1, 100, 10, 50]) == {"head": [1, 3], "medium": [2], "tail": [0]}
    # Ties go to the lower class id first.
    assert frequency_groups([5, 5, 5]) == {"head": [0], "medium": [1], "tail": [2]}
    assert frequency_groups([7]) == {"head": [0], "medium": [], "tail": []}


def test_bad_inputs() -> None:
    with pytest.raises(TailTuneError, match="no examples"):
        compute_metrics([], [], label_names=NAMES, train_counts=TRAIN_COUNTS)
    with pytest.raises(ValueError, match="outside"):
        compute_metrics([0, 5], [0, 1], label_names=NAMES, train_counts=TRAIN_COUNTS)
    with pytest.raises(ValueError, match="equal length"):
        compute_metrics([0, 1], [0], label_names=NAMES, train_counts=TRAIN_COUNTS)
    with pytest.raises(TailTuneError):
        frequency_groups([])


def test_softmax_rows_sum_to_one_and_survive_large_logits() -> None:
    logits = np.array([[0.0, 0.0], [1000.0, 0.0], [1.0, 2.0]])
    probs = softmax(logits)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert probs[0].tolist() == [0.5, 0.5]
    assert probs[1] == pytest.approx([1.0, 0.0])
    assert probs[2] == pytest.approx([1 / (1 + np.e), np.e / (1 + np.e)])


def test_log_loss_is_scikit_learns_over_all_classes():
    """Given probabilities, the log loss is scikit-learn's over every class, a float32 softmax included."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=40)  # class 3 never true: still a column of the loss
    metrics = compute_metrics(y, logits.argmax(axis=1), label_names=list("abcd"), train_counts=[5, 4, 3, 2],
                              probabilities=softmax(logits))  # fmt: skip
    assert metrics["log_loss"] == pytest.approx(log_loss(y, softmax(logits.astype(np.float64)), labels=range(4)))
    assert compute_metrics(y, y, label_names=list("abcd"), train_counts=[5, 4, 3, 2])["log_loss"] is None
