"""The ``tfidf`` strategy: a TF-IDF + linear model trained, scored, saved and compared like any other strategy."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import make_texts, run_cli, write_file
from sklearn.metrics import f1_score

from tailtune.classifier import TailTuner
from tailtune.config import RunConfig, TfidfStage
from tailtune.data.readers import read_dataset
from tailtune.data.types import Splits, TextDataset, check_labels
from tailtune.errors import TailTuneError
from tailtune.models.tfidf import PIPELINE_FILE, RECORD_FILE, TfidfModel, class_scores, make_pipeline
from tailtune.runs.records import load_run
from tailtune.strategies import build_run_config


@pytest.fixture(scope="module")
def tfidf_run(tiny_data, tmp_path_factory) -> Path:
    """``tailtune train --strategy tfidf`` on the tiny long-tailed data, scored on its test file."""
    from tailtune.cli import main

    out = tmp_path_factory.mktemp("tfidf") / "run"
    assert main(["train", "--strategy", "tfidf", "--train", str(tiny_data["train"]), "--test",
                 str(tiny_data["test"]), "--seed", "3", "--output", str(out), "-q"]) == 0  # fmt: skip
    return out


def test_train_writes_a_run_directory(tfidf_run):
    """The run holds the files of any run, records only the settings it uses, and its model folder the pipeline."""
    assert sorted(p.name for p in tfidf_run.iterdir()) == ["config.json", "history.jsonl", "metrics.json", "model",
                                                           "predictions.csv", "train_texts.npy"]  # fmt: skip
    assert sorted(p.name for p in (tfidf_run / "model").iterdir()) == ["README.md", PIPELINE_FILE, RECORD_FILE]
    run = load_run(tfidf_run)
    assert run.strategy == "tfidf" and run.seed == 3
    assert run.config["run"] == {"strategy": "tfidf", "seed": 3, "report_to": "none", "time_budget": None,
                                 "stages": [TfidfStage(ngram_max=2).to_dict()]}  # fmt: skip
    assert run.config["train_counts"] == {"money": 4, "sport": 40, "tech": 12}
    history = [json.loads(line) for line in (tfidf_run / "history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["stage_name"] == "tfidf" and history[0]["features"] > 0
    metrics = run.metrics
    assert metrics["split"] == "test" and metrics["n_examples"] == 30
    assert metrics["macro_f1"] > 0.8  # topic words make the labels easy
    assert (metrics["selection"], metrics["refit_epochs"], metrics["calibration"]) == ([], None, None)


def test_metrics_are_scikit_learns(tfidf_run):
    """metrics.json scores the predictions written beside it as scikit-learn does (one metric code path)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    predictions = pd.read_csv(tfidf_run / "predictions.csv", dtype=str, keep_default_na=False)
    assert predictions.columns.tolist() == ["text", "label", "predicted", "score"]
    metrics = load_run(tfidf_run).metrics
    y, p = predictions["label"], predictions["predicted"]
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))


def test_plain_joblib_predicts_the_same_labels(tfidf_run, tiny_data):
    """The saved pipeline loads with joblib alone and predicts what the run predicted."""
    pipeline = joblib.load(tfidf_run / "model" / PIPELINE_FILE)
    predictions = pd.read_csv(tfidf_run / "predictions.csv", dtype=str, keep_default_na=False)
    assert list(pipeline.predict(predictions["text"])) == predictions["predicted"].tolist()


def test_predict_and_evaluate_load_the_model(tfidf_run, tiny_data, tmp_path, capsys):
    """tailtune predict writes the usual columns and the run's predictions; evaluate gives the run's metrics."""
    code, _, _ = run_cli(capsys, "predict", "--model", tfidf_run / "model", "--input", tiny_data["test"], "--output",
                         tmp_path / "p.csv", "--probabilities", "--batch-size", 7, "-q")  # fmt: skip
    assert code == 0
    written = pd.read_csv(tmp_path / "p.csv", dtype={"label": str, "predicted": str})
    assert written.columns.tolist() == ["text", "label", "predicted", "score", "prob_money", "prob_sport", "prob_tech"]
    run = pd.read_csv(tfidf_run / "predictions.csv", dtype=str, keep_default_na=False)
    assert written["predicted"].tolist() == run["predicted"].tolist()
    assert np.allclose(written[["prob_money", "prob_sport", "prob_tech"]].sum(axis=1), 1, atol=1e-5)
    assert np.allclose(written["score"], written[["prob_money", "prob_sport", "prob_tech"]].max(axis=1))

    code, _, _ = run_cli(capsys, "evaluate", "--model", tfidf_run / "model", "--data", tiny_data["test"], "--output",
                         tmp_path / "m.json", "-q")  # fmt: skip
    assert code == 0
    evaluated, trained = json.loads((tmp_path / "m.json").read_text()), load_run(tfidf_run).metrics
    for key in ("accuracy", "macro_f1", "tail_f1", "per_class", "confusion_matrix"):
        assert evaluated[key] == trained[key]


