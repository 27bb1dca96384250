"""train_run on multi-label data: one run body, the multi-label task chosen from the data, a checkpoint whose
plain ``sigmoid > 0.5`` gives the label sets tailtune predicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import LABEL_SETS, label_sets

from tailtune.data.types import Splits, TextDataset
from tailtune.errors import TailTuneError
from tailtune.models.family import evaluate, family_of_folder
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config
from tailtune.task import MultiLabel, get_task


@pytest.fixture(scope="module")
def splits() -> Splits:
    return Splits(
        train=label_sets(LABEL_SETS, seed=0), test=label_sets({k: max(1, v // 3) for k, v in LABEL_SETS.items()}, 1)
    )


@pytest.fixture(scope="module")
def run(tiny_model, splits, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("multilabel") / "two-stage"
    config = build_run_config(tiny_model, "two-stage", settings={
        "batch_size": 8, "max_length": 32, "eval_batch_size": 16, "seed": 1, "min_steps": 0, "epochs": 1,
        "eval_min_class_count": 2,
    })  # fmt: skip
    return out, train_run(config, splits, out, show_progress=False)


def test_the_run_records_the_multilabel_task_and_its_metrics(run):
    out, metrics = run
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "multi-label"
    assert config["train_counts"] == {"money": 21, "sport": 34, "tech": 8}
    for key in ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "per_class"):
        assert key in metrics
    assert metrics["calibration"]["method"] == "label-thresholds"
    assert 0 < metrics["calibration"]["one_threshold"]["threshold"] < 1
    assert metrics["calibration"]["one_threshold"]["kept"] in ("per-label thresholds", "one threshold", "0.5")
    assert "with one threshold" in (out / "model" / "README.md").read_text()
    saved = json.loads((out / "model" / "config.json").read_text())
    assert saved["problem_type"] == "multi_label_classification"
    assert saved["tailtune_task"] == "multi-label"


def test_predictions_csv_joins_each_label_set(run, splits):
    out, _ = run
    predictions = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert predictions["label"].tolist() == ["|".join(row) for row in splits.test.labels]
    assert all(set(cell.split("|")) <= {"", "money", "sport", "tech"} for cell in predictions["predicted"])


def test_plain_transformers_sigmoid_gives_the_label_sets(run, splits):
    """The per-label thresholds live in the bias: sigmoid(logit) > 0.5 on the plain checkpoint is the prediction."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out, _ = run
    model = AutoModelForSequenceClassification.from_pretrained(out / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    with torch.no_grad():
        logits = model(**tokenizer(splits.test.texts, padding=True, truncation=True, max_length=32,
                                   return_tensors="pt")).logits.numpy()  # fmt: skip
    names = [model.config.id2label[i] for i in range(logits.shape[1])]
    plain = ["|".join(n for n, on in zip(names, row, strict=True) if on) for row in torch.sigmoid(
        torch.from_numpy(logits)).numpy() > 0.5]  # fmt: skip
    predictions = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert plain == predictions["predicted"].tolist()


def test_the_loaded_model_scores_as_the_run_did(run, splits):
    out, metrics = run
    classifier = family_of_folder(out / "model").load(out / "model")
    assert isinstance(classifier.task, MultiLabel)
    again, _ = evaluate(classifier, splits.test)
    assert again["micro_f1"] == pytest.approx(metrics["micro_f1"])
    assert again["macro_f1"] == pytest.approx(metrics["macro_f1"])


def test_multilabel_losses_are_refused_on_single_label_data(tiny_model, tmp_path):
    config = build_run_config(tiny_model, "vanilla", settings={"max_length": 16, "epochs": 1, "min_steps": 0,
                                                               "loss": "db", "eval_fraction": 0})  # fmt: skip
    data = TextDataset(["a b", "c d", "e f", "g h"], ["x", "y", "x", "y"], "memory")
    with pytest.raises(TailTuneError, match="loss 'db' is for multi-label data"):
        train_run(config, Splits(train=data), tmp_path / "run", show_progress=False)


def test_the_second_stage_plans_three_epochs_on_label_sets_unless_epochs_are_given():
    """Two-stage's full stage trains three epochs on label sets and one on single labels; epochs given (on the
    command line, in a config's stages) hold for both."""
    plan = build_run_config("tiny", "two-stage")
    assert [s.epochs for s in get_task("multi-label").prepare(plan).stages] == [1, 3]
    assert [s.epochs for s in get_task("single-label").prepare(plan).stages] == [1, 1]
    given = build_run_config("tiny", "two-stage", settings={"epochs": 1})
    assert [s.epochs for s in get_task("multi-label").prepare(given).stages] == [1, 1]
    in_stages = build_run_config("tiny", "two-stage", stages=[{}, {"epochs": 2}])
    assert [s.epochs for s in get_task("multi-label").prepare(in_stages).stages] == [1, 2]
    assert [s.epochs for s in get_task("multi-label").prepare(build_run_config("tiny", "vanilla")).stages] == [1]


def test_single_label_losses_map_onto_multilabel_ones():
    from tailtune.config import StageConfig
    from tailtune.task import multilabel_loss_of

    task = get_task("multi-label")
    assert multilabel_loss_of(StageConfig(name="s", loss="ldam", loss_params={"max_margin": 0.5})) == ("db", {})
    assert multilabel_loss_of(StageConfig(name="s", loss="ce")) == ("bce", {})
    assert multilabel_loss_of(StageConfig(name="s", loss="ce", weights="effective")) == ("cb", {})
    assert multilabel_loss_of(StageConfig(name="s", loss="asl")) == ("asl", {})
    # After a distribution-balanced stage, plain cross-entropy keeps that loss; a named bce stays bce.
    assert multilabel_loss_of(StageConfig(name="s", loss="ce"), after_balanced=True) == ("db", {})
    assert multilabel_loss_of(StageConfig(name="s", loss="bce"), after_balanced=True) == ("bce", {})
    losses = {name: [stage.loss for stage in task.prepare(build_run_config("tiny", name)).stages]
              for name in ("two-stage", "vanilla", "lp-ft", "drw", "reweight")}  # fmt: skip
    assert losses == {"two-stage": ["db", "db"], "vanilla": ["bce"], "lp-ft": ["bce", "bce"], "drw": ["bce", "db"],
                      "reweight": ["db"]}  # fmt: skip
    named = build_run_config("tiny", "two-stage", settings={"loss": ["ldam", "bce"]})
    assert [stage.loss for stage in task.prepare(named).stages] == ["db", "bce"]
    loss = task.loss(StageConfig(name="s", loss="ldam"), [5, 2, 1], 8)
    assert np.isfinite(float(loss(torch.zeros(2, 3), torch.tensor([[1.0, 0, 0], [0, 1, 1]]))))
    crt = build_run_config("tiny", "crt")
    with pytest.raises(TailTuneError, match="sampler 'class-balanced'"):
        task.prepare(crt)


def _write_csv(path: Path, data: TextDataset) -> Path:
    pd.DataFrame({"text": data.texts, "label": ["|".join(row) for row in data.labels]}).to_csv(path, index=False)
    return path


def test_predict_writes_label_sets_as_lists_or_joined_cells(run, splits, tmp_path, capsys):
    from conftest import run_cli

    out, _ = run
    source = _write_csv(tmp_path / "test.csv", splits.test)
    expected = pd.read_csv(out / "predictions.csv", keep_default_na=False)["predicted"].tolist()
    code, _, err = run_cli(capsys, "predict", "--model", out / "model", "--input", source, "--output",
                           tmp_path / "p.jsonl", "--probabilities", "--label-separator", "|")  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert ["|".join(row["predicted"]) for row in rows] == expected
    assert {"prob_money", "prob_sport", "prob_tech"} <= set(rows[0]) and "score" not in rows[0]
    code, _, err = run_cli(capsys, "predict", "--model", out / "model", "--input", source, "--output",
                           tmp_path / "p.csv", "--label-separator", "|")  # fmt: skip
    assert code == 0, err
    assert pd.read_csv(tmp_path / "p.csv", keep_default_na=False)["predicted"].tolist() == expected


def test_evaluate_reads_label_sets_and_prints_multilabel_scores(run, splits, tmp_path, capsys):
    from conftest import run_cli

    out, metrics = run
    source = _write_csv(tmp_path / "test.csv", splits.test)
    code, printed, err = run_cli(capsys, "evaluate", "--model", out / "model", "--data", source,
                                 "--label-separator", "|")  # fmt: skip
    assert code == 0, err
    assert f"micro-F1 {metrics['micro_f1']:.4f}" in printed and "samples-F1" in printed
    # A multi-label model reads cells joined by '|', as predict writes them, without being told.
    code, again, err = run_cli(capsys, "evaluate", "--model", out / "model", "--data", source)
    assert code == 0, err
    assert again == printed


def test_train_on_a_csv_of_joined_labels(tiny_model, splits, tmp_path, capsys):
    from conftest import run_cli

    train = _write_csv(tmp_path / "train.csv", splits.train)
    code, _, err = run_cli(capsys, "train", "--train", train, "--model", tiny_model, "--strategy", "vanilla",
                           "--output", tmp_path / "run", "--epochs", "1", "--min-steps", "0", "--max-length", "16",
                           "--label-separator", "|", "-q")  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["task"] == "multi-label"
    labelled = splits.train.subset([i for i, row in enumerate(splits.train.labels) if row])
    joined = _write_csv(tmp_path / "labelled.csv", labelled)
    code, _, err = run_cli(capsys, "train", "--train", joined, "--model", tiny_model, "--output", tmp_path / "r2")
    assert code != 0 and "--label-separator" in err and "'|'" in err


def test_an_empty_label_separator_is_refused_not_ignored(splits, tmp_path, capsys):
    """An empty separator, on the command line or in a --config file, is refused in one line (not read as absent,
    which would train a single-label model on the joined cells)."""
    from conftest import run_cli

    train = _write_csv(tmp_path / "train.csv", splits.train)
    # predict joins its label sets with it: an empty one is refused there too, not taken for the default.
    commands = [
        ("train", "--train", train, "--strategy", "tfidf", "--output", tmp_path / "run"),
        ("predict", "--model", tmp_path / "model", "--input", train, "--output", tmp_path / "p.csv"),
    ]
    for argv in commands:
        with pytest.raises(SystemExit) as refused:  # argparse refuses it, as any bad flag value
            run_cli(capsys, *argv, "--label-separator", "")
        err = capsys.readouterr().err
        assert refused.value.code == 2 and "--label-separator: must not be empty" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "p.csv").exists()
    config = tmp_path / "run.yaml"
    config.write_text(f"train: {train}\nstrategy: tfidf\noutput: {tmp_path / 'run'}\nlabel_separator: ''\n")
    code, _, err = run_cli(capsys, "train", "--config", config)
    assert code != 0 and "must not be empty" in err
    assert not (tmp_path / "run").exists()


