"""TailTuner on multi-label data: 2-D indicator ``y`` or label lists in, a 2-D indicator matrix out, as
scikit-learn's multi-label estimators take and give them."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import LABEL_SETS, label_sets
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.preprocessing import MultiLabelBinarizer

from tailtune.classifier import TailTuner
from tailtune.task import MultiLabel

DATA = label_sets(LABEL_SETS, seed=0)
SETS_OF_TEXTS = [list(row) for row in DATA.labels]


def _tuner(tiny_model: str) -> TailTuner:
    return TailTuner(tiny_model, "vanilla", epochs=1, min_steps=0, max_length=16, eval_fraction=0,
                     show_progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def fitted_on_lists(tiny_model) -> TailTuner:
    return _tuner(tiny_model).fit(DATA.texts, SETS_OF_TEXTS)


def test_label_lists_in_indicator_matrix_out(fitted_on_lists):
    assert isinstance(fitted_on_lists.task, MultiLabel)
    assert list(fitted_on_lists.classes_) == ["money", "sport", "tech"]
    predicted = fitted_on_lists.predict(DATA.texts[:7])
    assert predicted.shape == (7, 3) and set(np.unique(predicted)) <= {0, 1}
    probabilities = fitted_on_lists.predict_proba(DATA.texts[:7])
    np.testing.assert_array_equal(predicted, (probabilities > 0.5).astype(int))


def test_score_is_macro_f1_of_the_label_sets(fitted_on_lists):
    from sklearn.metrics import f1_score

    truth = MultiLabelBinarizer(classes=["money", "sport", "tech"]).fit_transform(SETS_OF_TEXTS)
    expected = f1_score(truth, fitted_on_lists.predict(DATA.texts), average="macro", zero_division=0)
    assert fitted_on_lists.score(DATA.texts, SETS_OF_TEXTS) == pytest.approx(expected)


def test_indicator_matrix_gives_integer_classes(tiny_model):
    y = MultiLabelBinarizer(classes=["money", "sport", "tech"]).fit_transform(SETS_OF_TEXTS)
    tuner = _tuner(tiny_model).fit(DATA.texts, y)
    assert list(tuner.classes_) == [0, 1, 2]
    assert tuner.predict(DATA.texts[:4]).shape == (4, 3)


def test_pickle_and_save_load_keep_the_label_sets(fitted_on_lists, tmp_path):
    again = pickle.loads(pickle.dumps(fitted_on_lists))
    np.testing.assert_array_equal(again.predict(DATA.texts), fitted_on_lists.predict(DATA.texts))
    loaded = TailTuner.load(fitted_on_lists.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.predict(DATA.texts), fitted_on_lists.predict(DATA.texts))
    assert list(loaded.classes_) == ["money", "sport", "tech"]


def test_cross_val_predict_gives_an_indicator_matrix(tiny_model):
    y = MultiLabelBinarizer(classes=["money", "sport", "tech"]).fit_transform(SETS_OF_TEXTS)
    predicted = cross_val_predict(_tuner(tiny_model), np.array(DATA.texts, dtype=object), y,
                                  cv=KFold(2, shuffle=True, random_state=0))  # fmt: skip
    assert predicted.shape == y.shape


def test_score_takes_the_indicator_matrix_predict_gives(fitted_on_lists):
    y = MultiLabelBinarizer(classes=["money", "sport", "tech"]).fit_transform(SETS_OF_TEXTS)
    assert fitted_on_lists.score(DATA.texts, y) == pytest.approx(fitted_on_lists.score(DATA.texts, SETS_OF_TEXTS))
    assert 0.0 <= fitted_on_lists.score(DATA.texts, [row[0] if row else "sport" for row in SETS_OF_TEXTS]) <= 1.0


def test_label_arrays_per_text_read_as_label_sets():
    """A Series of arrays (as a Parquet list column reads) is one label set per text, as lists are."""
    import pandas as pd

    from tailtune.data.given import are_label_sets

    assert are_label_sets(pd.Series([np.array(["grain", "wheat"]), np.array([], dtype=object)]))
    assert are_label_sets([{"grain"}, ("earn",)]) and not are_label_sets(["grain", "earn"])


def test_an_indicator_column_no_text_marks_keeps_its_place(tiny_model, tmp_path):
    """As scikit-learn's one-vs-rest classifiers: a column of zeros is no model's label, yet stays among classes_,
    predicted 0 everywhere, so predict, score and cross_val_predict keep the width of y; the saved model holds the
    labels it learned."""
    y = MultiLabelBinarizer(classes=["money", "sport", "tech"]).fit_transform(SETS_OF_TEXTS)
    with_empty = np.hstack([np.zeros((len(y), 1), dtype=int), y])
    tuner = _tuner(tiny_model).fit(DATA.texts, with_empty)
    assert list(tuner.classes_) == [0, 1, 2, 3]
    predicted, probabilities = tuner.predict(DATA.texts), tuner.predict_proba(DATA.texts)
    assert predicted.shape == with_empty.shape and not predicted[:, 0].any() and not probabilities[:, 0].any()
    plain = _tuner(tiny_model).fit(DATA.texts, y)
    np.testing.assert_array_equal(predicted[:, 1:], plain.predict(DATA.texts))
    assert tuner.score(DATA.texts, with_empty) == pytest.approx(plain.score(DATA.texts, y))
    assert list(TailTuner.load(tuner.save(tmp_path / "model")).classes_) == [1, 2, 3]


def test_an_indicator_frame_keeps_its_column_order():
    """A DataFrame's columns, in their order, are classes_; predict's columns line up with them (tfidf)."""
    import pandas as pd

    frame = pd.DataFrame(MultiLabelBinarizer(classes=["tech", "money", "sport"]).fit_transform(SETS_OF_TEXTS),
                         columns=["tech", "money", "sport"])  # fmt: skip
    tuner = TailTuner(strategy="tfidf", show_progress=False).fit(DATA.texts, frame)
    assert list(tuner.classes_) == ["tech", "money", "sport"]
    lists = TailTuner(strategy="tfidf", show_progress=False).fit(DATA.texts, SETS_OF_TEXTS)
    np.testing.assert_array_equal(tuner.predict(DATA.texts), lists.predict(DATA.texts)[:, [2, 0, 1]])


def test_cross_val_predict_over_folds_that_lack_a_rare_label():
    """A label on two texts is absent from the training part of some folds: every fold still predicts every column."""
    y = MultiLabelBinarizer(classes=["money", "sport", "tech"]).fit_transform(SETS_OF_TEXTS)
    rare = np.zeros((len(y), 1), dtype=int)
    rare[[0, 1]] = 1
    y = np.hstack([y, rare])
    predicted = cross_val_predict(TailTuner(strategy="tfidf", show_progress=False), np.array(DATA.texts, dtype=object),
                                  y, cv=KFold(3))  # fmt: skip
    assert predicted.shape == y.shape


@pytest.mark.parametrize(("rows", "message"), [
    ([[1, "money"], ["sport"]], "data row 1 has 1, an integer, data row 1 has 'money', a string"),
    ([["money"], [1.5]], "data row 2 has the label 1.5, not a whole number"),
])  # fmt: skip
def test_lists_of_labels_of_several_kinds_or_not_whole_are_refused(rows, message):
    """Names inside lists are checked as one label a text is (both were read as names: '1', '1.5')."""
    from tailtune.errors import TailTuneError

    with pytest.raises(TailTuneError, match=message):
        TailTuner(strategy="tfidf").fit(["a b", "c d"], rows)
