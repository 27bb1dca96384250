"""Tests of train_run: the run-directory contract, failure handling and label checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import build_tiny_model_with_positions
from sklearn.metrics import f1_score

import tailtune.models.transformer as transformer_module
import tailtune.training.loop as training
from tailtune.config import RunConfig, StageConfig
from tailtune.data.readers import read_dataset
from tailtune.data.types import Splits, TextDataset, check_labels
from tailtune.errors import TailTuneError
from tailtune.runs.records import ConfigRecord
from tailtune.runs.rundir import is_complete
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config

LABELS = ["money", "sport", "tech"]
METRIC_KEYS = {
    "accuracy", "micro_f1", "macro_f1", "weighted_f1", "balanced_accuracy", "n_examples", "head_f1", "medium_f1",
    "tail_f1", "groups", "per_class", "confusion_matrix", "split", "eval", "stages", "wall_time_s",
    "validation_split", "selection", "long_texts", "refit", "refit_epochs", "calibration", "absent_classes",
    "log_loss", "cost", "task",
}  # fmt: skip


@pytest.fixture(scope="module")
def splits(tiny_data) -> Splits:
    train = read_dataset(tiny_data["train"])
    test = read_dataset(tiny_data["test"])
    return Splits(train=train, eval=test.subset(range(0, 30, 2)), test=test)


def _config(model: str, *, strategy: str = "two-stage", stages=None, **changes) -> RunConfig:
    settings = {"batch_size": 8, "max_length": 32, "eval_batch_size": 16, "seed": 1, **changes}
    if stages is not None:
        return RunConfig(model=model, strategy=strategy, stages=stages, **settings)
    return build_run_config(model, strategy, settings=settings)


@pytest.fixture(scope="module")
def run_dir(tiny_model, splits, tmp_path_factory) -> tuple[Path, dict]:
    """One complete two-stage run (1 epoch per stage) with eval and test splits."""
    out = tmp_path_factory.mktemp("runs") / "two-stage"
    metrics = train_run(_config(tiny_model, logging_steps=2, min_steps=0, epochs=1), splits, out, show_progress=False)
    return out, metrics


def test_run_directory_files(run_dir):
    """A complete run holds config.json, history.jsonl, predictions.csv, model/, metrics.json and the digests of its
    training texts, nothing else."""
    out, _ = run_dir
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "history.jsonl", "metrics.json", "model", "predictions.csv", "train_texts.npy",
    ]  # fmt: skip
    assert is_complete(out)
    assert (out / "model" / "model.safetensors").is_file()
    assert (out / "model" / "tokenizer.json").is_file()


def test_config_json(run_dir, tiny_data):
    """config.json records versions, labels, training counts, the resolved stages and data sources."""
    config = json.loads((run_dir[0] / "config.json").read_text())
    assert config["labels"] == LABELS
    assert config["train_counts"] == {"money": 4, "sport": 40, "tech": 12}
    versions = config["versions"]
    for name in ("python", "tailtune", "torch", "transformers", "accelerate", "numpy"):
        assert versions[name] and versions[name] != "not installed"
    assert versions["torch"] == torch.__version__.split("+")[0] or versions["torch"] == torch.__version__
    stages = config["run"]["stages"]
    assert "stages" not in config  # recorded once, in the run's config
    assert [s["name"] for s in stages] == ["stage1", "stage2"]
    assert stages[0]["trainable"] == "top1" and stages[0]["loss"] == "ldam"
    assert config["run"]["strategy"] == "two-stage" and config["run"]["batch_size"] == 8
    assert config["data"]["train"] == str(tiny_data["train"])
    assert config["data"]["test"] == str(tiny_data["test"])
    assert RunConfig.from_dict(config["run"]).stages == [StageConfig.from_dict(s) for s in stages]
    assert ConfigRecord.from_json(config).to_json() == config and list(config)[-1] == "accelerate"  # typed, in order
    if not torch.cuda.is_available():  # auto, on a CPU the suite treats as without native bf16
        assert config["accelerate"]["mixed_precision"] == "no"
        assert config["accelerate"]["mixed_precision_reason"].startswith("auto: ")
        assert "has no native bf16" in config["accelerate"]["mixed_precision_reason"]


def test_history_jsonl(run_dir):
    """history.jsonl holds loss/lr entries per stage, ending at lr 0, and validation scores after each epoch."""
    lines = (run_dir[0] / "history.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    steps = [e for e in entries if "loss" in e]
    evals = [e for e in entries if "validation_macro_f1" in e]
    assert [(e["stage"], e["stage_name"], e["epoch"]) for e in evals] == [(0, "stage1", 1), (1, "stage2", 1)]
    assert all(0 <= e["validation_macro_f1"] <= 1 for e in evals)
    for stage in (0, 1):
        mine = [e for e in steps if e["stage"] == stage]
        assert [e["step"] for e in mine] == [2, 4, 6, 7]  # ceil(56 / 8) = 7 steps, logged every 2 and at the end
        assert mine[-1]["lr"] == 0.0 and mine[0]["lr"] > 0
    # Eval entries follow their stage's training entries.
    assert entries.index(evals[0]) < entries.index(next(e for e in steps if e["stage"] == 1))


def test_metrics_json(run_dir, splits):
    """metrics.json has the overall, per-class, group and confusion-matrix scores, consistent with predictions."""
    out, returned = run_dir
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(returned))
    assert set(metrics) == METRIC_KEYS
    assert metrics["split"] == "test" and metrics["n_examples"] == 30
    assert list(metrics["per_class"]) == LABELS
    assert [metrics["per_class"][name]["train_count"] for name in LABELS] == [4, 40, 12]
    assert [metrics["per_class"][name]["support"] for name in LABELS] == [10, 10, 10]
    assert metrics["groups"] == {"head": ["sport"], "medium": ["tech"], "tail": ["money"]}
    assert metrics["head_f1"] == metrics["per_class"]["sport"]["f1"]
    assert metrics["tail_f1"] == metrics["per_class"]["money"]["f1"]
    assert metrics["medium_f1"] == metrics["per_class"]["tech"]["f1"]
    matrix = np.array(metrics["confusion_matrix"]["matrix"])
    assert metrics["confusion_matrix"]["labels"] == LABELS
    assert matrix.shape == (3, 3) and matrix.sum() == 30 and matrix.sum(axis=1).tolist() == [10, 10, 10]

    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions.columns) == ["text", "label", "predicted", "score"]
    assert predictions["text"].tolist() == splits.test.texts
    assert predictions["label"].tolist() == splits.test.labels
    assert set(predictions["predicted"]) <= set(LABELS)
    assert predictions["score"].between(1 / 3 - 1e-6, 1).all()
    assert metrics["accuracy"] == pytest.approx((predictions["label"] == predictions["predicted"]).mean())
    assert metrics["micro_f1"] == pytest.approx(metrics["accuracy"])
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(predictions["label"], predictions["predicted"], labels=LABELS, average="macro", zero_division=0)
    )
    assert np.trace(matrix) == round(metrics["accuracy"] * 30)
    assert metrics["eval"]["n_examples"] == 15
    assert [(s["name"], s["steps"], s["cached"]) for s in metrics["stages"]] == [
        ("stage1", 7, True), ("stage2", 7, False),
    ]  # fmt: skip
    # The eval split selected each stage's epoch (one each here) and the decision rule; nothing was refit.
    assert metrics["validation_split"] == {"source": "given", "size": 15}
    assert [(c["stage"], c["best_epoch"], c["epochs_run"]) for c in metrics["selection"]] == [(0, 1, 1), (1, 1, 1)]
    assert metrics["refit_epochs"] is None
    assert metrics["calibration"]["method"] == "logit-adjust" and len(metrics["calibration"]["class_offsets"]) == 3


def test_saved_model_records_labels_and_counts(run_dir):
    """model/config.json names the labels and keeps the training counts for later evaluations."""
    config = json.loads((run_dir[0] / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "money", "1": "sport", "2": "tech"}
    assert config["tailtune_train_counts"] == {"money": 4, "sport": 40, "tech": 12}


def test_pipeline_loads_the_run_model(run_dir, splits):
    """transformers.pipeline loads RUN/model and predicts the label names that predictions.csv holds."""
    from transformers import pipeline

    out, _ = run_dir
    classify = pipeline("text-classification", model=str(out / "model"), device="cpu")
    results = classify(splits.test.texts)
    predictions = pd.read_csv(out / "predictions.csv")
    assert {r["label"] for r in results} <= set(LABELS)
    assert [r["label"] for r in results] == predictions["predicted"].tolist()
    np.testing.assert_allclose([r["score"] for r in results], predictions["score"], atol=1e-4)


def test_complete_run_is_not_overwritten(run_dir, tiny_model, splits):
    """train_run refuses to replace a complete run unless overwrite is set."""
    with pytest.raises(TailTuneError, match=r"already holds a complete run; choose another --output or pass"):
        train_run(_config(tiny_model), splits, run_dir[0], show_progress=False)


def test_failure_mid_training_leaves_incomplete_run(tiny_model, splits, tmp_path, monkeypatch):
    """If stage 2 fails, nothing is left that looks like a run: no run folder, no staging folder."""
    calls = []
    real_build_loss = training.build_loss

    def failing_build_loss(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom in stage 2")
        return real_build_loss(*args, **kwargs)

    monkeypatch.setattr(training, "build_loss", failing_build_loss)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom in stage 2"):
        train_run(_config(tiny_model), splits, out, show_progress=False)
    assert len(calls) == 2  # stage 1 ran
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_failure_while_saving_leaves_no_model(tiny_model, splits, tmp_path, monkeypatch, run_dir):
    """A save that fails half-way leaves no run, and an overwrite that fails leaves the old run untouched."""

    def failing_save(model, tokenizer, path):
        (Path(path) / "config.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(transformer_module, "save_classifier", failing_save)
    config = _config(tiny_model, strategy="custom", stages=[StageConfig(epochs=0)])
    out = tmp_path / "fresh"
    with pytest.raises(OSError, match="disk full"):
        train_run(config, splits, out, show_progress=False)
    assert not out.exists()

    # Overwriting a complete run that then fails leaves the old run as it was.
    again = tmp_path / "again"
    shutil.copytree(run_dir[0], again)
    before = {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    with pytest.raises(OSError, match="disk full"):
        train_run(config, splits, again, overwrite=True, show_progress=False)
    assert {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_run_without_eval_or_test(tiny_model, splits, tmp_path):
    """Without eval/test data a run still completes: metrics has no split and there is no predictions.csv."""
    config = _config(tiny_model, strategy="custom", stages=[StageConfig(epochs=0)])
    metrics = train_run(config, Splits(train=splits.train), tmp_path / "r", show_progress=False)
    assert metrics["split"] is None and metrics["stages"] == []
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "config.json",
        "history.jsonl",
        "metrics.json",
        "model",
        "train_texts.npy",
    ]


def test_eval_only_run_scores_eval(tiny_model, splits, tmp_path):
    """With eval data but no test data the final metrics come from the eval split."""
    config = _config(tiny_model, strategy="custom", stages=[StageConfig(epochs=0)])
    metrics = train_run(config, Splits(train=splits.train, eval=splits.eval), tmp_path / "r", show_progress=False)
    assert metrics["split"] == "eval" and metrics["n_examples"] == 15 and "eval" not in metrics
    assert len(pd.read_csv(tmp_path / "r" / "predictions.csv")) == 15


def test_unseen_labels_are_named(tiny_model, splits, tmp_path):
    """Eval or test labels never seen in training raise an error naming them, before anything is written."""
    test = TextDataset(["goal team", "rain cloud", "snow"], ["sport", "weather", "climate"], "test.csv")
    with pytest.raises(TailTuneError) as info:
        train_run(_config(tiny_model), Splits(splits.train, test=test), tmp_path / "r", show_progress=False)
    message = str(info.value)
    assert message.startswith("test.csv: label(s) 'climate', 'weather' never seen in training")
    assert "'money', 'sport', 'tech'" in message
    assert not (tmp_path / "r").exists()
    with pytest.raises(TailTuneError, match=r"^eval.csv: label\(s\) 'weather'"):
        check_labels(Splits(splits.train, eval=TextDataset(["x"], ["weather"], "eval.csv")))


def test_single_class_and_unlabelled_training(tiny_model, tmp_path):
    """Training data with one class, or without labels, is refused."""
    one = TextDataset(["a", "b"], ["pos", "pos"], "one.csv")
    with pytest.raises(TailTuneError, match=r"one.csv: only one class \('pos'\); a classifier needs at least two"):
        train_run(_config(tiny_model), Splits(one), tmp_path / "r", show_progress=False)
    with pytest.raises(TailTuneError, match=r"none.csv: training data needs labels"):
        check_labels(Splits(TextDataset(["a"], None, "none.csv")))
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------- max_length: fitted default, refused values


@pytest.fixture(scope="module")
def short_model(tmp_path_factory) -> str:
    """A tiny BERT with 24 positions whose tokenizer states no limit: its position table is the limit."""
    return build_tiny_model_with_positions(tmp_path_factory.mktemp("short-bert"), 24, None)


def test_default_max_length_is_fitted_to_a_short_model(short_model, splits, tmp_path, caplog):
    """Not given, max_length is the model's limit where that is below what the training texts ask for (at least
    128): logged, recorded and used."""
    config = build_run_config(short_model, "vanilla", settings={"batch_size": 8, "epochs": 1, "min_steps": 0,
                                                                "eval_fraction": 0, "seed": 1})  # fmt: skip
    assert config.max_length is None
    with caplog.at_level("INFO", logger="tailtune.training.fitting"):
        metrics = train_run(config, Splits(splits.train, test=splits.test), tmp_path / "r", show_progress=False)
    chosen = [m for m in caplog.messages if m.startswith("max_length 24 from the training texts: 95% of the ")]
    assert len(chosen) == 1 and "(below the least length of 128; 128 is above this model's limit of 24)" in chosen[0]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["run"]["max_length"] == 24
    assert json.loads((tmp_path / "r" / "model" / "config.json").read_text())["tailtune_max_length"] == 24
    assert metrics["n_examples"] == len(splits.test)


@pytest.mark.parametrize(
    ("max_length", "message"),
    [
        (25, "max_length 25 is above this model's limit of 24 tokens; give at most 24"),
        (2, "max_length 2 leaves no room for text: this model's tokenizer adds 2 special tokens to each; "
            "give at least 3"),
    ],
)  # fmt: skip
def test_impossible_max_length_is_refused_before_anything_is_written(short_model, splits, tmp_path, max_length,
                                                                     message):  # fmt: skip
    """A given max_length the model cannot take is one error naming it, by train_run and by TailTuner.fit."""
    from tailtune.classifier import TailTuner

    config = build_run_config(short_model, "vanilla", settings={"max_length": max_length})
    with pytest.raises(TailTuneError) as info:
        train_run(config, Splits(splits.train), tmp_path / "r", show_progress=False)
    assert (str(info.value), info.value.setting) == (message, "max_length")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TailTuneError, match=f"^{message}$"):
        TailTuner(short_model, "vanilla", max_length=max_length, show_progress=False).fit(["a", "b"], ["x", "y"])


def test_fitted_max_length_rule():
    """None: 128, or the model's limit where lower (the tokenizer's stated limit first); a given value is kept."""
    from tailtune.training.fitting import fit_max_length

    def tokenizer(stated: int) -> SimpleNamespace:
        return SimpleNamespace(model_max_length=stated, num_special_tokens_to_add=lambda: 2)

    def fitted(max_length, stated, positions):
        config = build_run_config("m", "vanilla", settings={"max_length": max_length})
        return fit_max_length(config, SimpleNamespace(max_position_embeddings=positions), tokenizer(stated)).max_length

    unset = int(1e30)  # what transformers reads for a tokenizer that states no limit
    assert fitted(None, 512, 512) == 128  # the default fits: runs are as before
    assert fitted(None, 64, 80) == 64
    assert fitted(None, unset, 40) == 40
    assert fitted(None, unset, None) == 128
    assert fitted(300, 512, 512) == 300


def test_tailtuner_fit_records_the_fitted_length(short_model):
    """TailTuner.fit resolves the default as train_run does; its config_ and predictions use the fitted length."""
    from tailtune.classifier import TailTuner

    texts = ["match goal team", "chip phone code", "bank market shares", "goal win", "data network", "fund rate"]
    tuner = TailTuner(short_model, "vanilla", epochs=0, eval_fraction=0, show_progress=False)
    tuner.fit(texts, ["sport", "tech", "money"] * 2)
    assert tuner.config_.max_length == tuner._max_length() == 24
    assert tuner.predict_proba([" ".join(["goal"] * 200)]).shape == (1, 3)  # cut at 24, not beyond the positions


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_length": 1}, "max_length must be >= 2, got 1"),
        ({"max_length": 0}, "max_length must be >= 2, got 0"),
        ({"max_length": -3}, "max_length must be >= 2, got -3"),
        ({"max_length": 2}, "max_length 2 leaves no room for text"),
        ({"max_length": 65}, "max_length 65 is above this model's limit of 64 tokens; give at most 64"),
        ({"max_length": 16.5}, "max_length must be a whole number, got 16.5"),
        ({"max_length": "16"}, None),
        ({"eval_batch_size": 0}, "eval_batch_size must be >= 1, got 0"),
        ({"eval_batch_size": -1}, "eval_batch_size must be >= 1, got -1"),
        ({"mixed_precision": "fp8"}, "unknown mixed precision 'fp8'"),
        ({"batch_size": 8}, "TailTuner.load: unknown prediction setting(s) batch_size; valid: eval_batch_size, "
                            "long_texts, max_length, mixed_precision"),
    ],
)  # fmt: skip
def test_load_checks_every_prediction_setting(run_dir, settings, message):
    """TailTuner.load refuses each impossible setting with one error (and takes a numeric string as YAML would)."""
    from tailtune.classifier import TailTuner

    if message is None:
        assert TailTuner.load(run_dir[0] / "model", **settings)._max_length() == 16
        return
    with pytest.raises(TailTuneError) as info:
        TailTuner.load(run_dir[0] / "model", **settings)
    assert message in str(info.value)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max-length", "1"], "--max-length must be >= 2, got 1"),
        (["--max-length", "0"], "--max-length must be >= 2, got 0"),
        (["--max-length", "-3"], "--max-length must be >= 2, got -3"),
        (["--max-length", "2"], "--max-length 2 leaves no room for text: this model's tokenizer adds 2 special tokens "
                                "to each; give at least 3"),
        (["--max-length", "100"], "--max-length 100 is above this model's limit of 64 tokens; give at most 64"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--batch-size", "-1"], "--batch-size must be >= 1, got -1"),
    ],
)  # fmt: skip
def test_predict_and_evaluate_refuse_impossible_options(run_dir, tiny_data, tmp_path, capsys, command, option,
                                                        message):  # fmt: skip
    """Every numeric option of predict and evaluate: exit 2, one line naming the flag, nothing written."""
    from tailtune.cli import main

    where = {"predict": ["--input", tiny_data["test"], "--output", tmp_path / "out.csv"],
             "evaluate": ["--data", tiny_data["test"], "--output", tmp_path / "out.json"]}[command]  # fmt: skip
    code = main([str(a) for a in [command, "--model", run_dir[0] / "model", *where, *option]])
    err = capsys.readouterr().err
    assert (code, err) == (2, f"tailtune: error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_compare_fits_the_default_and_resumes(tiny_model, tiny_data, tmp_path):
    """A compare without max_length trains at the model's limit (64), and a second compare counts that run as
    done rather than as one with other settings; an impossible max_length in the file is one error."""
    import yaml

    from tailtune.experiments.runner import prepare_compare, run_compare

    experiment = {
        "output": str(tmp_path / "out"), "model": tiny_model, "seeds": [1],
        "run": {"batch_size": 8, "eval_fraction": 0}, "strategies": [{"vanilla": {"epochs": 0}}],
        "data": {"variants": [{"name": "v", "train": str(tiny_data["train"]), "test": str(tiny_data["test"])}]},
    }  # fmt: skip
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(experiment), encoding="utf-8")
    run_compare(path, show_progress=False)
    run = tmp_path / "out" / "v" / "vanilla" / "seed-1"
    assert json.loads((run / "config.json").read_text())["run"]["max_length"] == 64
    assert [item.directory for item in prepare_compare(path, write_data=False).plan] == [run]  # no mismatch

    experiment["run"]["max_length"] = 65
    path.write_text(yaml.safe_dump({**experiment, "output": str(tmp_path / "other")}), encoding="utf-8")
    with pytest.raises(TailTuneError, match=r"^max_length 65 is above this model's limit of 64 tokens; give at most"):
        run_compare(path, show_progress=False)
    assert not (tmp_path / "other" / "v" / "vanilla").exists()


def test_tune_refuses_an_impossible_max_length_before_any_trial(tiny_model, splits, tmp_path):
    from tailtune.experiments.tune import tune

    with pytest.raises(TailTuneError, match=r"^max_length 65 is above this model's limit of 64 tokens"):
        tune(tiny_model, splits, tmp_path / "t", settings={"max_length": 65}, trials=1, show_progress=False)
    assert not (tmp_path / "t" / "study.db").exists()
