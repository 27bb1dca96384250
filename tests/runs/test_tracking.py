"""Experiment trackers, offline: TensorBoard event files and MLflow's local file store hold the run."""

from __future__ import annotations

import json

import pytest

from tailtune.data.readers import read_dataset
from tailtune.data.types import Splits
from tailtune.errors import TailTuneError
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config


def _config(tiny_model, report_to: str):
    settings = {"epochs": 1, "min_steps": 0, "batch_size": 8, "max_length": 16, "logging_steps": 2, "seed": 3,
                "report_to": report_to}  # fmt: skip
    return build_run_config(tiny_model, "two-stage", settings=settings)


@pytest.fixture
def splits(tiny_data) -> Splits:
    return Splits(train=read_dataset(tiny_data["train"]), test=read_dataset(tiny_data["test"]))


def test_tensorboard_holds_losses_validation_and_final_scores(tiny_model, splits, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    metrics = train_run(_config(tiny_model, "tensorboard"), splits, run, show_progress=False)
    accumulator = EventAccumulator(str(run / "tensorboard" / "two-stage" / "seed-3")).Reload()  # the run's name
    tags = set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "validation/macro_f1", "test/macro_f1", "refit/train/loss"} <= tags
    (final,) = accumulator.Scalars("test/macro_f1")
    assert final.value == pytest.approx(metrics["macro_f1"], abs=1e-6)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in history if "step" in e and "phase" not in e]
    assert [s.value for s in accumulator.Scalars("train/loss")] == pytest.approx(losses, abs=1e-6)
    steps = [s.step for s in accumulator.Scalars("train/loss")]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # one count across both stages


def test_mlflow_file_store_holds_the_run(tiny_model, splits, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path / 'mlruns'}")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    metrics = train_run(_config(tiny_model, "mlflow"), splits, tmp_path / "run", show_progress=False)
    runs = mlflow.search_runs(experiment_names=["tailtune"])
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["metrics.test/macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert row["params.strategy"] == "two-stage" and row["params.seed"] == "3"


def test_missing_tracker_package_is_one_line_before_training(tiny_model, splits, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(TailTuneError, match=r"^report_to wandb: the wandb package is missing; pip install wandb$"):
        train_run(_config(tiny_model, "wandb"), splits, tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run").exists()
