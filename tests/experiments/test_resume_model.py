"""Resumed work knows its pretrained model by content: a search and an experiment refuse to go on with work done
from other weights saved under the same model path (the same file names, sizes and times), and say how to start
afresh; work recorded before tailtune fingerprinted models goes on."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from compare_config import write_config
from conftest import write_texts_csv
from model_weights import copy_model, reweigh

from tailtune.data.readers import read_dataset
from tailtune.data.types import Splits
from tailtune.errors import TailTuneError
from tailtune.experiments.runner import run_compare
from tailtune.experiments.tune import tune
from tailtune.models.fingerprint import model_fingerprint

FAST = {"max_length": 16, "batch_size": 8, "eval_batch_size": 16, "epochs": 1, "min_steps": 0, "patience": 1}


@pytest.fixture
def model(tiny_model, tmp_path) -> Path:
    """A copy of the tiny model that a test may change."""
    return copy_model(tiny_model, tmp_path / "model")


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> Splits:
    root = tmp_path_factory.mktemp("data")
    train = read_dataset(write_texts_csv(root / "train.csv", {"sport": 8, "tech": 6, "money": 4}, seed=1))
    held = read_dataset(write_texts_csv(root / "eval.csv", {"sport": 3, "tech": 3, "money": 3}, seed=2))
    return Splits(train, held, None)


def _tune(model: Path, splits: Splits, out: Path, trials: int):
    return tune(str(model), splits, out, strategies=["probe"], trials=trials, settings=FAST, show_progress=False)


# ------------------------------------------------------------------------------------------------------ tune


def test_tune_resumed_from_replaced_weights_is_refused(model, splits, tmp_path):
    """Weights replaced under the same path, sizes and times kept: refused before any trial, in one line."""
    out = tmp_path / "t"
    _tune(model, splits, out, trials=1)
    reweigh(model)
    with pytest.raises(TailTuneError, match=rf"started from another model: the weights or config.json now in "
                       rf"{model} differ from those its trials were trained from; choose another --output .*--fresh"
                       ) as info:  # fmt: skip
        _tune(model, splits, out, trials=2)
    assert "\n" not in str(info.value)
    assert len(pd.read_csv(out / "trials.csv")) == 1


def test_tune_resumed_from_the_same_weights_goes_on(model, splits, tmp_path):
    out = tmp_path / "t"
    _tune(model, splits, out, trials=1)
    assert _tune(model, splits, out, trials=2).n_trials == 2
    with sqlite3.connect(out / "study.db") as db:
        query = "SELECT value_json FROM study_user_attributes WHERE key = 'model_fingerprint'"
        (stored,) = db.execute(query).fetchone()
    assert json.loads(stored) == model_fingerprint(model)


def test_tune_study_without_a_model_record_resumes_with_a_warning(model, splits, tmp_path, caplog):
    """A study started before tailtune recorded its model's content: resumed (what its trials were trained from
    cannot be checked), and from then on checked."""
    out = tmp_path / "t"
    _tune(model, splits, out, trials=1)
    with sqlite3.connect(out / "study.db") as db:
        db.execute("DELETE FROM study_user_attributes WHERE key = 'model_fingerprint'")
    reweigh(model)
    with caplog.at_level(logging.WARNING, logger="tailtune.experiments.tune"):
        assert _tune(model, splits, out, trials=2).n_trials == 2
    assert "before tailtune recorded its model's content" in caplog.text
    reweigh(model)
    with pytest.raises(TailTuneError, match="started from another model"):
        _tune(model, splits, out, trials=3)


# --------------------------------------------------------------------------------------------------- compare


def _experiment(tmp_path: Path, model: Path, seeds: list[int]) -> Path:
    train = write_texts_csv(tmp_path / "train.csv", {"sport": 8, "tech": 6, "money": 4}, seed=1)
    test = write_texts_csv(tmp_path / "test.csv", {"sport": 3, "tech": 3, "money": 3}, seed=2)
    config = {
        "output": str(tmp_path / "out"), "model": str(model), "seeds": seeds, "baseline": "tfidf",
        "run": {"max_length": 16, "batch_size": 8}, "strategies": ["tfidf", {"probe": {"epochs": 1, "min_steps": 0}}],
        "data": {"variants": [{"name": "mine", "train": str(train), "test": str(test)}]},
    }  # fmt: skip
    return write_config(tmp_path / f"exp-{len(seeds)}.yaml", config)


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def test_compare_resumed_from_replaced_weights_is_refused(model, tmp_path):
    """Seed 1 trained, the weights replaced in place, seeds 1-2: refused before seed 2 trains; the TF-IDF runs, which
    start from no pretrained model, record none."""
    run_compare(_experiment(tmp_path, model, [1]), show_progress=False)
    runs = tmp_path / "out" / "mine"
    assert _config(runs / "probe" / "seed-1")["model_fingerprint"] == model_fingerprint(model)
    assert "model_fingerprint" not in _config(runs / "tfidf" / "seed-1")
    reweigh(model)
    with pytest.raises(TailTuneError, match=rf"probe.seed-1 is a complete run trained from another model: the "
                       rf"weights or config.json now in {model} differ from those it trained from; use another "
                       rf"--output, or delete {tmp_path / 'out'} to start afresh"):  # fmt: skip
        run_compare(_experiment(tmp_path, model, [1, 2]), show_progress=False)
    assert not (runs / "probe" / "seed-2").exists() and not (runs / "tfidf" / "seed-2").exists()


def test_compare_resumed_from_the_same_weights_goes_on(model, tmp_path):
    run_compare(_experiment(tmp_path, model, [1]), show_progress=False)
    result = run_compare(_experiment(tmp_path, model, [1, 2]), show_progress=False)
    assert len(result.skipped) == 2 and len(result.trained) == 2


def test_compare_counts_a_run_without_a_model_fingerprint_with_a_warning(model, tmp_path, caplog):
    """A run written before tailtune fingerprinted models: counted as it is (its weights cannot be checked)."""
    run_compare(_experiment(tmp_path, model, [1]), show_progress=False)
    path = tmp_path / "out" / "mine" / "probe" / "seed-1" / "config.json"
    record = json.loads(path.read_text())
    del record["model_fingerprint"]
    path.write_text(json.dumps(record))
    reweigh(model)
    with caplog.at_level(logging.WARNING, logger="tailtune"):
        result = run_compare(_experiment(tmp_path, model, [1, 2]), show_progress=False)
    assert len(result.skipped) == 2 and result.summary["rows"][0]["n_seeds"] == 2
    assert "1 complete run(s) predate model fingerprints" in caplog.text
