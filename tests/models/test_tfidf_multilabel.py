"""The ``tfidf`` strategy on label sets: one binary model per label, per-label thresholds chosen out of fold and
folded into the intercepts, saved and loaded with them."""

from __future__ import annotations

import json
import random

import joblib
import numpy as np
import pytest
from conftest import LABEL_SETS, label_sets, run_cli
from sklearn.metrics import f1_score

from tailtune.classifier import TailTuner
from tailtune.config import TfidfStage
from tailtune.data.types import LabelMap, Splits, TextDataset
from tailtune.models.family import evaluate
from tailtune.models.tfidf import FAMILY, PIPELINE_FILE, RECORD_FILE, TfidfModel, fit
from tailtune.models.tfidf_multilabel import LabelSetSettings, TfidfMultiLabelModel, fit_label_sets, fold_ids
from tailtune.multilabel_metrics import compute_multilabel_metrics
from tailtune.strategies import build_run_config
from tailtune.task import MultiLabel
from tailtune.training.thresholds import apply_thresholds


def noisy_sets(seed: int = 0) -> TextDataset:
    """:func:`label_sets` with one text in four carrying a wrong extra label, so that the out-of-fold scores
    overlap and the thresholds move away from 0.5."""
    data = label_sets({**LABEL_SETS, ("sport",): 40, ("tech",): 12}, seed=seed)
    rng = random.Random(seed)
    labels = [tuple(sorted({*row, rng.choice(["sport", "money", "tech"])})) if rng.random() < 0.25 else row
              for row in data.labels]  # fmt: skip
    return TextDataset(data.texts, labels, data.source)


@pytest.fixture(scope="module")
def noisy() -> TextDataset:
    return noisy_sets()


@pytest.fixture(scope="module")
def model(noisy) -> TfidfMultiLabelModel:
    return fit(TfidfStage(), noisy, LabelMap.from_label_sets(noisy.labels), seed=0)


def test_fit_and_predict_shapes(model, noisy):
    """A multi-label dataset fits the multi-label model: one score column per label, label-set predictions."""
    assert isinstance(model, TfidfMultiLabelModel) and model.task.name == "multi-label"
    assert model.classes_.tolist() == ["money", "sport", "tech"] and model.calibrated is False
    scores = model.predict_proba(noisy.texts[:7])
    assert scores.shape == (7, 3) and ((scores > 0) & (scores < 1)).all()
    predicted = model.predict(noisy.texts[:7])
    assert predicted.shape == (7, 3) and set(np.unique(predicted)) <= {0, 1}
    assert model.predict_proba([]).shape == (0, 3)
    assert model.train_counts == dict(zip(model.label_map.labels, model.label_map.counts(noisy), strict=True))


def test_thresholds_are_applied_by_the_half_rule(model):
    """``> 0.5`` on the scores gives the thresholded raw scores' label sets, as the saved pipeline's predict does."""
    assert not np.allclose(model.thresholds, 0.5)  # the noise moved the thresholds
    texts = noisy_sets(seed=5).texts  # new texts: the training texts lie far from every threshold
    raw = model.raw_scores(texts)
    expected = apply_thresholds(raw, model.thresholds)
    assert (MultiLabel().decide(model.predict_proba(texts)) == expected).all()
    assert (model.predict(texts) == expected).all()
    assert (np.asarray(model.pipeline.predict(texts)) == expected).all()
    # The thresholds change what 0.5 on the raw scores alone would predict.
    assert (apply_thresholds(raw, 0.5) != expected).any()


def test_decisions_record_the_thresholds(noisy):
    """The fit records the per-label thresholds, the global one and how they were chosen."""
    config = build_run_config(None, "tfidf", settings={"seed": 1})
    label_map = LabelMap.from_label_sets(noisy.labels)
    result = FAMILY.start(config, Splits(noisy), label_map).fit(Splits(noisy))
    rule = result.decisions.to_dict()["calibration"]
    assert rule["method"] == "label-thresholds" and rule["chosen_on"].startswith("out-of-fold scores")
    assert list(rule["thresholds"]) == label_map.labels
    assert rule["kept"] in ("per-label thresholds", "one threshold", "0.5")
    thresholds = dict(zip(label_map.labels, result.classifier.thresholds, strict=True))
    assert rule["thresholds"] == pytest.approx(thresholds, abs=1e-5)
    assert 0 < rule["global_threshold"] < 1 and rule["folds"] == 5
    assert rule["n_positives"] == dict(zip(label_map.labels, label_map.counts(noisy), strict=True))
    assert rule["class_offsets"] == pytest.approx(-np.log(result.classifier.thresholds /
                                                         (1 - result.classifier.thresholds)), abs=1e-5)  # fmt: skip
    assert set(rule["out_of_fold_after"]) == {"micro_f1", "macro_f1"}
    assert result.decisions.refit["done"] is False


