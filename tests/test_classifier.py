"""Tests of TailTuner, the scikit-learn estimator."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import make_texts
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, cross_val_predict, cross_val_score
from sklearn.utils import get_tags

import tailtune.training.fitting as fitting
from tailtune.classifier import TailTuner
from tailtune.errors import TailTuneError
from tailtune.strategies import SETTINGS

LABELS = ["money", "sport", "tech"]


@pytest.fixture(scope="module")
def train_texts() -> tuple[list[str], list[str]]:
    return make_texts({"sport": 16, "tech": 8, "money": 4}, seed=1)


@pytest.fixture(scope="module")
def test_texts() -> list[str]:
    return make_texts({"sport": 3, "tech": 3, "money": 3}, seed=2)[0]


@pytest.fixture(scope="module")
def fitted(tiny_model, train_texts) -> TailTuner:
    """A two-stage TailTuner fitted for one epoch per stage, without a validation split."""
    tuner = TailTuner(tiny_model, "two-stage", epochs=1, lr=[1e-3, 1e-4], batch_size=8, max_length=32,
                      min_steps=0, eval_fraction=0, show_progress=False)  # fmt: skip
    return tuner.fit(*train_texts)


def test_init_stores_arguments_only(monkeypatch):
    """__init__ stores its arguments and loads nothing, even for a missing model or a bad option."""

    def no_loading(*args, **kwargs):
        raise AssertionError("__init__ must not load a model")

    monkeypatch.setattr(fitting, "load_classifier", no_loading)
    tuner = TailTuner("no/such/model", "not-a-strategy", stages=[{"lr": 1.0}], show_progress=False, lr=-1)
    assert tuner.model == "no/such/model"
    assert tuner.strategy == "not-a-strategy"
    assert tuner.stages == [{"lr": 1.0}]
    assert tuner.show_progress is False
    assert tuner.settings() == {"lr": -1}
    assert not [name for name in vars(tuner) if name.endswith("_")]


def test_fit_predict_proba(fitted, test_texts):
    """predict_proba gives rows summing to 1 with columns in classes_ order; predict is their argmax."""
    assert isinstance(fitted.classes_, np.ndarray) and list(fitted.classes_) == LABELS
    probs = fitted.predict_proba(test_texts)
    assert probs.shape == (9, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert (probs > 0).all()
    predicted = fitted.predict(test_texts)
    assert isinstance(predicted, np.ndarray) and predicted.dtype == object
    assert list(predicted) == [LABELS[i] for i in probs.argmax(axis=1)]
    assert fitted.label_map.labels == LABELS


def test_predict_proba_of_no_texts(fitted):
    """predict_proba([]) returns a (0, K) array, as its code intends."""
    assert fitted.predict_proba([]).shape == (0, 3)
    assert fitted.predict([]).shape == (0,) and fitted.predict([]).dtype == object


def test_fit_resolves_config(fitted):
    """Shortcuts go to the stages (one value or one per stage); batch_size and max_length go to the run."""
    config = fitted.config_
    assert [s.lr for s in config.stages] == [1e-3, 1e-4]
    assert [s.epochs for s in config.stages] == [1, 1]
    assert [s.batch_size for s in config.stages] == [None, None]
    assert (config.batch_size, config.max_length, config.strategy) == (8, 32, "two-stage")
    assert [(s.name, s.steps, s.cached) for s in fitted.stages_] == [("stage1", 4, True), ("stage2", 4, False)]


def test_fit_changes_the_model(tiny_model, fitted, test_texts):
    """Training moves predictions away from those of the untrained (fresh-head) model."""
    untrained = TailTuner(tiny_model, "vanilla", epochs=0, max_length=32, show_progress=False)
    untrained.fit(["match goal", "bank shares", "chip phone"], LABELS)
    assert not np.allclose(untrained.predict_proba(test_texts), fitted.predict_proba(test_texts), atol=1e-3)


def test_integer_labels_come_back_as_ints(tiny_model):
    """Integer training labels are predicted as ints; classes_ order is numeric (2 before 10)."""
    texts, names = make_texts({"sport": 4, "tech": 4}, seed=3)
    labels = [10 if name == "sport" else 2 for name in names]
    tuner = TailTuner(tiny_model, "vanilla", epochs=0, max_length=32, show_progress=False).fit(texts, labels)
    assert tuner.classes_.dtype == np.int64 and list(tuner.classes_) == [2, 10]
    predicted = tuner.predict(texts[:3])
    assert predicted.dtype == np.int64 and set(predicted) <= {2, 10}


def test_save_load_round_trip(fitted, test_texts, tmp_path):
    """save() then TailTuner.load() gives the same classes, probabilities and predictions."""
    path = fitted.save(tmp_path / "clf")
    assert (path / "model.safetensors").is_file()
    loaded = TailTuner.load(path)
    assert loaded._max_length() == 32  # the training length, recorded with the model
    assert TailTuner.load(path, max_length=8)._max_length() == 8
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
    np.testing.assert_allclose(loaded.predict_proba(test_texts), fitted.predict_proba(test_texts), atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(test_texts), fitted.predict(test_texts))
    # save() replaces an earlier save in the same folder.
    assert fitted.save(tmp_path / "clf") == tmp_path / "clf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]


def test_save_replaces_only_a_saved_model(fitted, tiny_model, tmp_path, monkeypatch):
    """A folder of the user's, a model tailtune did not save and the current folder are refused and left as they
    were; a new or empty folder is fine."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(TailTuneError) as info:
        fitted.save(mine)
    assert str(info.value) == (f"{mine}: holds files that are not part of a saved model ('notes.txt'); the model "
                               "replaces the whole folder, so write it to a new or empty one")  # fmt: skip
    with pytest.raises(TailTuneError, match="not part of a saved model"):
        fitted.save(tiny_model)  # a checkpoint without tailtune's record
    monkeypatch.chdir(mine)
    with pytest.raises(TailTuneError, match=r"^\.: is the current folder or holds it; name a new folder for the model"):
        fitted.save(".")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    assert (fitted.save(tmp_path / "empty") / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mine"]


@pytest.mark.parametrize(("kind", "dtype"), [(int, np.int64), (bool, np.bool_)])
def test_label_type_survives_save_and_load(tiny_model, tmp_path, kind, dtype):
    """predict() returns labels of the training labels' type (integers, booleans), also after save and load."""
    texts, names = make_texts({"sport": 4, "tech": 4}, seed=3)
    labels = [kind(name == "sport") for name in names]
    tuner = TailTuner(tiny_model, "vanilla", epochs=1, min_steps=0, max_length=32, show_progress=False)
    tuner.fit(texts, labels).save(tmp_path / "clf")
    loaded = TailTuner.load(tmp_path / "clf").predict(texts[:2])
    assert loaded.dtype == dtype
    np.testing.assert_array_equal(loaded, tuner.predict(texts[:2]))


def test_unfitted_errors(tiny_model):
    """predict, predict_proba, save and label_map need fit() or load() first."""
    tuner = TailTuner(tiny_model)
    for call in (lambda: tuner.predict(["a"]), lambda: tuner.predict_proba(["a"]), lambda: tuner.save("x")):
        with pytest.raises(TailTuneError, match=r"not fitted yet: call fit\(\) or TailTuner.load\(\) first"):
            call()
    with pytest.raises(TailTuneError, match="not fitted yet"):
        _ = tuner.label_map


def test_bad_options_fail_at_fit(tiny_model):
    """Unknown run options, bad stage values and a single class are TailTuneErrors raised by fit()."""
    texts, labels = ["match goal", "bank shares"], ["sport", "money"]
    with pytest.raises(TypeError, match="foo"):  # every setting is a named parameter
        TailTuner(tiny_model, foo=1)
    with pytest.raises(TailTuneError, match=r"stage 'stage1': learning rate must be > 0"):
        TailTuner(tiny_model, lr=0).fit(texts, labels)
    with pytest.raises(TailTuneError, match=r"^lr: give one value for every stage or one per stage \(2\), got 3"):
        TailTuner(tiny_model, lr=[1, 2, 3]).fit(texts, labels)
    with pytest.raises(TailTuneError, match=r"fit\(\): only one class \('sport'\)"):
        TailTuner(tiny_model).fit(texts, ["sport", "sport"])
    with pytest.raises(TailTuneError, match=r"unknown strategy 'nope'"):
        TailTuner(tiny_model, "nope").fit(texts, labels)


def test_mismatched_lengths_are_a_tailtune_error(tiny_model):
    """fit() with 3 texts and 2 labels raises the TailTuneError the code intends."""
    with pytest.raises(TailTuneError, match=r"fit\(\): 3 texts but 2 labels"):
        TailTuner(tiny_model).fit(["a", "b", "c"], ["x", "y"])


# ------------------------------------------------------------------------------------------- scikit-learn


def test_every_setting_is_a_parameter():
    """get_params covers every run setting and stage shortcut, so clone and grid searches lose none."""
    params = TailTuner().get_params()
    assert set(params) == {"model", "strategy", "stages", "show_progress", *SETTINGS}
    tuner = TailTuner("m", patience=None, lr=[1e-3, 1e-4], attention_dropout=0.1)
    copy = clone(tuner)
    assert copy.get_params() == tuner.get_params() and copy is not tuner
    assert copy.settings() == {"patience": None, "lr": [1e-3, 1e-4], "attention_dropout": 0.1}
    assert copy.set_params(seed=3, lr=1e-2).settings()["lr"] == 1e-2
    assert pickle.loads(pickle.dumps(TailTuner())).settings() == {}  # "default" survives pickling
    # Every default is the plain string "default" (scikit-learn wants simple defaults); given, it means the same.
    assert TailTuner().get_params()["lr"] == "default" and TailTuner(lr="default", seed=3).settings() == {"seed": 3}


def test_unfitted_is_scikit_learns_not_fitted_error(tiny_model):
    with pytest.raises(NotFittedError):
        TailTuner(tiny_model).predict(["a"])
    with pytest.raises(TailTuneError):
        TailTuner(tiny_model).predict(["a"])


def test_integer_classes_and_score(tiny_model):
    """classes_ keep the labels' type; score is scikit-learn's macro-F1 of the predictions."""
    texts, names = make_texts({"sport": 8, "tech": 6, "money": 4}, seed=7)
    labels = [{"sport": 3, "tech": 1, "money": 2}[name] for name in names]
    tuner = TailTuner(tiny_model, "vanilla", epochs=1, lr=1e-3, max_length=16, batch_size=4, min_steps=0,
                      eval_fraction=0, show_progress=False).fit(texts, labels)  # fmt: skip
    assert list(tuner.classes_) == [1, 2, 3]
    predicted = tuner.predict(texts)
    assert tuner.score(texts, labels) == pytest.approx(f1_score(labels, predicted, average="macro"))
    # Labels are compared by name, as in training: whole floats score as the integers they name.
    assert tuner.score(texts, [float(y) for y in labels]) == tuner.score(texts, labels)


def test_cross_val_score_and_grid_search(tiny_model):
    """The estimator works inside scikit-learn's model selection, over two values of one setting."""
    texts, labels = make_texts({"sport": 8, "tech": 8, "money": 8}, seed=8)
    base = TailTuner(tiny_model, "vanilla", epochs=1, max_length=16, batch_size=8, min_steps=0, eval_fraction=0,
                     calibrate="none", show_progress=False)  # fmt: skip
    scores = cross_val_score(base, texts, labels, cv=2)
    assert len(scores) == 2 and all(0 <= s <= 1 for s in scores)
    search = GridSearchCV(base, {"lr": [1e-4, 1e-2]}, cv=2).fit(texts, labels)
    assert search.best_params_["lr"] in (1e-4, 1e-2)
    np.testing.assert_array_equal(search.best_estimator_.predict(texts[:3]), search.predict(texts[:3]))


def test_builtin_model_name_is_resolved(tiny_model, monkeypatch):
    """TailTuner takes the same builtin:minilm name as the command line."""
    from tailtune.data import builtin

    monkeypatch.setattr(builtin, "minilm_path", lambda: tiny_model)
    texts, labels = make_texts({"sport": 4, "tech": 4}, seed=2)
    tuner = TailTuner("builtin:minilm", "vanilla", epochs=0, max_length=16, show_progress=False).fit(texts, labels)
    assert tuner.config_.model == tiny_model


# ------------------------------------------------------------------------------------------- input validation


def _quick(tiny_model: str, **settings) -> TailTuner:
    """An estimator whose fit only builds the model (no training steps): for input and type checks."""
    return TailTuner(tiny_model, "vanilla", epochs=0, max_length=16, show_progress=False, **settings)


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_a_lone_string_is_refused(fitted, method):
    """predict("one text") is refused, not taken for a list of one-character texts."""
    with pytest.raises(TailTuneError, match=rf"^{method}\(\): texts is a single string; give a list of them"):
        getattr(fitted, method)("match goal")


def test_fit_refuses_a_lone_string(tiny_model):
    with pytest.raises(TailTuneError, match=r"^fit\(\): texts is a single string"):
        _quick(tiny_model).fit("match goal", ["sport"])
    with pytest.raises(TailTuneError, match=r"^fit\(\): labels is a single string"):
        _quick(tiny_model).fit(["match goal", "bank shares"], "sm")


def test_tables_are_refused_as_texts(tiny_model, fitted, train_texts):
    """A DataFrame (even of one column) or a 2-D array is not one text per row: refused naming what to pass."""
    texts, labels = train_texts
    frame = pd.DataFrame({"text": texts, "label": labels})
    with pytest.raises(TailTuneError, match=r"^fit\(\): texts is a DataFrame \(columns 'text', 'label'\); pass"):
        _quick(tiny_model).fit(frame, labels)
    with pytest.raises(TailTuneError, match=r"^predict\(\): texts is a DataFrame \(columns 'text'\)"):
        fitted.predict(frame[["text"]])
    with pytest.raises(TailTuneError, match=r"^predict\(\): texts has shape \(2, 2\); give one value per row"):
        fitted.predict(np.array([["match goal", "x"], ["bank", "y"]]))
    # A 2-D y is a multi-label indicator matrix: a table of texts and labels is not one.
    with pytest.raises(TailTuneError, match=r"^fit\(\): row 1 of the indicator labels holds .* only 0 and 1"):
        _quick(tiny_model).fit(texts, frame)


def test_a_column_vector_of_labels_is_raveled_with_a_warning(tiny_model, train_texts):
    """y of shape [n, 1] (array or one-column DataFrame) trains as y.ravel(), with scikit-learn's warning."""
    texts, labels = train_texts
    for column in (np.array(labels)[:, None], pd.DataFrame({"label": labels})):
        with pytest.warns(DataConversionWarning, match="A column-vector y was passed when a 1d array was expected"):
            tuner = _quick(tiny_model).fit(texts, column)
        assert list(tuner.classes_) == LABELS


def test_none_and_empty_inputs_are_refused(tiny_model, fitted):
    with pytest.raises(TailTuneError, match=r"^fit\(\) requires y to be passed, but the target y is None"):
        _quick(tiny_model).fit(["match goal", "bank shares"], None)
    with pytest.raises(TailTuneError, match=r"^fit\(\): texts is None"):
        _quick(tiny_model).fit(None, ["sport", "money"])
    with pytest.raises(TailTuneError, match=r"^predict\(\): texts is None"):
        fitted.predict(None)
    with pytest.raises(TailTuneError, match=r"^fit\(\): no texts given"):
        _quick(tiny_model).fit([], [])
    with pytest.raises(TailTuneError, match=r"^predict\(\): texts must be a list, .* \(got generator\)"):
        fitted.predict(text for text in ["match goal"])


def test_missing_labels_and_texts_are_refused_naming_the_row(tiny_model, fitted):
    """A NaN or None label is not a class called "nan"; a None, NaN or numeric text is not the text "None"."""
    texts, labels = ["match goal", "bank shares", "chip phone"], ["sport", "money", "tech"]
    for bad_labels in (["sport", float("nan"), "tech"], pd.Series(["sport", None, "tech"])):
        with pytest.raises(TailTuneError, match=r"^fit\(\): data row 2 has an empty label"):
            _quick(tiny_model).fit(texts, bad_labels)
    for bad_texts in (["match goal", None, "chip phone"], pd.Series(["match goal", np.nan, "chip"])):
        with pytest.raises(TailTuneError, match=r"^fit\(\): data row 2 has no text"):
            _quick(tiny_model).fit(bad_texts, labels)
    with pytest.raises(TailTuneError, match=r"^predict\(\): data row 1 has no text"):
        fitted.predict([None])
    with pytest.raises(TailTuneError, match=r"^fit\(\): data rows 1, 2, 3 have a non-text value \(float\)"):
        _quick(tiny_model).fit(np.array([0.5, -1.2, 3.0]), labels)
    with pytest.raises(TailTuneError, match=r"^predict\(\): data row 1 has a non-text value \(int\)"):
        fitted.predict([3, "match goal"])


def test_continuous_and_mixed_labels_are_refused(tiny_model):
    texts = ["match goal", "bank shares", "chip phone", "team win"]
    with pytest.raises(TailTuneError, match=r"^fit\(\): data row 2 has the label 0.25, not a whole number"):
        _quick(tiny_model).fit(texts, np.array([1.0, 0.25, 2.0, 1.0]))
    with pytest.raises(TailTuneError, match=r"^fit\(\): labels of several kinds \(data row 1 has 'sport', a string, "
                                            r"data row 2 has 1, an integer\)"):  # fmt: skip
        _quick(tiny_model).fit(texts, ["sport", 1, "tech", "sport"])


def test_sequences_of_strings_are_accepted(fitted, test_texts):
    """A list, tuple, 1-D NumPy array or pandas Series of texts predicts the same."""
    expected = fitted.predict_proba(test_texts)
    for texts in (tuple(test_texts), np.array(test_texts), pd.Series(test_texts, index=range(5, 14))):
        np.testing.assert_allclose(fitted.predict_proba(texts), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("labels", "dtype", "classes"),
    [
        (pd.Series([3, 1, 3, 1]), np.int64, [1, 3]),
        (np.array([3.0, 1.0, 3.0, 1.0]), np.int64, [1, 3]),  # whole floats are integer labels
        ([True, False, True, False], bool, [False, True]),
        (pd.Series(["b", "a", "b", "a"], dtype="string"), object, ["a", "b"]),
    ],
)
def test_predict_returns_an_array_of_the_labels_kind(tiny_model, labels, dtype, classes):
    texts = ["match goal", "bank shares", "team win", "market price"]
    tuner = _quick(tiny_model).fit(pd.Series(texts), labels)
    assert tuner.classes_.dtype == dtype and list(tuner.classes_) == classes
    predicted = tuner.predict(texts)
    assert isinstance(predicted, np.ndarray) and predicted.dtype == dtype and set(predicted) <= set(classes)


def test_score_averages_over_the_classes_present(fitted, test_texts):
    """score is f1_score(y, predict(X), average="macro"): a training class in neither is not counted as 0."""
    predicted = fitted.predict(test_texts)
    common = max(set(predicted), key=list(predicted).count)
    texts = [t for t, p in zip(test_texts, predicted, strict=True) if p == common]
    assert len(texts) >= 2
    other = next(label for label in LABELS if label != common)
    labels = [common] * (len(texts) - 1) + [other]  # the third class is in neither labels nor predictions
    expected = f1_score(labels, fitted.predict(texts), average="macro")
    assert fitted.score(texts, labels) == pytest.approx(expected)
    old = f1_score(labels, fitted.predict(texts), average="macro", labels=LABELS, zero_division=0)
    assert fitted.score(texts, labels) > old


def test_sklearn_tags_declare_string_input():
    tags = get_tags(TailTuner())
    assert tags.input_tags.string and tags.input_tags.one_d_array
    assert not tags.input_tags.two_d_array
    assert tags.estimator_type == "classifier" and tags.target_tags.required


# ------------------------------------------------------------------------------------------------ pickling


def _fitted_fp32(model: str, pooling: str) -> TailTuner:
    texts, labels = make_texts({"sport": 6, "tech": 6}, seed=4)
    tuner = TailTuner(model, "two-stage", epochs=1, max_length=16, batch_size=4, min_steps=0, eval_fraction=0,
                      mixed_precision="no", show_progress=False, pooling=pooling)  # fmt: skip
    return tuner.fit(texts, [1 if label == "sport" else 0 for label in labels])


@pytest.fixture(scope="module")
def fitted_fp32(tiny_model) -> TailTuner:
    """Trained (two stages, so an optimiser and a scheduler went through accelerate), in fp32 everywhere."""
    return _fitted_fp32(tiny_model, "cls")


@pytest.fixture(scope="module")
def fitted_fp32_mean(tiny_model) -> TailTuner:
    """As :func:`fitted_fp32`, reading the token mean: a model class tailtune makes (sentence-transformers
    checkpoints)."""
    return _fitted_fp32(tiny_model, "mean")


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_pickle_and_joblib_round_trip(pooling, test_texts, tmp_path, request):
    """A fitted estimator pickles (before and after predicting) and the copy predicts the same, with the stock
    [CLS] head and with mean pooling."""
    fitted = request.getfixturevalue("fitted_fp32" if pooling == "cls" else "fitted_fp32_mean")
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(copy.predict_proba(test_texts), fitted.predict_proba(test_texts), atol=1e-6)
    joblib.dump(fitted, tmp_path / "clf.joblib")  # after a prediction, too
    loaded = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(loaded.predict(test_texts), fitted.predict(test_texts))
    assert loaded.classes_.dtype == np.int64 and loaded.get_params() == fitted.get_params()
    # A TailTuner.load()ed one makes its Accelerator from the prediction settings it was loaded with.
    reloaded = pickle.loads(pickle.dumps(TailTuner.load(fitted.save(tmp_path / "clf"), mixed_precision="no")))
    np.testing.assert_allclose(reloaded.predict_proba(test_texts), fitted.predict_proba(test_texts), atol=1e-6)


def test_pickle_predicts_in_a_fresh_process(fitted_fp32_mean, test_texts, tmp_path):
    """Loaded where accelerate has no state yet, the estimator makes its Accelerator again and predicts; its
    mean-pooling model class, made by tailtune, is found again by name."""
    fitted_fp32_mean.predict(test_texts)
    joblib.dump(fitted_fp32_mean, tmp_path / "clf.joblib")
    code = ("import joblib, json, sys; clf = joblib.load(sys.argv[1]); "
            "print(json.dumps(clf.predict_proba(json.loads(sys.argv[2])).tolist()))")  # fmt: skip
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "clf.joblib"), json.dumps(test_texts)],
                          capture_output=True, text=True, env=env, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    probs = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(probs, fitted_fp32_mean.predict_proba(test_texts), atol=1e-6)


def test_cross_val_predict_probabilities(tiny_model):
    """cross_val_predict(method="predict_proba") gets [n, K] probabilities in classes_ order from each fold."""
    texts, labels = make_texts({"sport": 4, "tech": 4, "money": 4}, seed=9)
    probs = cross_val_predict(_quick(tiny_model), texts, labels, cv=2, method="predict_proba")
    assert probs.shape == (12, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    predicted = cross_val_predict(_quick(tiny_model), texts, labels, cv=2)
    assert predicted.shape == (12,) and set(predicted) <= set(LABELS)
