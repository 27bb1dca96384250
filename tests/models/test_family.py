"""The model-family interface: a run, a saved folder and scoring reach each family through it alone, so a new
family is a new module registered in ``FAMILIES``."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
from conftest import make_texts

from tailtune.data.types import LabelMap, Splits, TextDataset
from tailtune.metrics import compute_metrics
from tailtune.models import family as family_module
from tailtune.models.family import Decisions, FitResult, evaluate, family_of, family_of_folder
from tailtune.runs.records import load_run
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config
from tailtune.task import SingleLabel


class _PriorClassifier:
    """Scores every text with the training class frequencies."""

    task = SingleLabel()
    calibrated = True
    reading = None

    def __init__(self, label_map: LabelMap, counts: dict[str, int]) -> None:
        self.label_map, self.train_counts = label_map, counts

    def predict_proba(self, texts):
        prior = np.array([self.train_counts[name] for name in self.label_map.labels], dtype=float)
        return np.tile(prior / prior.sum(), (len(texts), 1))

    def save(self, path, **_):
        (path / "prior.json").write_text(json.dumps(self.train_counts))


class _PriorSession:
    main = True

    def __init__(self, config, splits, label_map):
        self.config, self.label_map = config, label_map

    def run_settings(self):
        return {"strategy": self.config.strategy, "seed": self.config.seed}

    def environment(self):
        return {}

    def wait(self):
        pass

    def fit(self, splits, *, hooks=()):
        counts = dict(zip(self.label_map.labels, self.label_map.counts(splits.train), strict=True))
        for hook in hooks:
            hook.on_log({"stage": 0, "stage_name": "prior"})
        return FitResult(_PriorClassifier(self.label_map, counts), [{"name": "prior"}], Decisions(), self.config)


class _PriorFamily:
    """A third family, defined outside the package: it claims ``vanilla`` runs and folders holding ``prior.json``."""

    name = "prior"
    uses_model = False

    def handles(self, config):
        return config.strategy == "vanilla"

    def owns(self, path):
        return (path / "prior.json").is_file()

    def prepare(self, config, texts=None):
        return config

    def start(self, config, splits, label_map, *, show_progress=True):
        return _PriorSession(config, splits, label_map)

    def load(self, path, **settings):
        counts = json.loads((path / "prior.json").read_text())
        return _PriorClassifier(LabelMap(list(counts)), counts)


@pytest.fixture
def prior_family(monkeypatch):
    module = types.ModuleType("prior_family")
    module.FAMILY = _PriorFamily()
    monkeypatch.setitem(sys.modules, "prior_family", module)
    monkeypatch.setattr(family_module, "FAMILIES", ("prior_family:FAMILY", *family_module.FAMILIES))
    return module.FAMILY


def _splits():
    texts, labels = make_texts({"sport": 12, "tech": 6, "money": 3}, seed=1)
    test_texts, test_labels = make_texts({"sport": 4, "tech": 4, "money": 4}, seed=2)
    return Splits(TextDataset(texts, labels, "train"), test=TextDataset(test_texts, test_labels, "test"))


def test_a_new_family_trains_saves_and_loads_through_the_run_unchanged(prior_family, tmp_path):
    config = build_run_config("unused", "vanilla", settings={"seed": 3})
    assert family_of(config) is prior_family
    metrics = train_run(config, _splits(), tmp_path / "run", show_progress=False)
    run = load_run(tmp_path / "run")
    assert run.metrics["macro_f1"] == metrics["macro_f1"]
    assert run.config["run"] == {"strategy": "vanilla", "seed": 3} and run.task == "single-label"
    assert run.decisions == Decisions() and metrics["stages"] == [{"name": "prior"}]
    assert family_of_folder(tmp_path / "run" / "model") is prior_family
    # everything is predicted as the most frequent class: sport
    assert set(run.predictions()["predicted"]) == {"sport"}


def test_families_of_the_package(tmp_path):
    tfidf = build_run_config(None, "tfidf")
    two_stage = build_run_config("m", "two-stage")
    assert family_of(tfidf).name == "tfidf" and not family_of(tfidf).uses_model
    assert family_of(two_stage).name == "transformer" and family_of(two_stage).uses_model
    assert family_of_folder(tmp_path).name == "transformer"  # what no family claims: loading says why


def test_evaluate_scores_as_the_metrics_module_does():
    splits = _splits()
    label_map = LabelMap.from_labels(splits.train.labels)
    classifier = _PriorClassifier(label_map, dict(zip(label_map.labels, label_map.counts(splits.train), strict=True)))
    metrics, predictions = evaluate(classifier, splits.test)
    probabilities = classifier.predict_proba(splits.test.texts)
    expected = compute_metrics(label_map.encode(splits.test.labels, source="t"), probabilities.argmax(axis=1),
                               label_names=label_map.labels, train_counts=label_map.counts(splits.train),
                               probabilities=probabilities)  # fmt: skip
    assert metrics == {"task": "single-label", **expected}
    assert list(predictions.columns) == ["text", "label", "predicted", "score"] and len(predictions) == 12
