"""The model card in every saved model folder: Hugging Face metadata that parses, numbers from metrics.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_texts
from huggingface_hub import ModelCard

from tailtune.classifier import TailTuner
from tailtune.data.readers import read_dataset
from tailtune.data.types import Splits
from tailtune.models.card import CARD_FILE, MINILM_HUB_ID, base_model_id
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config

# A hostile name for the rarest class: it must come out escaped in the Markdown.
LABELS = {"sport": "sport", "tech": "tech|<b>AI</b>", "money": "money_*"}


@pytest.fixture(scope="module")
def run(tiny_model, tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("card")
    for name, counts, seed in (("train", {"sport": 24, "tech": 4, "money": 10}, 1), ("test", None, 2)):
        texts, labels = make_texts(counts or {"sport": 6, "tech": 6, "money": 6}, seed=seed)
        frame = pd.DataFrame({"text": texts, "label": [LABELS[y] for y in labels]})
        frame.to_csv(root / f"{name}.csv", index=False)
    splits = Splits(train=read_dataset(root / "train.csv"), test=read_dataset(root / "test.csv"))
    config = build_run_config(tiny_model, "two-stage", settings={"epochs": 1, "min_steps": 0, "batch_size": 8,
                                                                 "max_length": 16})  # fmt: skip
    out = root / "run"
    return out, train_run(config, splits, out, show_progress=False)


def test_card_metadata_parses_and_matches_metrics(run):
    out, metrics = run
    card = ModelCard.load(out / "model" / CARD_FILE)
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "text-classification"
    assert "tailtune" in data["tags"] and "two-stage" in data["tags"]
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {key: round(metrics[key], 4) for key in ("macro_f1", "micro_f1", "balanced_accuracy", "tail_f1")}
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}


def test_card_body_orders_classes_head_to_tail_and_names_the_rare_ones(run):
    out, metrics = run
    text = (out / "model" / CARD_FILE).read_text(encoding="utf-8")
    escaped_tech = r"tech\|&lt;b&gt;AI&lt;/b&gt;"
    assert "<b>" not in text and escaped_tech in text and r"money\_\*" in text
    results = text.split("## Results", 1)[1].split("## ", 1)[0]
    rows = [line for line in results.splitlines() if line.startswith("| ")][2:]  # after header and rule
    assert [re.split(r"(?<!\\)\|", row)[1].strip() for row in rows] == ["sport", r"money\_\*", escaped_tech]
    for row, name in zip(rows, ["sport", "money_*", "tech|<b>AI</b>"], strict=True):
        assert f"| {metrics['per_class'][name]['f1']:.4f} |" in row
    assert "imbalance ratio 6" in text
    limits = text.split("## Limits", 1)[1]
    assert r"money\_\* (10)" in limits and escaped_tech + " (4)" in limits and "sport" not in limits
    assert 'pipeline("text-classification", model="PATH")' in text


def test_tailtuner_save_writes_a_card_and_load_save_keeps_it(tiny_model, tmp_path):
    texts, labels = make_texts({"sport": 8, "tech": 4}, seed=4)
    tuner = TailTuner(tiny_model, "vanilla", epochs=1, min_steps=0, max_length=16, eval_fraction=0,
                      show_progress=False).fit(texts, labels)  # fmt: skip
    first = tuner.save(tmp_path / "a") / CARD_FILE
    card = ModelCard.load(first)
    assert card.data.eval_results is None and "sport" in card.text
    TailTuner.load(tmp_path / "a").save(tmp_path / "b")
    assert (tmp_path / "b" / CARD_FILE).read_text() == first.read_text()


def test_card_of_an_ordinary_checkpoint_needs_no_remote_code(run):
    """A [CLS]-pooled linear-head model is an ordinary checkpoint: the card asks for no trust_remote_code."""
    out, _ = run
    text = (out / "model" / CARD_FILE).read_text(encoding="utf-8")
    assert "trust_remote_code" not in text and "pooling cls (chosen by auto), head linear" in text


def test_card_of_a_mean_pooling_model_says_what_remote_code_runs(tiny_model, tmp_path):
    """pooling 'auto' on a sentence-transformers checkpoint mean-pools: the card says so, asks for
    trust_remote_code, names the file it runs, and how to train a model that needs none."""
    import shutil

    folder = tmp_path / "sentence-model"
    shutil.copytree(tiny_model, folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))  # fmt: skip
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    texts, labels = make_texts({"sport": 8, "tech": 4}, seed=4)
    tuner = TailTuner(str(folder), "vanilla", pooling="auto", epochs=1, min_steps=0, max_length=16,
                      eval_fraction=0, show_progress=False).fit(texts, labels)  # fmt: skip
    text = (tuner.save(tmp_path / "model") / CARD_FILE).read_text(encoding="utf-8")
    assert "pooling mean (chosen by auto), head linear" in text
    assert 'pipeline("text-classification", model="PATH", trust_remote_code=True)' in text
    assert "`tailtune_pooling.py` (`TailTuneMeanPoolingBertForSequenceClassification`)" in text
    assert "runs that file and nothing else" in text and "fetches no code from the network" in text
    assert "`--pooling cls --head linear`" in text
    # The usage line cuts texts where tailtune does with long_texts truncate (the saved tokenizer states the trained
    # length as its limit), so the pipeline agrees with it on texts longer than that.
    assert 'classifier("a new text", truncation=True)' in text
    assert "`truncation=True` reads the first 16 tokens of a longer text" in text
    # Without validation data (eval_fraction 0) long_texts auto truncates, so tailtune reads as the pipeline does.
    assert "as the model was trained and as tailtune reads it" in text
    from transformers import pipeline

    long_texts = [" ".join(texts[i : i + 6]) for i in range(0, 12, 6)]
    classify = pipeline("text-classification", model=str(tmp_path / "model"), device="cpu", trust_remote_code=True)
    results = classify(long_texts, truncation=True)
    cut = TailTuner.load(tmp_path / "model", mixed_precision="no", long_texts="truncate")
    probs = cut.predict_proba(long_texts)
    assert [r["label"] for r in results] == list(cut.predict(long_texts))
    np.testing.assert_allclose([r["score"] for r in results], probs.max(axis=1), atol=1e-5)


def test_base_model_id():
    assert base_model_id("bert-base-uncased") == "bert-base-uncased"
    assert base_model_id("org/model") == "org/model"
    assert base_model_id("/some/local/folder") is None
    assert json.dumps(MINILM_HUB_ID).count("/") == 1


def test_card_leaves_unmeasured_classes_and_groups_unscored():
    """A test set without the rare classes: their rows read "-", the tail F1 "not measured", never 0."""
    from tailtune.metrics import compute_metrics
    from tailtune.models.card import _results_section

    labels, counts = ["sport", "money", "tech"], [24, 10, 4]
    metrics = {**compute_metrics([0, 0, 1], [0, 0, 1], label_names=labels, train_counts=counts), "split": "test"}
    results = "\n".join(_results_section(metrics))
    assert "macro-F1 1.0000" in results and "medium F1 1.0000, tail F1 not measured" in results
    assert "no prediction are not scored and not in the averages: tech." in results
    assert "| tech | tail | 4 | - | - | - | 0 |" in results


def test_card_of_many_classes_folds_its_tables_and_names_the_rarest_and_the_confusions():
    """60 classes: every row kept, head to tail, in collapsed blocks; above them the rarest, weakest and confusions."""
    from longtail import HEAD, HEAD_TO_TAIL, MIDDLE, NAMES, RAREST, TRAIN_COUNTS, long_tail_metrics

    from tailtune.models.card import FOLD_CLASSES, model_card

    assert len(NAMES) > FOLD_CLASSES
    config = build_run_config("tiny-bert", "two-stage", settings={"max_length": 16})
    text = model_card(config, NAMES, TRAIN_COUNTS, long_tail_metrics(), saved_config={})
    ordered = [NAMES[c] for c in HEAD_TO_TAIL]
    data = text.split("## Training data", 1)[1].split("## ", 1)[0]
    assert "head: 20 classes of " in data and "tail: 20 classes of 2-" in data
    assert [line.split(" | ")[0][2:] for line in data.splitlines() if line.startswith("| class-")] == ordered
    results = text.split("## Results", 1)[1].split("## ", 1)[0]
    visible, folded = results.split("<details><summary>Per class: all 60 classes", 1)
    assert "| class-" not in visible and folded.rstrip().endswith("</details>")
    assert [line.split(" | ")[0][2:] for line in folded.splitlines() if line.startswith("| class-")] == ordered
    assert f"Rarest classes: {NAMES[RAREST]} (2 train, F1 0.000), " in visible
    assert f"Lowest F1: {NAMES[RAREST]} 0.000 (2 train), " in visible
    assert f"- {NAMES[MIDDLE]} -> {NAMES[HEAD]}: 6 of 10" in visible
    limits = text.split("## Limits", 1)[1]
    assert "classes have fewer than 20 training examples (all in the table above); the rarest: " in limits
    assert limits.index(f"{NAMES[RAREST]} (2)") < limits.index(f"{NAMES[HEAD_TO_TAIL[-2]]} (")


def test_card_of_few_classes_shows_its_table_and_confusions_unfolded():
    from tailtune.metrics import compute_metrics
    from tailtune.models.card import _results_section

    labels, counts = ["sport", "money", "tech"], [24, 10, 4]
    metrics = {**compute_metrics([0, 1, 2, 2], [0, 1, 0, 2], label_names=labels, train_counts=counts),
               "split": "test"}  # fmt: skip
    results = "\n".join(_results_section(metrics))
    assert "<details>" not in results and "Rarest classes" not in results
    assert "- tech -> sport: 1 of 2" in results and "| tech | tail | 4 | 1.0000 | 0.5000 | 0.6667 | 2 |" in results
