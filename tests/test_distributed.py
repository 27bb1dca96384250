"""Two CPU processes (gloo) under torchrun: sharded training, gathered predictions, one writer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo on Windows is not supported here")
def test_two_processes_cover_the_test_set_exactly(tiny_model, tiny_data, tmp_path):
    """Metrics and predictions cover each test example once, though 31 examples do not split evenly."""
    test = pd.read_csv(tiny_data["test"])
    test = pd.concat([test, test.iloc[:1].assign(text="goal goal match extra")])  # 31 examples: an odd count
    test_path = tmp_path / "test.csv"
    test.to_csv(test_path, index=False)
    out = tmp_path / "run"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        torchrun, "--nproc_per_node", "2", "--master_port", "29533", "-m", "tailtune", "train",
        "--train", str(tiny_data["train"]), "--test", str(test_path), "--model", tiny_model,
        "--output", str(out), "--batch-size", "8", "--epochs", "1", "--min-steps", "0", "--max-length", "32", "-q",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]

    config = json.loads((out / "config.json").read_text())
    assert config["accelerate"]["num_processes"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_examples"] == len(test)
    assert sum(row["support"] for row in metrics["per_class"].values()) == len(test)
    predictions = pd.read_csv(out / "predictions.csv")
    assert sorted(predictions["text"]) == sorted(test["text"])
    # One process printed the summary, not both.
    assert result.stdout.count("run directory:") == 1
    # Each process trained on half of the batches: 56 examples / batch 8 = 7 batches -> 4 steps per process.
    steps = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert max(entry["step"] for entry in steps if "step" in entry) == 4