def test_integer_labels_stay_integers(tmp_path, capsys):
    """Integer labels: the pipeline and the loaded model predict integers, as a fine-tuned model does."""
    texts, labels = make_texts({"sport": 12, "tech": 8, "money": 5}, seed=4)
    ids = {"sport": 10, "tech": 2, "money": 1}  # 10 sorts before 2 as text, after it as a number
    pd.DataFrame({"text": texts, "label": [ids[label] for label in labels]}).to_csv(tmp_path / "t.csv", index=False)
    code, _, err = run_cli(capsys, "train", "--strategy", "tfidf", "--train", tmp_path / "t.csv", "--test",
                           tmp_path / "t.csv", "--output", tmp_path / "run", "-q")  # fmt: skip
    assert code == 0, err
    model = TailTuner.load(tmp_path / "run" / "model")
    assert isinstance(model, TfidfModel)
    assert model.classes_.tolist() == [1, 2, 10] and model.label_map.labels == ["1", "2", "10"]
    pipeline = joblib.load(tmp_path / "run" / "model" / PIPELINE_FILE)
    assert model.predict(texts).tolist() == pipeline.predict(texts).tolist()
    assert isinstance(pipeline.predict(texts[:1])[0], np.integer)
    # score is macro-F1, as TailTuner's: integer labels given as whole floats match by name.
    truth = [ids[label] for label in labels]
    expected = f1_score([str(t) for t in truth], [str(p) for p in model.predict(texts)], average="macro")
    assert model.score(texts, [float(t) for t in truth]) == pytest.approx(expected)


@pytest.mark.parametrize("classifier", ["linear-svc", "logistic-regression"])
def test_scores_match_the_pipeline(classifier):
    """Each row of scores sums to 1 and its argmax is the pipeline's prediction, with two classes (one SVM margin)
    and with three; logistic regression's scores are its probabilities."""
    for counts in ({"sport": 10, "tech": 6}, {"sport": 10, "tech": 6, "money": 3}):
        texts, labels = make_texts(counts, seed=5)
        pipeline = make_pipeline(TfidfStage(classifier=classifier)).fit(texts, labels)
        scores = class_scores(pipeline, texts)
        assert scores.shape == (len(texts), len(counts))
        assert np.allclose(scores.sum(axis=1), 1)
        assert pipeline.classes_[scores.argmax(axis=1)].tolist() == pipeline.predict(texts).tolist()
        if classifier == "logistic-regression":
            assert np.allclose(scores, pipeline.predict_proba(texts))


@pytest.mark.parametrize(("classifier", "has_log_loss"), [("linear-svc", False), ("logistic-regression", True)])
def test_log_loss_only_where_scores_are_probabilities(classifier, has_log_loss):
    """A softmax over SVM margins falls as C grows: its log loss would rank tied tune trials by C, so a linear SVM's
    metrics have none; logistic regression's is scikit-learn's."""
    from sklearn.metrics import log_loss

    from tailtune.models.family import evaluate
    from tailtune.models.tfidf import fit

    texts, labels = make_texts({"sport": 10, "tech": 6, "money": 4}, seed=5)
    data = TextDataset(texts, labels, "train")
    label_map = check_labels(Splits(data))
    model = fit(TfidfStage(classifier=classifier), data, label_map, seed=0)
    metrics, _ = evaluate(model, data)
    if has_log_loss:
        expected = log_loss(label_map.encode(labels, source="t"), model.predict_proba(texts), labels=range(3))
        assert metrics["log_loss"] == pytest.approx(expected)
    else:
        assert metrics["log_loss"] is None


