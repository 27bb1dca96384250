"""Tests of TailTuner, the scikit-learn estimator."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import make_texts
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, cross_val_score

import tailtune.run as run_module
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

    monkeypatch.setattr(run_module, "load_classifier", no_loading)
    tuner = TailTuner("no/such/model", "not-a-strategy", stages=[{"lr": 1.0}], show_progress=False, lr=-1)
    assert tuner.model == "no/such/model"
    assert tuner.strategy == "not-a-strategy"
    assert tuner.stages == [{"lr": 1.0}]
    assert tuner.show_progress is False
    assert tuner.settings() == {"lr": -1}
    assert not [name for name in vars(tuner) if name.endswith("_")]


def test_fit_predict_proba(fitted, test_texts):
    """predict_proba gives rows summing to 1 with columns in classes_ order; predict is their argmax."""
    assert fitted.classes_ == LABELS
    probs = fitted.predict_proba(test_texts)
    assert probs.shape == (9, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert (probs > 0).all()
    assert fitted.predict(test_texts) == [LABELS[i] for i in probs.argmax(axis=1)]
    assert fitted.label_map.labels == LABELS


def test_predict_proba_of_no_texts(fitted):
    """predict_proba([]) returns a (0, K) array, as its code intends."""
    assert fitted.predict_proba([]).shape == (0, 3)
    assert fitted.predict([]) == []


def test_fit_resolves_config(fitted):
    """Shortcuts go to the stages (one value or one per stage); batch_size and max_length go to the run."""
    config = fitted.config_
    assert [s.lr for s in config.stages] == [1e-3, 1e-4]
    assert [s.epochs for s in config.stages] == [1, 1]
    assert [s.batch_size for s in config.stages] == [None, None]
    assert (config.batch_size, config.max_length, config.strategy) == (8, 32, "two-stage")
    assert [(s.name, s.steps, s.cached) for s in fitted.report_.stages] == [("stage1", 4, True), ("stage2", 4, False)]


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
    assert tuner.classes_ == [2, 10]
    predicted = tuner.predict(texts[:3])
    assert all(type(p) is int for p in predicted) and set(predicted) <= {2, 10}


def test_save_load_round_trip(fitted, test_texts, tmp_path):
    """save() then TailTuner.load() gives the same classes, probabilities and predictions."""
    path = fitted.save(tmp_path / "clf")
    assert (path / "model.safetensors").is_file()
    loaded = TailTuner.load(path)
    assert loaded._max_length() == 32  # the training length, recorded with the model
    assert TailTuner.load(path, max_length=8)._max_length() == 8
    assert loaded.classes_ == fitted.classes_
    np.testing.assert_allclose(loaded.predict_proba(test_texts), fitted.predict_proba(test_texts), atol=1e-6)
    assert loaded.predict(test_texts) == fitted.predict(test_texts)
    # save() replaces an earlier save in the same folder.
    assert fitted.save(tmp_path / "clf") == tmp_path / "clf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]


def test_integer_labels_survive_save_and_load(tiny_model, tmp_path):
    """predict() returns labels of the training labels' type, also after save and load."""
    texts, names = make_texts({"sport": 4, "tech": 4}, seed=3)
    labels = [1 if name == "sport" else 0 for name in names]
    tuner = TailTuner(tiny_model, "vanilla", epochs=0, max_length=32, show_progress=False).fit(texts, labels)
    tuner.save(tmp_path / "clf")
    assert TailTuner.load(tmp_path / "clf").predict(texts[:2]) == tuner.predict(texts[:2])


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


def test_unfitted_is_scikit_learns_not_fitted_error(tiny_model):
    with pytest.raises(NotFittedError):
        TailTuner(tiny_model).predict(["a"])
    with pytest.raises(TailTuneError):
        TailTuner(tiny_model).predict(["a"])


def test_integer_classes_and_score(tiny_model):
    """classes_ keep the labels' type; score is macro-F1 over the training classes."""
    texts, names = make_texts({"sport": 8, "tech": 6, "money": 4}, seed=7)
    labels = [{"sport": 3, "tech": 1, "money": 2}[name] for name in names]
    tuner = TailTuner(tiny_model, "vanilla", epochs=1, lr=1e-3, max_length=16, batch_size=4, min_steps=0,
                      eval_fraction=0, show_progress=False).fit(texts, labels)  # fmt: skip
    assert tuner.classes_ == [1, 2, 3]
    predicted = tuner.predict(texts)
    assert tuner.score(texts, labels) == pytest.approx(f1_score(labels, predicted, average="macro",
                                                                labels=[1, 2, 3], zero_division=0))  # fmt: skip


def test_cross_val_score_and_grid_search(tiny_model):
    """The estimator works inside scikit-learn's model selection, over two values of one setting."""
    texts, labels = make_texts({"sport": 8, "tech": 8, "money": 8}, seed=8)
    base = TailTuner(tiny_model, "vanilla", epochs=1, max_length=16, batch_size=8, min_steps=0, eval_fraction=0,
                     calibrate="none", show_progress=False)  # fmt: skip
    scores = cross_val_score(base, texts, labels, cv=2)
    assert len(scores) == 2 and all(0 <= s <= 1 for s in scores)
    search = GridSearchCV(base, {"lr": [1e-4, 1e-2]}, cv=2).fit(texts, labels)
    assert search.best_params_["lr"] in (1e-4, 1e-2)
    assert search.best_estimator_.predict(texts[:3]) == search.predict(texts[:3])


def test_builtin_model_name_is_resolved(tiny_model, monkeypatch):
    """TailTuner takes the same builtin:minilm name as the command line."""
    from tailtune import builtin

    monkeypatch.setattr(builtin, "minilm_path", lambda: tiny_model)
    texts, labels = make_texts({"sport": 4, "tech": 4}, seed=2)
    tuner = TailTuner("builtin:minilm", "vanilla", epochs=0, max_length=16, show_progress=False).fit(texts, labels)
    assert tuner.config_.model == tiny_model
