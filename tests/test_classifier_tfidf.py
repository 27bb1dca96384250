"""TailTuner with strategy tfidf: the TF-IDF model `tailtune train --strategy tfidf` fits, as an estimator."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import LABEL_SETS, label_sets, make_texts
from sklearn.metrics import f1_score
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import MultiLabelBinarizer

from tailtune.classifier import TailTuner
from tailtune.errors import TailTuneError
from tailtune.models.tfidf import TfidfModel
from tailtune.models.tfidf_multilabel import TfidfMultiLabelModel

TEXTS, LABELS = make_texts({"sport": 30, "money": 20, "tech": 10}, seed=0)


def test_one_label_a_text_as_an_estimator(tmp_path):
    clf = TailTuner(strategy="tfidf", seed=1).fit(TEXTS, LABELS)
    assert list(clf.classes_) == ["money", "sport", "tech"] and isinstance(clf.classic_, TfidfModel)
    predicted = clf.predict(TEXTS)
    assert clf.score(TEXTS, LABELS) == pytest.approx(f1_score(LABELS, predicted, average="macro"))
    assert (clf.predict_proba(TEXTS).argmax(axis=1) == [list(clf.classes_).index(p) for p in predicted]).all()
    assert (pickle.loads(pickle.dumps(clf)).predict(TEXTS) == predicted).all()
    assert len(cross_val_predict(TailTuner(strategy="tfidf"), np.array(TEXTS, dtype=object), LABELS, cv=3)) == 60
    # Saved, it is the folder `train` writes: TailTuner.load gives the TF-IDF model, predicting the same; saving
    # again replaces it.
    clf.save(tmp_path / "m")
    clf.save(tmp_path / "m")
    assert (TailTuner.load(tmp_path / "m").predict(TEXTS) == predicted).all()
    assert clf.decisions_["cost"]["plan"]["family"] == "tfidf" and clf.decisions_["cost"]["actual_s"] > 0


def test_integer_labels_come_back_as_integers():
    numbers = [{"money": 0, "sport": 1, "tech": 2}[label] for label in LABELS]
    clf = TailTuner(strategy="tfidf").fit(TEXTS, numbers)
    assert clf.classes_.dtype.kind == "i" and set(clf.predict(TEXTS)) <= {0, 1, 2}


def test_label_sets_as_lists_or_an_indicator_matrix():
    data = label_sets(LABEL_SETS, seed=0)
    lists = [list(row) for row in data.labels]
    on_lists = TailTuner(strategy="tfidf").fit(data.texts, lists)
    assert isinstance(on_lists.classic_, TfidfMultiLabelModel) and list(on_lists.classes_) == ["money", "sport", "tech"]
    indicator = MultiLabelBinarizer(classes=["money", "sport", "tech"]).fit_transform(lists)
    on_matrix = TailTuner(strategy="tfidf").fit(data.texts, indicator)
    assert list(on_matrix.classes_) == [0, 1, 2]
    predicted = on_lists.predict(data.texts)
    assert predicted.shape == indicator.shape and (on_matrix.predict(data.texts) == predicted).all()
    assert (predicted == (on_lists.predict_proba(data.texts) > 0.5)).all()
    assert on_lists.score(data.texts, lists) == pytest.approx(on_lists.score(data.texts, indicator))


@pytest.mark.parametrize(("given", "setting"), [({"model": "builtin:minilm"}, "model"), ({"lr": 1e-3}, "lr")])
def test_what_a_tfidf_model_does_not_use_is_refused(given, setting):
    with pytest.raises(TailTuneError, match=f"^{setting} does not apply to strategy 'tfidf'"):
        TailTuner(strategy="tfidf", **given).fit(TEXTS, LABELS)