def test_stage_settings_reach_the_pipeline():
    """C, n-grams, min_df, tf and the classifier are the pipeline's; stage overrides set them."""
    config = build_run_config(None, "tfidf", stages=[{"C": 0.5, "ngram_max": 1, "min_df": 2,
                                                      "classifier": "logistic-regression"}])  # fmt: skip
    assert config.classic and RunConfig.from_dict(config.to_dict()) == config
    params = make_pipeline(config.stages[0], seed=7).get_params()
    assert (params["tfidf__ngram_range"], params["tfidf__min_df"], params["tfidf__sublinear_tf"]) == ((1, 1), 2, True)
    assert (type(params["classifier"]).__name__, params["classifier__C"]) == ("LogisticRegression", 0.5)
    assert params["classifier__class_weight"] == "balanced"
    with pytest.raises(TailTuneError, match="stage 'tfidf': C must be > 0"):
        build_run_config(None, "tfidf", stages=[{"C": 0}])
    with pytest.raises(TailTuneError, match="cannot be combined with other stages"):
        build_run_config(None, "custom", stages=[{"classifier": "linear-svc"}, {"lr": 1e-3}])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "builtin:minilm"], "--model does not apply to strategy 'tfidf'"),
        (["--lr", "1e-3"], "--lr does not apply to strategy 'tfidf'"),
        (["--max-length", "64"], "--max-length does not apply to strategy 'tfidf'"),
        (["--calibrate", "none"], "--calibrate does not apply to strategy 'tfidf'"),
    ],
)
def test_train_refuses_settings_it_does_not_use(argv, message, tiny_data, tmp_path, capsys):
    """A fine-tuning option given with --strategy tfidf is one error line, before anything is written."""
    code, _, err = run_cli(capsys, "train", "--strategy", "tfidf", "--train", tiny_data["train"], "--output",
                           tmp_path / "run", *argv)  # fmt: skip
    assert code == 2 and err.startswith(f"tailtune: error: {message}") and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_config_file_settings_are_refused_too(tiny_data, tmp_path, capsys):
    config = write_file(tmp_path / "run.yaml", yaml.safe_dump({"strategy": "tfidf", "pooling": "mean"}))
    code, _, err = run_cli(capsys, "train", "--config", config, "--train", tiny_data["train"], "--output",
                           tmp_path / "run")  # fmt: skip
    assert code == 2 and "--pooling does not apply to strategy 'tfidf'" in err


def test_prediction_refuses_transformer_settings(tfidf_run, tiny_data, tmp_path, capsys):
    code, _, err = run_cli(capsys, "predict", "--model", tfidf_run / "model", "--input", tiny_data["test"], "--output",
                           tmp_path / "p.csv", "--max-length", 32)  # fmt: skip
    assert code == 2 and "--max-length does not apply to" in err and "TF-IDF" in err
    assert not (tmp_path / "p.csv").exists()


def test_unreadable_model_folder_is_one_line(tfidf_run, tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / RECORD_FILE).write_text((tfidf_run / "model" / RECORD_FILE).read_text())
    (broken / PIPELINE_FILE).write_bytes(b"not a pickle")
    with pytest.raises(TailTuneError, match="cannot load the TF-IDF model"):
        TailTuner.load(broken)


def test_tune_searches_c(tiny_model, tiny_data, tmp_path):
    """tailtune tune searches the strategy's C on validation data and trains the best into OUT/best."""
    from tailtune.experiments.tune import tune

    train, test = read_dataset(tiny_data["train"]), read_dataset(tiny_data["test"])
    result = tune(tiny_model, Splits(train, None, test), tmp_path / "t", strategies=["tfidf"], trials=2,
                  show_progress=False)  # fmt: skip
    trials = pd.read_csv(tmp_path / "t" / "trials.csv")
    assert set(trials["state"]) == {"COMPLETE"}
    # Trial 0 is the strategy as train runs it (C as configured); the others sample C.
    assert pd.isna(trials.loc[0, "param.tfidf.C"]) and trials.loc[1:, "param.tfidf.C"].between(1e-2, 1e2).all()
    best = load_run(tmp_path / "t" / "best")
    if result.settings["stages"]:
        chosen = result.settings["stages"][0]["C"]
        assert chosen in trials["param.tfidf.C"].tolist()
    else:
        chosen = build_run_config(None, "tfidf").stages[0].C
    assert best.config["run"]["stages"][0]["C"] == chosen
    assert (tmp_path / "t" / "best" / "model" / PIPELINE_FILE).is_file()


