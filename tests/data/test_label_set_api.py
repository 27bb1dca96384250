"""Label sets in memory: the dataset and label map API for multi-label data, the checks of a run's splits, label
sets and 0/1 indicator matrices given to the Python API, and the properties that tie them together (what is
saved reads back; an indicator matrix and its label sets are one dataset)."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailtune.data.fingerprint import fingerprint
from tailtune.data.imbalance import class_counts, holdout_then_long_tail
from tailtune.data.label_sets import describe_label_sets
from tailtune.data.readers import read_dataset, save_dataset
from tailtune.data.types import LabelMap, Splits, TextDataset, check_label_sets, check_labels
from tailtune.data.values import dataset_from_values
from tailtune.data.visible import is_empty_text, normal_label
from tailtune.errors import TailTuneError


def _sets(labels: list[tuple[str, ...]], source: str = "mem") -> TextDataset:
    return TextDataset([f"t{i}" for i in range(len(labels))], labels, source)


# ------------------------------------------------------------------------------------- dataset, label map


def test_a_dataset_of_label_sets_is_multi_label_and_subsets_keep_them():
    ds = _sets([("a", "b"), (), ("b",)])
    assert ds.multi_label
    assert ds.subset([2, 1]).labels == [("b",), ()] and ds.subset([2, 1]).multi_label
    with pytest.raises(ValueError, match="mix single names and tuples"):
        TextDataset(["x", "y"], ["a", ("b",)], "mem")


def test_label_map_of_label_sets_orders_names_as_single_labels_are():
    assert LabelMap.from_label_sets([("b", "a"), (), ("c",)]).labels == ["a", "b", "c"]
    assert LabelMap.from_label_sets([("10",), ("2", "1")]).labels == ["1", "2", "10"]
    assert LabelMap.from_label_sets([]).labels == []


def test_encode_sets_is_a_float32_indicator_matrix():
    label_map = LabelMap(["a", "b", "c"])
    y = label_map.encode_sets([("a", "c"), (), ("b",)], source="mem")
    assert y.dtype == np.float32 and y.shape == (3, 3)
    assert y.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert label_map.encode_sets([], source="mem").shape == (0, 3)
    # Names match in their normal form, as encode() matches them.
    assert label_map.encode_sets([("b\u200b",)], source="mem").tolist() == [[0, 1, 0]]


def test_encode_sets_refuses_unknown_names_as_encode_does():
    label_map = LabelMap(["a", "b"])
    with pytest.raises(TailTuneError) as single:
        label_map.encode(["z", "a", "y"], source="eval.jsonl")
    with pytest.raises(TailTuneError) as sets:
        label_map.encode_sets([("a", "z"), (), ("y",)], source="eval.jsonl")
    assert (
        str(sets.value)
        == str(single.value)
        == (
            "eval.jsonl: label(s) 'y', 'z' never seen in training; the model knows 'a', 'b' - relabel those rows or "
            "retrain with them"
        )
    )


def test_counts_of_label_sets_are_texts_carrying_each_label():
    label_map = LabelMap(["a", "b", "c"])
    assert label_map.counts(_sets([("a", "b"), (), ("b",), ("b", "c")])) == [1, 3, 1]
    assert label_map.counts(TextDataset(["x", "y"], ["c", "c"], "mem")) == [0, 0, 2]


def test_class_counts_and_the_description_count_each_label_and_the_texts_without_one():
    labels = [("a", "b"), (), ("b",), ()]
    assert class_counts(labels) == {"b": 2, "a": 1}
    assert class_counts(["x", "y", "x"]) == {"x": 2, "y": 1}
    assert describe_label_sets(labels) == {"texts": 4, "labels": 2, "texts_without_label": 2,
                                           "labels_per_text": 0.75, "most_labels": 2}  # fmt: skip


def test_fingerprints_tell_label_sets_from_single_labels():
    joined = TextDataset(["t"], ["('a', 'b')"], "mem")
    assert fingerprint(_sets([("a", "b")])) != fingerprint(joined)
    assert fingerprint(_sets([("a", "b"), ()])) != fingerprint(_sets([("a",), ("b",)]))
    assert fingerprint(_sets([("a", "b")])) == fingerprint(_sets([("a", "b")], source="elsewhere"))


def test_an_imbalanced_split_is_not_made_from_label_sets():
    with pytest.raises(TailTuneError, match="mem: has label sets; an imbalanced split needs one label a text"):
        holdout_then_long_tail(_sets([("a",), ("b",)]), ratio=10, test_per_class=1, seed=0)


# -------------------------------------------------------------------------------------- a run's splits


def test_check_label_sets_maps_the_training_names_and_checks_eval_and_test():
    train, test = _sets([("a", "b"), (), ("c",)], "train"), _sets([("c",), ()], "test")
    assert check_label_sets(Splits(train, test=test)).labels == ["a", "b", "c"]
    with pytest.raises(TailTuneError, match=r"^eval: label\(s\) 'z' never seen in training"):
        check_label_sets(Splits(train, eval=_sets([("z", "a")], "eval")))


def test_check_label_sets_refuses_what_cannot_be_trained():
    with pytest.raises(TailTuneError, match="^train: training data needs labels$"):
        check_label_sets(Splits(TextDataset(["x"], None, "train")))
    with pytest.raises(TailTuneError, match="^train: only the label 'a'; a multi-label classifier needs at least two"):
        check_label_sets(Splits(_sets([("a",), ()], "train")))
    with pytest.raises(TailTuneError, match=r"train a single-label classifier on two \(label each text 'a' or"):
        check_label_sets(Splits(_sets([("a",), ()], "train")))
    with pytest.raises(TailTuneError, match="^train: no label on any text; a multi-label classifier needs at least"):
        check_label_sets(Splits(_sets([(), ()], "train")))
    with pytest.raises(TailTuneError, match="^train: the labels are one name a text, not label sets; store them as "):
        check_label_sets(Splits(TextDataset(["x", "y"], ["a", "b"], "train")))


def test_splits_of_one_run_have_one_shape():
    sets, single = _sets([("a",), ("b",)], "train.jsonl"), TextDataset(["x", "y"], ["a", "b"], "eval.csv")
    message = (r"^eval\.csv: has one label a text \(single-label\) while train\.jsonl has label sets \(multi-label\); "
               "read every split of a run the same way")  # fmt: skip
    with pytest.raises(TailTuneError, match=message):
        check_label_sets(Splits(sets, eval=single))
    with pytest.raises(TailTuneError, match=message):
        check_labels(Splits(sets, eval=single))
    with pytest.raises(TailTuneError, match=r"^test: has label sets \(multi-label\) while train has one label a text"):
        check_labels(Splits(TextDataset(["x", "y"], ["a", "b"], "train"), test=_sets([("a",)], "test")))
    with pytest.raises(TailTuneError, match="^train.jsonl: the labels are label sets .*; train a multi-label task"):
        check_labels(Splits(sets))
    # Unlabelled test data has no shape to compare.
    assert check_label_sets(Splits(sets, test=TextDataset(["z"], None, "test"))).labels == ["a", "b"]


# -------------------------------------------------------------------------------------------- Python API


def test_label_sets_given_as_lists_tuples_and_sets():
    ds = dataset_from_values(["a", "b", "c"], [["y", "x", "x"], (), {"z", 1}], source="fit()")
    assert ds.multi_label and ds.labels == [("x", "y"), (), ("1", "z")]
    rows = np.empty(2, dtype=object)
    rows[:] = [["p"], []]
    assert dataset_from_values(["a", "b"], rows, source="fit()").labels == [("p",), ()]


def test_joined_labels_in_memory_are_refused_or_split_on_the_separator():
    labels = ["grain", "grain|wheat", "wheat"]
    with pytest.raises(TailTuneError, match=r"^fit\(\): data row 2 has the label 'grain\|wheat' in column 'labels'"):
        dataset_from_values(["x", "y", "z"], labels, source="fit()")
    split = dataset_from_values(["x", "y", "z"], labels, source="fit()", label_separator="|")
    assert split.labels == [("grain",), ("grain", "wheat"), ("wheat",)]


def test_indicator_matrices_in_every_form_give_the_same_label_sets():
    dense = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    want = [("a", "c"), (), ("b",)]
    names = ["a", "b", "c"]
    for matrix in (dense, dense.astype(bool), dense.astype(float), scipy.sparse.csr_matrix(dense)):
        assert dataset_from_values(["x", "y", "z"], matrix, source="fit()", label_names=names).labels == want
    frame = pd.DataFrame(dense, columns=names)
    assert dataset_from_values(["x", "y", "z"], frame, source="fit()").labels == want
    assert dataset_from_values(["x", "y", "z"], dense.tolist(), source="fit()", indicator=True).labels == [
        ("0", "2"), (), ("1",)]  # fmt: skip
    assert dataset_from_values(["x", "y", "z"], dense.tolist(), source="fit()", label_names=names).labels == want


def test_a_list_of_lists_is_label_sets_unless_an_indicator_is_asked_for(caplog):
    rows = [[0, 1], [1, 1]]
    with caplog.at_level(logging.WARNING):
        assert dataset_from_values(["x", "y"], rows, source="fit()").labels == [("0", "1"), ("1",)]
    # scikit-learn would read these rows as an indicator matrix: the reading is said, with the way to the other.
    assert "lists of 0s and 1s of one length, read as label names" in caplog.text and "np.asarray(y)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert dataset_from_values(["x", "y"], rows, source="fit()", indicator=True).labels == [("1",), ("0", "1")]
        dataset_from_values(["x", "y"], [[0, 1], [1]], source="fit()")  # rows of two lengths: label sets only
        dataset_from_values(["x", "y"], [["a", "b"], ["b", "a"]], source="fit()")
    assert caplog.text == ""
    names = np.array([["a", "b"], ["c", "d"]])
    assert dataset_from_values(["x", "y"], names, source="fit()", indicator=False).labels == [("a", "b"), ("c", "d")]


def test_sklearn_multilabel_binarizer_round_trips():
    from sklearn.preprocessing import MultiLabelBinarizer

    sets = [("grain", "wheat"), (), ("earn",)]
    binarizer = MultiLabelBinarizer()
    matrix = binarizer.fit_transform(sets)
    ds = dataset_from_values(["x", "y", "z"], matrix, source="fit()", label_names=binarizer.classes_)
    assert ds.labels == sets


@pytest.mark.parametrize(
    ("labels", "kwargs", "message"),
    [
        (
            [[1, 0], [0, 1, 1]],
            {"indicator": True},
            r"^fit\(\): row 2 of the indicator labels has 3 values where row 1 has 2; give every row one 0 or 1",
        ),
        (
            np.array([[1, 0], [0, 1]]),
            {"label_names": ["a", "b", "c"]},
            r"^fit\(\): row 1 of the indicator labels has 2 values where label_names names 3; give every row",
        ),
        (
            np.array([[1, 0], [0.5, 1]]),
            {},
            r"^fit\(\): row 2 of the indicator labels holds 0\.5 for label '0'; an indicator matrix holds only 0 and 1",
        ),
        (np.array([[1, 0], [0, np.nan]]), {}, r"row 2 of the indicator labels holds nan for label '1'"),
        ([[1, 0], [2, 1]], {"indicator": True}, r"row 2 of the indicator labels holds 2 for label '0'"),
        ([[1, "1"], [0, 1]], {"indicator": True}, r"row 1 of the indicator labels holds '1' for label '1'"),
        (
            np.array([[1, 0], [0, 1]]),
            {"label_names": ["a", "a\u200b"]},
            r"^fit\(\): label_names names 'a' more than once; name each column once$",
        ),
        (np.array([[1, 0], [0, 1]]), {"label_names": ["a", " "]}, r"^fit\(\): label_names\[1\] is ' ', not a label"),
        (
            ["a", "b"],
            {"label_names": ["a", "b"]},
            r"^fit\(\): row 1 of the labels holds a str, not a row of an indicator matrix \(one 0 or 1 for each "
            r"label\); give one label per text without label_names and indicator$",
        ),
        (
            [["a"], ["b"]],
            {"label_names": ["a"], "indicator": False},
            r"^fit\(\): label_names names the columns of an indicator matrix; drop it with indicator=False$",
        ),
        (np.array([1, 0]), {"indicator": True}, r"^fit\(\): an indicator matrix of labels must be two-dimensional"),
        (["a", ["b"]], {}, r"^fit\(\): data row 2 has a list of labels in column 'labels' while data row 1 has a "),
        ([["a"], [None]], {}, r"^fit\(\): data row 2 has a null inside its list of labels"),
    ],
)
def test_the_python_api_refuses_ambiguous_or_broken_labels(labels, kwargs, message):
    with pytest.raises(TailTuneError, match=message):
        dataset_from_values(["x", "y"], labels, source="fit()", **kwargs)


def test_an_indicator_column_marking_no_text_is_warned_of(caplog):
    with caplog.at_level(logging.WARNING):
        ds = dataset_from_values(["x", "y"], np.array([[1, 0], [1, 0]]), source="fit()", label_names=["a", "b"])
    assert ds.labels == [("a",), ("a",)]
    assert "fit(): label(s) 'b' mark no text" in caplog.text


# ------------------------------------------------------------------------------------------- properties

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEPARATORS = ("|", ";", ",", " / ")
# Names that read back as written: in their normal form, not a whole decimal ("1.0" reads as "1").
names = (
    st.text(min_size=1, max_size=5).map(normal_label).filter(lambda y: y and not re.fullmatch(r"[+-]?[0-9]+\.0+", y))
)
texts = st.text(min_size=1, max_size=12).filter(lambda t: not is_empty_text(t) and "\x00" not in t)
label_sets = st.frozensets(names, max_size=3).map(lambda s: tuple(sorted(s)))


@PROPERTY
@given(
    rows=st.lists(st.tuples(texts, label_sets), min_size=1, max_size=6),
    suffix=st.sampled_from((".csv", ".tsv", ".jsonl", ".parquet")),
    separator=st.sampled_from(SEPARATORS),
)
def test_saved_label_sets_read_back_the_same(rows, suffix, separator):
    data = TextDataset([t for t, _ in rows], [y for _, y in rows], "mem")
    joined = suffix in (".csv", ".tsv") and any(separator.strip() in n for _, y in rows for n in y)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        if joined:
            with pytest.raises(TailTuneError, match="pick another label_separator"):
                save_dataset(data, path, label_separator=separator.strip())
            return
        save_dataset(data, path, label_separator=separator.strip())
        back = read_dataset(path, label_separator=separator.strip())
    assert back.texts == data.texts
    assert back.labels == data.labels
    assert dataset_from_values(data.texts, [list(y) for y in data.labels], source="mem").labels == data.labels


@PROPERTY
@given(st.lists(label_sets, min_size=1, max_size=8))
def test_an_indicator_matrix_and_its_label_sets_are_one_dataset(rows):
    label_map = LabelMap.from_label_sets(rows)
    texts = [f"t{i}" for i in range(len(rows))]
    matrix = label_map.encode_sets(rows, source="mem")
    from_matrix = dataset_from_values(texts, matrix, source="mem", label_names=label_map.labels)
    assert from_matrix.labels == rows == dataset_from_values(texts, rows, source="mem").labels
    assert label_map.counts(from_matrix) == matrix.sum(axis=0).astype(int).tolist()
