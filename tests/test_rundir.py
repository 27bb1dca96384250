"""The run directory's writers: the exact bytes of each file, completeness, and reading a run back."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tailtune import rundir
from tailtune.errors import TailTuneError

CONFIG = {"tailtune_version": "0.1.0", "run": {"strategy": "vanilla", "seed": 3}, "labels": ["ä", "b"]}
METRICS = {"macro_f1": 0.5, "per_class": {"ä": {"f1": 0.25}}, "split": "test"}


def test_files_have_the_layout_training_writes(tmp_path):
    run = tmp_path / "run"
    rundir.write_config(run, CONFIG)
    rundir.reset_history(run)
    entries = [{"stage": 0, "stage_name": "finetune", "step": 10, "loss": 0.5, "lr": 1e-5}, {"eval_macro_f1": 0.4}]
    for entry in entries:
        rundir.append_history(run, entry)
    frame = pd.DataFrame({"text": ["a, b", "c"], "label": ["ä", "b"], "predicted": ["b", "b"], "score": [0.5, 1.0]})
    rundir.write_predictions(run, frame)
    with rundir.writing_model(run) as folder:
        (folder / "weights.bin").write_bytes(b"w")
    assert not rundir.is_complete(run)
    rundir.write_metrics(run, METRICS)

    assert rundir.is_complete(run)
    assert (run / "config.json").read_text(encoding="utf-8") == json.dumps(CONFIG, indent=2, ensure_ascii=False) + "\n"
    assert (run / "history.jsonl").read_text(encoding="utf-8") == "".join(json.dumps(e) + "\n" for e in entries)
    assert (run / "predictions.csv").read_text(encoding="utf-8") == frame.to_csv(index=False)
    assert (run / "model" / "weights.bin").read_bytes() == b"w"
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "history.jsonl", "metrics.json", "model", "predictions.csv",
    ]  # fmt: skip

    record = rundir.load_run(run)
    assert (record.strategy, record.seed, record.variant, record.labels) == ("vanilla", 3, "default", ["ä", "b"])
    assert record.metrics == METRICS
    assert record.predictions()["label"].tolist() == ["ä", "b"]


def test_starting_a_run_again_marks_it_incomplete(tmp_path):
    rundir.write_config(tmp_path, CONFIG)
    rundir.append_history(tmp_path, {"step": 1})
    rundir.write_metrics(tmp_path, METRICS)
    rundir.write_config(tmp_path, CONFIG)
    rundir.reset_history(tmp_path)
    assert not rundir.is_complete(tmp_path)
    assert (tmp_path / "history.jsonl").read_text(encoding="utf-8") == ""
    with pytest.raises(TailTuneError, match="incomplete run"):
        rundir.load_run(tmp_path)


def test_a_failed_model_save_leaves_no_model(tmp_path):
    with pytest.raises(RuntimeError), rundir.writing_model(tmp_path) as folder:
        (folder / "half.bin").write_bytes(b"x")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_waiting_lock_lets_the_holder_finish_first(tmp_path):
    """A second process (here: a second open file) waits on waiting_lock until the holder leaves."""
    import threading
    import time

    from tailtune.fileio import waiting_lock

    path, order = tmp_path / "sub" / ".data.lock", []

    def second() -> None:
        with waiting_lock(path):
            order.append("second")

    with waiting_lock(path):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "second"]