def test_report_reads_a_multilabel_run(run, tmp_path):
    """The report's tail examples of a multi-label run are texts that carry a tail label it did not predict."""
    from tailtune.report.build import build_report

    out, _ = run
    build_report(out.parent, output=tmp_path / "report.html")
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Misclassified tail examples" in markdown and "missing column" not in markdown
    # The summary shows the multi-label scores: samples-F1, not balanced accuracy (a single-label score).
    summary = next(line for line in markdown.splitlines() if line.startswith("| Variant"))
    assert "Samples-F1" in summary and "Balanced acc." not in summary


def test_config_and_card_record_the_multilabel_losses_and_rule(run):
    """config.json holds the losses that ran (the balancing one in stage 1, kept by stage 2's cross-entropy), and
    the model card shows how plain transformers reads the label sets."""
    out, _ = run
    stages = json.loads((out / "config.json").read_text())["run"]["stages"]
    assert [(stage["loss"], stage["weights"]) for stage in stages] == [("db", "none"), ("db", "none")]
    card = (out / "model" / "README.md").read_text(encoding="utf-8")
    assert 'function_to_apply="sigmoid"' in card and "one per label where they beat one threshold" in card
    assert "samples-F1" in card and "balanced accuracy" not in card


def test_a_multilabel_model_scores_a_file_of_one_label_a_text_as_sets_of_one(run, splits, tmp_path, capsys):
    """Cells of one label each (no separator needed) are label sets of one, never split into letters."""
    from conftest import run_cli

    out, _ = run
    single = splits.test.subset([i for i, row in enumerate(splits.test.labels) if len(row) == 1])
    source = tmp_path / "single.csv"
    pd.DataFrame({"text": single.texts, "label": [row[0] for row in single.labels]}).to_csv(source, index=False)
    code, printed, err = run_cli(capsys, "evaluate", "--model", out / "model", "--data", source)
    assert code == 0, err
    assert "micro-F1" in printed


