"""Resumed work knows its data: a search, an experiment and a pooled report refuse work done on other data or
with other settings (data compared by content, not path), and say how to start afresh."""

from __future__ import annotations

import json
import logging
import random
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from compare_config import write_config
from conftest import run_cli, write_texts_csv

from tailtune.data.readers import read_dataset
from tailtune.data.types import Splits
from tailtune.errors import TailTuneError
from tailtune.experiments.runner import run_compare
from tailtune.experiments.summary import summarize
from tailtune.experiments.tune import tune
from tailtune.runs.records import find_runs
from tailtune.runs.rundir import is_complete
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config

COUNTS = {"sport": 20, "tech": 12, "money": 8}


def _reshuffle(path: Path, seed: int = 3) -> Path:
    """Rewrite ``path`` with its texts moved to other rows: the same labels, in the same order, so the same counts."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    texts = frame["text"].tolist()
    random.Random(seed).shuffle(texts)
    frame["text"] = texts
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    return {
        "train": write_texts_csv(tmp_path / "train.csv", COUNTS, seed=1),
        "test": write_texts_csv(tmp_path / "test.csv", {"sport": 5, "tech": 5, "money": 5}, seed=2),
    }


def _splits(files: dict[str, Path]) -> Splits:
    return Splits(read_dataset(files["train"]), None, read_dataset(files["test"]))


def _tune(files, out: Path, *, trials: int, **kwargs):
    return tune(None, _splits(files), out, strategies=["tfidf"], trials=trials, show_progress=False, **kwargs)


# ------------------------------------------------------------------------------------------------------ tune


def test_tune_resumed_on_another_file_is_refused(files, tmp_path):
    """Another training file into the same folder: refused before any trial, the study's trials untouched."""
    out = tmp_path / "t"
    _tune(files, out, trials=2)
    other = {**files, "train": write_texts_csv(tmp_path / "other.csv", COUNTS, seed=7)}
    with pytest.raises(TailTuneError, match=r"started on other data: the train data now given \(.*other.csv\) "
                       r"differs in content; choose another --output .*--fresh"):  # fmt: skip
        _tune(other, out, trials=4)
    assert len(pd.read_csv(out / "trials.csv")) == 2


def test_tune_resumed_on_a_reshuffled_file_is_refused(files, tmp_path):
    """The same path, labels and counts, texts on other rows: other data."""
    out = tmp_path / "t"
    _tune(files, out, trials=1)
    _reshuffle(files["train"])
    with pytest.raises(TailTuneError, match="started on other data: the train data"):
        _tune(files, out, trials=2)


def test_tune_resumed_with_another_setting_is_refused(files, tmp_path):
    out = tmp_path / "t"
    _tune(files, out, trials=1, settings={"eval_fraction": 0.2})
    with pytest.raises(TailTuneError, match=r"started with other settings \(eval_fraction 0.2, now 0.3\)"):
        _tune(files, out, trials=2, settings={"eval_fraction": 0.3})


def test_tune_resumed_on_the_same_data_goes_on(files, tmp_path):
    """The same content under another path is the same data: the search resumes."""
    out = tmp_path / "t"
    _tune(files, out, trials=1)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(files["train"].read_bytes())
    result = _tune({**files, "train": copy}, out, trials=2)
    assert result.n_trials == 2


def test_tune_fresh_starts_afresh(files, tmp_path, capsys):
    """--fresh deletes the old study and its trials, and searches the new data from the first trial."""
    out = tmp_path / "t"
    common = ["tune", "--test", files["test"], "--strategies", "tfidf", "--output", out, "-q"]
    assert run_cli(capsys, *common, "--train", files["train"], "--trials", 3)[0] == 0
    other = write_texts_csv(tmp_path / "other.csv", COUNTS, seed=7)
    code, _, err = run_cli(capsys, *common, "--train", other, "--trials", 2)
    assert code != 0 and err.count("\n") == 1 and "pass --fresh to start afresh" in err
    code, out_text, _ = run_cli(capsys, *common, "--train", other, "--trials", 2, "--fresh")
    assert code == 0 and "2 trials" in out_text
    assert pd.read_csv(out / "trials.csv")["number"].tolist() == [0, 1]
    assert sorted(p.name for p in (out / ".trials").iterdir()) == ["trial-0", "trial-1"]
    assert json.loads((out / "best" / "config.json").read_text())["data"]["train"] == str(other)


def test_tune_study_without_a_data_record_resumes_with_a_warning(files, tmp_path, caplog):
    """A study started before tailtune recorded its data: resumed, with a warning that it cannot be checked."""
    out = tmp_path / "t"
    _tune(files, out, trials=1)
    with sqlite3.connect(out / "study.db") as db:
        db.execute("DELETE FROM study_user_attributes WHERE key IN ('data', 'settings')")
    with caplog.at_level(logging.WARNING, logger="tailtune.experiments.tune"):
        assert _tune(files, out, trials=2).n_trials == 2
    assert "before tailtune recorded its data" in caplog.text