def test_evaluate_scores_the_label_sets(model):
    """models.family.evaluate scores the model through its task: the metrics of its predicted label sets."""
    test = noisy_sets(seed=5)
    metrics, predictions = evaluate(model, test)
    truth = model.label_map.encode_sets(test.labels, source=test.source)
    expected = compute_multilabel_metrics(truth, model.predict(test.texts), label_names=model.label_map.labels,
                                          train_counts=list(model.train_counts.values()))  # fmt: skip
    assert metrics["micro_f1"] == pytest.approx(expected["micro_f1"]) and metrics["micro_f1"] > 0.6
    assert predictions.columns.tolist() == ["text", "label", "predicted"]


def test_save_and_load_round_trip(model, noisy, tmp_path):
    """A saved model loads with its task, labels and thresholds, and predicts the same label sets and scores."""
    model.save(tmp_path / "m", scores={"split": "test", "micro_f1": 0.9, "macro_f1": None})
    record = json.loads((tmp_path / "m" / RECORD_FILE).read_text())
    assert record["task"] == "multi-label" and record["labels"] == ["money", "sport", "tech"]
    assert list(record["thresholds"]["thresholds"].values()) == pytest.approx(model.thresholds, abs=1e-5)
    loaded = TfidfModel.load(tmp_path / "m")
    assert isinstance(loaded, TfidfMultiLabelModel) and loaded.task.name == "multi-label"
    assert isinstance(TailTuner.load(tmp_path / "m", eval_batch_size=5), TfidfMultiLabelModel)
    assert loaded.thresholds == pytest.approx(model.thresholds)
    assert np.allclose(loaded.predict_proba(noisy.texts), model.predict_proba(noisy.texts))
    assert (loaded.predict(noisy.texts) == model.predict(noisy.texts)).all()
    # score: macro-F1 over the labels true or predicted, from label lists or the indicator matrix alike.
    truth = np.array([[name in row for name in loaded.classes_] for row in noisy.labels], dtype=int)
    expected = f1_score(truth, loaded.predict(noisy.texts), average="macro", zero_division=0)
    assert loaded.score(noisy.texts, truth) == pytest.approx(expected)
    assert loaded.score(noisy.texts, [list(row) for row in noisy.labels]) == pytest.approx(expected)
    # Plain joblib: the pipeline predicts the same 0/1 matrix, columns in the record's label order.
    assert (joblib.load(tmp_path / "m" / PIPELINE_FILE).predict(noisy.texts) == model.predict(noisy.texts)).all()
    assert "macro-F1 not measured" in (tmp_path / "m" / "README.md").read_text()


def test_a_label_on_every_text_is_always_predicted():
    """A label on every training text gets a constant model: no crash, predicted for every text, new ones too."""
    data = label_sets(LABEL_SETS, seed=2)
    everywhere = TextDataset(data.texts, [tuple(sorted({*row, "news"})) for row in data.labels], data.source)
    label_map = LabelMap.from_label_sets(everywhere.labels)
    model = fit(TfidfStage(), everywhere, label_map, seed=0)
    column = label_map.labels.index("news")
    texts = [*everywhere.texts, "words never seen in training", ""]
    assert model.predict(texts)[:, column].all()
    assert model.pipeline[-1].estimators_[column].coef_.any() == False  # noqa: E712 - zero weights
    assert (model.predict(texts)[:, :column].sum() + model.predict(texts)[:, column + 1 :].sum()) > 0


def test_logistic_regression_and_integer_labels():
    """Logistic regression serves as the binary model too; integer label names come back as integers."""
    data = label_sets(LABEL_SETS, seed=3)
    names = {"sport": "1", "money": "2", "tech": "10"}
    numbered = TextDataset(data.texts, [tuple(sorted(names[n] for n in row)) for row in data.labels], data.source)
    model = fit(TfidfStage(classifier="logistic-regression", C=10.0), numbered,
                LabelMap.from_label_sets(numbered.labels), seed=0)  # fmt: skip
    assert model.classes_.tolist() == [1, 2, 10]
    assert (model.predict(numbered.texts) == model.label_map.encode_sets(numbered.labels, source="x")).mean() > 0.9