def test_a_single_label_model_refuses_label_sets_in_one_line(splits, tmp_path, capsys):
    from conftest import run_cli

    texts = [t for t, row in zip(splits.train.texts, splits.train.labels, strict=True) if len(row) == 1]
    names = [row[0] for row in splits.train.labels if len(row) == 1]
    pd.DataFrame({"text": texts, "label": names}).to_csv(tmp_path / "single.csv", index=False)
    code, _, err = run_cli(capsys, "train", "--train", tmp_path / "single.csv", "--strategy", "tfidf", "--output",
                           tmp_path / "run", "-q")  # fmt: skip
    assert code == 0, err
    source = _write_csv(tmp_path / "sets.csv", splits.test)
    code, _, err = run_cli(capsys, "evaluate", "--model", tmp_path / "run" / "model", "--data", source,
                           "--label-separator", "|")  # fmt: skip
    assert code == 2 and "several labels a text" in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_predict_refuses_a_separator_inside_a_label_name():
    scores = np.array([[0.9, 0.8]])
    with pytest.raises(TailTuneError, match="holds '\\|'"):
        MultiLabel().predicted_columns(scores, ["grain|wheat", "corn"], separator="|")
    assert MultiLabel().predicted_columns(scores, ["grain|wheat", "corn"]) == {"predicted": [["grain|wheat", "corn"]]}