def test_compare_and_report_show_tfidf_beside_fine_tuning(tiny_model, source_csv, tmp_path, capsys):
    """An experiment with a fine-tuned strategy and tfidf: both runs have the same metric keys, the summary and the
    report have a tfidf row, and running it again finds the tfidf run complete."""
    from compare_config import config_dict, write_config

    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config.update(seeds=[1], strategies=[{"vanilla": {"epochs": 1, "lr": "1e-3"}}, "tfidf"])
    config["data"]["make"]["ratios"] = [4]
    path = write_config(tmp_path / "exp.yaml", config)
    code, out, err = run_cli(capsys, "compare", "--config", path, "-q")
    assert code == 0, err
    assert "tfidf" in out
    vanilla, tfidf = (load_run(tmp_path / "out" / "ratio-4" / name / "seed-1") for name in ("vanilla", "tfidf"))
    assert set(tfidf.metrics) == set(vanilla.metrics)
    assert tfidf.config["run"]["strategy"] == "tfidf"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {row["strategy"] for row in summary["rows"]} == {"vanilla", "tfidf"}

    code, out, _ = run_cli(capsys, "compare", "--config", path, "--dry-run")
    assert code == 0 and "1. tfidf: TF-IDF of word 1-2 grams" in out and out.count("  done  ") == 2
    code, _, err = run_cli(capsys, "compare", "--config", path, "-q")  # both runs complete: nothing trains again
    assert code == 0, err

    code, _, err = run_cli(capsys, "report", tmp_path / "out", "-q")
    assert code == 0, err
    report = (tmp_path / "out" / "report.md").read_text()
    assert any(line.startswith("| tfidf") or "| tfidf |" in line for line in report.splitlines())


def test_experiment_refuses_a_fine_tuning_option_for_tfidf(tiny_model, source_csv, tmp_path, capsys):
    from compare_config import config_dict, write_config

    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config["strategies"] = ["vanilla", {"tfidf": {"lr": 1e-3}}]
    path = write_config(tmp_path / "exp.yaml", config)
    code, _, err = run_cli(capsys, "compare", "--config", path, "--dry-run")
    assert code == 2 and "strategies[1]" in err and "lr does not apply to strategy 'tfidf'" in err


def test_tune_command_prints_what_it_kept(tiny_data, tmp_path, capsys):
    """A TF-IDF search needs no --model; the command names the kept strategy with its settings, stage overrides
    included, and where best.json is."""
    code, out, err = run_cli(capsys, "tune", "--train", tiny_data["train"], "--strategies", "tfidf", "--trials", "3",
                             "--output", tmp_path / "t", "-q")  # fmt: skip
    assert code == 0, err
    best = json.loads((tmp_path / "t" / "best.json").read_text())
    kept = next(line for line in out.splitlines() if line.startswith("kept: tfidf "))
    if best["settings"]["stages"]:
        assert f"'C': {best['settings']['stages'][0]['C']}" in kept
    else:
        assert "as train runs it" in kept
    assert kept.endswith(f"why: {tmp_path / 't'}/best.json)")


@pytest.mark.parametrize(("extra", "flag"), [(["--model", "m"], "--model"), (["--max-length", "64"], "--max-length"),
                                             (["--no-refit"], "--no-refit")])  # fmt: skip
def test_tune_of_tfidf_refuses_what_train_refuses(tiny_data, tmp_path, capsys, extra, flag):
    code, _, err = run_cli(capsys, "tune", "--train", tiny_data["train"], "--strategies", "tfidf", "--trials", "1",
                           "--output", tmp_path / "t", *extra)  # fmt: skip
    assert code == 2 and f"{flag} does not apply to strategy 'tfidf'" in err


def test_tune_of_a_transformer_strategy_needs_a_model(tiny_data, tmp_path, capsys):
    code, _, err = run_cli(capsys, "tune", "--train", tiny_data["train"], "--strategies", "tfidf", "vanilla",
                           "--trials", "1", "--output", tmp_path / "t")  # fmt: skip
    assert code == 2 and "--model is required" in err


def test_a_loaded_model_saves_into_a_folder_not_made_yet(tfidf_run, tiny_data, tmp_path):
    model = TfidfModel.load(tfidf_run / "model")
    model.save(tmp_path / "new" / "model")
    again = TfidfModel.load(tmp_path / "new" / "model")
    texts = pd.read_csv(tiny_data["test"])["text"].tolist()
    assert (again.predict(texts) == model.predict(texts)).all()