def test_folds_spread_every_label():
    """Each label's texts are spread over the folds, a label on two texts in two folds even where other, rarer
    labels place both texts first; the folds are of one size, and the seed shuffles them."""
    data = label_sets(LABEL_SETS, seed=4)
    # "gold" on two texts, each placed first by a rarer label of its own ("zinc", "lead").
    rows = [*data.labels[:-2], ("gold", "sport", "zinc"), ("gold", "lead", "sport")]
    data = TextDataset(data.texts, rows, data.source)
    for seed in range(5):
        ids = fold_ids(data, 5, seed=seed)
        assert sorted(np.bincount(ids, minlength=5).tolist()) == [11, 11, 11, 11, 12]
        for name in ("gold", "tech", "money", "sport"):
            where = [ids[i] for i, row in enumerate(data.labels) if name in row]
            assert len(set(where)) == min(5, len(where)), name
    assert (fold_ids(data, 5, seed=0) == fold_ids(data, 5, seed=0)).all()
    assert not (fold_ids(data, 5, seed=1) == fold_ids(data, 5, seed=0)).all()


def test_another_threshold_rule_can_be_given(noisy):
    """The rule is a parameter: what it returns is folded in and recorded."""

    def fixed(margins, targets):
        return np.array([0.3, 0.6, 0.7]), {"rule": "fixed"}

    model = fit_label_sets(TfidfStage(), noisy, LabelMap.from_label_sets(noisy.labels), seed=0, choose=fixed)
    assert model.thresholds == pytest.approx([0.3, 0.6, 0.7]) and model.record["rule"] == "fixed"
    texts = noisy_sets(seed=6).texts
    assert (model.predict(texts) == apply_thresholds(model.raw_scores(texts), [0.3, 0.6, 0.7])).all()


def test_the_estimate_fits_the_label_sets(noisy):
    """The run's time estimate probes the multi-label fit, its out-of-fold models included."""
    from tailtune.models.tfidf import estimate_cost

    config = build_run_config(None, "tfidf", settings={"seed": 0})
    cost = estimate_cost(config, Splits(noisy), LabelMap.from_label_sets(noisy.labels))
    assert cost["probe"]["fit_s"] > 0 and cost["probe"]["predict_per_text_s"] > 0
    assert "one linear-svc per label" in cost["plan"]["stages"][0]["describe"]


def test_one_text_makes_no_folds_to_choose_on():
    """With a single training text there is nothing out of fold: every threshold is 0.5, and it says why."""
    data = TextDataset(["gold and oil"], [("gold", "oil")], "one")
    model = fit_label_sets(TfidfStage(), data, LabelMap.from_label_sets(data.labels), seed=0,
                           settings=LabelSetSettings(folds=5))  # fmt: skip
    assert model.thresholds.tolist() == [0.5, 0.5] and model.record["chosen_on"].startswith("nothing")
    assert model.predict(["gold", "anything"]).tolist() == [[1, 1], [1, 1]]


def test_train_predict_and_evaluate_commands(tmp_path, capsys):
    """tailtune train --strategy tfidf on JSON lines of label lists writes a multi-label run; predict writes label
    lists, evaluate gives the run's metrics."""
    for name, seed in (("train", 0), ("test", 7)):
        data = noisy_sets(seed)
        lines = [json.dumps({"text": t, "labels": list(row)}) for t, row in zip(data.texts, data.labels, strict=True)]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    code, _, _ = run_cli(capsys, "train", "--strategy", "tfidf", "--train", tmp_path / "train.jsonl", "--test",
                         tmp_path / "test.jsonl", "--label-column", "labels", "--output", run, "-q")  # fmt: skip
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["calibration"]["method"] == "label-thresholds" and metrics["micro_f1"] > 0.6
    assert json.loads((run / "config.json").read_text())["task"] == "multi-label"
    code, _, _ = run_cli(capsys, "predict", "--model", run / "model", "--input", tmp_path / "test.jsonl",
                         "--label-column", "labels", "--output", tmp_path / "p.jsonl", "-q")  # fmt: skip
    assert code == 0
    first = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert isinstance(first["predicted"], list)
    code, out, _ = run_cli(capsys, "evaluate", "--model", run / "model", "--data", tmp_path / "test.jsonl",
                           "--label-column", "labels")  # fmt: skip
    assert code == 0 and f"micro-F1 {metrics['micro_f1']:.4f}" in out