def test_joined_labels_are_named_before_empty_cells(tmp_path):
    from tailtune.data.readers import read_dataset

    path = tmp_path / "tags.csv"
    path.write_text("text,label\na,grain\nb,wheat\nc,grain|wheat\nd,\n", encoding="utf-8")
    with pytest.raises(TailTuneError, match="label_separator"):
        read_dataset(path)


def test_a_multilabel_only_parameter_is_refused_on_single_label_data():
    from tailtune.task import SingleLabel

    config = build_run_config("tiny", "vanilla", stages=[{"loss": "focal", "loss_params": {"alpha": 0.25}}])
    with pytest.raises(TailTuneError, match="unknown parameter\\(s\\) alpha for loss 'focal' on one label a text"):
        SingleLabel().prepare(config)
    assert MultiLabel().prepare(config).stages[0].loss_params == {"alpha": 0.25}


def test_integer_labels_stay_integers_in_the_label_sets_predict_writes():
    """As a single-label model's predicted column: a JSON list of 2, not of "2" (NumPy scalars become Python's)."""
    columns = MultiLabel().predicted_columns(np.array([[0.9, 0.2, 0.7]]), np.array([1, 2, 3]))
    assert columns == {"predicted": [[1, 3]]} and all(type(name) is int for name in columns["predicted"][0])
