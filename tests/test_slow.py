"""Slow end-to-end tests with the real embedded all-MiniLM-L6-v2 and BBC News (run with --runslow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailtune.data.builtin import bbc_news, minilm_path
from tailtune.data.imbalance import balanced_holdout
from tailtune.data.types import Splits, TextDataset
from tailtune.runs.rundir import is_complete
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config

pytestmark = pytest.mark.slow

TOPICS = ["business", "entertainment", "politics", "sports", "tech"]
TRAIN_PER_TOPIC = 30
TEST_PER_TOPIC = 10


def _sample(data: TextDataset, per_class: int, seed: int) -> TextDataset:
    rng = np.random.default_rng(seed)
    labels = np.array(data.labels)
    picked = [rng.choice(np.flatnonzero(labels == topic), per_class, replace=False) for topic in TOPICS]
    return data.subset(np.sort(np.concatenate(picked)))


@pytest.fixture(scope="module")
def bbc_splits() -> Splits:
    """30 training and 10 test articles per topic, disjoint."""
    data = bbc_news()
    test_idx, rest_idx = balanced_holdout(data.labels, per_class=TEST_PER_TOPIC, seed=0)
    test = data.subset(test_idx)
    train = _sample(data.subset(rest_idx), TRAIN_PER_TOPIC, seed=0)
    train.source, test.source = "bbc train sample", "bbc test sample"
    return Splits(train=train, test=test)


@pytest.fixture(scope="module")
def minilm_run(bbc_splits, tmp_path_factory) -> tuple[Path, dict]:
    """A two-stage run of MiniLM on the BBC sample: 1 epoch per stage, max_length 64, mean pooling (auto)."""
    settings = {"epochs": 1, "min_steps": 0, "lr": [1e-3, 1e-4], "max_length": 64, "batch_size": 16, "seed": 1,
                "eval_fraction": 0}  # fmt: skip
    config = build_run_config(minilm_path(), "two-stage", settings=settings)
    out = tmp_path_factory.mktemp("slow") / "minilm-two-stage"
    return out, train_run(config, bbc_splits, out, show_progress=False)


def test_minilm_two_stage_run(minilm_run):
    """The run completes with per-topic metrics, cached stage 1, and learns better than chance."""
    out, metrics = minilm_run
    assert is_complete(out)
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "history.jsonl", "metrics.json", "model", "predictions.csv", "train_texts.npy",
    ]  # fmt: skip
    assert metrics["split"] == "test" and metrics["n_examples"] == 5 * TEST_PER_TOPIC
    assert list(metrics["per_class"]) == TOPICS
    assert all(row["train_count"] == TRAIN_PER_TOPIC for row in metrics["per_class"].values())
    assert [(s["name"], s["cached"]) for s in metrics["stages"]] == [("stage1", True), ("stage2", False)]
    assert [s["steps"] for s in metrics["stages"]] == [10, 10]  # ceil(150 / 16)
    assert metrics["accuracy"] > 0.6  # chance is 0.2; this sample reaches about 0.9
    config = json.loads((out / "config.json").read_text())
    assert config["labels"] == TOPICS and config["run"]["max_length"] == 64
    # The embedded MiniLM is a sentence-transformers checkpoint: auto pooling reads the token mean.
    assert json.loads((out / "model" / "config.json").read_text())["tailtune_pooling"] == "mean"


def test_pipeline_loads_minilm_run(minilm_run, bbc_splits):
    """transformers.pipeline loads RUN/model (with its mean-pooling code) and agrees with predictions.csv."""
    from transformers import pipeline

    out, _ = minilm_run
    classify = pipeline("text-classification", model=str(out / "model"), device="cpu", trust_remote_code=True)
    texts = bbc_splits.test.texts[:12]
    results = classify(texts, truncation=True, max_length=64)
    expected = pd.read_csv(out / "predictions.csv")["predicted"].tolist()[:12]
    assert [r["label"] for r in results] == expected
    assert {r["label"] for r in results} <= set(TOPICS)