# --------------------------------------------------------------------------------------------------- compare


def _experiment(tmp_path: Path, model: str, train: Path, test: Path, seeds: list[int]) -> Path:
    config = {
        "output": str(tmp_path / "out"), "model": model, "seeds": seeds, "baseline": "tfidf", "strategies": ["tfidf"],
        "data": {"variants": [{"name": "mine", "train": str(train), "test": str(test)}]},
    }  # fmt: skip
    return write_config(tmp_path / f"exp-{len(seeds)}.yaml", config)


def test_compare_resumed_on_a_reshuffled_training_file_is_refused(files, tmp_path, tiny_model):
    """Seed 1 on the file, the file reshuffled (same labels and counts), seeds 1-2: refused before seed 2 trains."""
    run_compare(_experiment(tmp_path, tiny_model, files["train"], files["test"], [1]), show_progress=False)
    _reshuffle(files["train"])
    config = _experiment(tmp_path, tiny_model, files["train"], files["test"], [1, 2])
    with pytest.raises(
        TailTuneError,
        match=r"seed-1 is a complete run trained on other data: the train data now "
        r"given \(.*train.csv\) differs in content; use another --output, or delete .*mine",
    ):
        run_compare(config, show_progress=False)
    assert not (tmp_path / "out" / "mine" / "tfidf" / "seed-2").exists()


def test_compare_resumed_on_the_same_data_goes_on(files, tmp_path, tiny_model):
    run_compare(_experiment(tmp_path, tiny_model, files["train"], files["test"], [1]), show_progress=False)
    result = run_compare(_experiment(tmp_path, tiny_model, files["train"], files["test"], [1, 2]), show_progress=False)
    assert len(result.skipped) == 1 and len(result.trained) == 1


def test_compare_counts_a_run_without_fingerprints_with_a_warning(files, tmp_path, tiny_model, caplog):
    """A run written before tailtune fingerprinted data: counted as it is (its data cannot be checked), with a warning
    at resuming and at pooling."""
    run_compare(_experiment(tmp_path, tiny_model, files["train"], files["test"], [1]), show_progress=False)
    config_path = tmp_path / "out" / "mine" / "tfidf" / "seed-1" / "config.json"
    record = json.loads(config_path.read_text())
    del record["fingerprints"]
    config_path.write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="tailtune"):
        result = run_compare(_experiment(tmp_path, tiny_model, files["train"], files["test"], [1, 2]),
                             show_progress=False)  # fmt: skip
    assert result.summary["rows"][0]["n_seeds"] == 2
    assert "1 complete run(s) predate data fingerprints" in caplog.text
    assert "1 run(s) predate data fingerprints" in caplog.text


def test_made_variant_from_an_edited_source_is_refused(tmp_path, tiny_model):
    """Data made from a source reshuffled since is not silently reused."""
    source = write_texts_csv(tmp_path / "source.csv", {"sport": 10, "tech": 10, "money": 10}, seed=3)
    config = {
        "output": str(tmp_path / "out"), "model": tiny_model, "seeds": [1], "baseline": "tfidf",
        "strategies": ["tfidf"],
        "data": {"source": str(source), "make": {"ratios": [2], "max_per_class": 6, "test_per_class": 3, "seed": 0}},
    }  # fmt: skip
    path = write_config(tmp_path / "exp.yaml", config)
    run_compare(path, show_progress=False)
    _reshuffle(source)
    with pytest.raises(TailTuneError, match=r"ratio-2/data was made from other data: the source data \(.*source.csv\) "
                       r"has changed since; use another --output, or delete that variant's folder"):  # fmt: skip
        run_compare(path, show_progress=False)


# ---------------------------------------------------------------------------------------------------- report


def test_report_refuses_to_pool_seeds_of_different_data(files, tmp_path, capsys):
    """Two runs from one path whose content changed between them are no seeds of one setup."""
    config = build_run_config(None, "tfidf")
    train_run(config.replace(seed=1), _splits(files), tmp_path / "runs" / "s1", show_progress=False)
    _reshuffle(files["train"])
    train_run(config.replace(seed=2), _splits(files), tmp_path / "runs" / "s2", show_progress=False)
    with pytest.raises(
        TailTuneError,
        match=r"s1 and .*s2 cannot be pooled as runs of variant default: they were "
        r"trained on different train data \(.*train.csv, content \w{12} vs \w{12}\)",
    ):
        summarize(find_runs(tmp_path / "runs"), baseline="tfidf")
    code, _, err = run_cli(capsys, "report", tmp_path / "runs")
    assert code != 0 and "trained on different train data" in err and err.count("\n") == 1
    assert is_complete(tmp_path / "runs" / "s1") and not (tmp_path / "runs" / "report.html").exists()
