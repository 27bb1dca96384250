"""Fault injection: commands killed with SIGKILL at seeded random moments, then the invariants checked.

A complete run is never lost or mixed with another, an incomplete one never looks complete, running the same
command again finishes every run exactly once, and ``summary.csv`` covers each run once. Kill moments are
drawn between 30% and 100% of the command's own uninterrupted duration (measured first), so they land in
loading, training and saving rather than in the interpreter's start-up.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import write_texts_csv

from tailtune.runs.rundir import HISTORY_FILE, METRICS_FILE, is_complete

KILLS_PER_COMMAND = 3


def _command(*argv: object) -> list[str]:
    return [sys.executable, "-m", "tailtune", *(str(a) for a in argv)]


def _env() -> dict[str, str]:
    return {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def _run(argv: list[str]) -> float:
    """Run to the end; return its duration."""
    start = time.perf_counter()
    result = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return time.perf_counter() - start


def _kill_after(argv: list[str], seconds: float) -> None:
    """Start the command and SIGKILL it after ``seconds`` (if it is still running)."""
    process = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()


def _moments(duration: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return sorted(rng.uniform(0.3, 1.0) * duration for _ in range(KILLS_PER_COMMAND))


def _check_run(run: Path) -> dict:
    """A complete run is whole: its metrics, config, history (valid JSON lines) and a loadable model."""
    assert is_complete(run)
    metrics = json.loads((run / METRICS_FILE).read_text())
    json.loads((run / "config.json").read_text())
    entries = [json.loads(line) for line in (run / HISTORY_FILE).read_text().splitlines()]
    steps = [(e.get("phase", ""), e["stage"], e["step"]) for e in entries if "step" in e]
    assert steps == sorted(set(steps)), "history lines are doubled or out of order"
    assert (run / "model" / "model.safetensors").is_file()
    return metrics


def _tree(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    return write_texts_csv(tmp_path_factory.mktemp("faults") / "train.csv", {"sport": 24, "tech": 10, "money": 6},
                           seed=5)  # fmt: skip


@pytest.fixture(scope="module")
def balanced_csv(tmp_path_factory) -> Path:
    return write_texts_csv(tmp_path_factory.mktemp("faults") / "source.csv", {"sport": 14, "tech": 14, "money": 14},
                           seed=6)  # fmt: skip


def _train_argv(model: str, data: Path, out: Path, *extra: object) -> list[str]:
    return _command("train", "--model", model, "--train", data, "--test", data, "--output", out,
                    "--strategy", "two-stage", "--epochs", "2", "--min-steps", "0", "--max-length", "16", "-q",
                    *extra)  # fmt: skip


# Kills and restarts whole processes (tens of seconds): with the slow tests, which CI runs too.
@pytest.mark.slow
def test_killed_train_and_overwrite(tiny_model, small_csv, tmp_path):
    """A killed --overwrite leaves the old run or the new one, whole; a killed fresh run leaves nothing."""
    out = tmp_path / "run"
    duration = _run(_train_argv(tiny_model, small_csv, out))
    old = _tree(out)
    for number, moment in enumerate(_moments(duration, seed=1), start=7):
        _kill_after(_train_argv(tiny_model, small_csv, out, "--overwrite", "--seed", number), moment)
        _check_run(out)
        now = _tree(out)
        if now != old:  # the new run replaced the old one whole
            assert json.loads((out / "config.json").read_text())["run"]["seed"] == number
            old = now

    # A kill leaves its staging folder and lock file (SIGKILL runs no clean-up); the next claim removes them.
    _run(_train_argv(tiny_model, small_csv, out, "--overwrite"))
    _check_run(out)

    fresh = tmp_path / "fresh"
    _kill_after(_train_argv(tiny_model, small_csv, fresh), _moments(duration, seed=2)[0])
    if fresh.exists():  # only ever published whole
        _check_run(fresh)
    _run(_train_argv(tiny_model, small_csv, fresh, "--overwrite"))
    _check_run(fresh)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "run"]  # no staging or lock left behind


def _experiment(tmp_path: Path, model: str, source: Path) -> Path:
    config = {
        "output": str(tmp_path / "out"), "model": model, "seeds": [1, 2, 3], "baseline": "vanilla",
        "run": {"max_length": 16, "batch_size": 8},
        "strategies": [{"vanilla": {"epochs": 2, "min_steps": 0, "lr": "1e-3"}}],
        "data": {"source": str(source), "make": {"ratios": [2], "max_per_class": 8, "test_per_class": 3, "seed": 0}},
    }  # fmt: skip
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _check_experiment(out: Path) -> None:
    runs = sorted(out.glob("ratio-2/vanilla/seed-*"))
    assert [r.name for r in runs] == ["seed-1", "seed-2", "seed-3"]
    for run in runs:
        _check_run(run)
    summary = pd.read_csv(out / "summary.csv")
    assert summary[["variant", "strategy"]].values.tolist() == [["ratio-2", "vanilla"]]
    assert summary["n_seeds"].tolist() == [3] and summary["seeds"].tolist() == ["1;2;3"]


# Kills and restarts whole processes (tens of seconds): with the slow tests, which CI runs too.
@pytest.mark.slow
def test_killed_compare_resumes_to_every_run_once(tiny_model, balanced_csv, tmp_path):
    (tmp_path / "timing").mkdir()
    duration = _run(_command("compare", "--config", _experiment(tmp_path / "timing", tiny_model, balanced_csv), "-q"))
    config = _experiment(tmp_path, tiny_model, balanced_csv)
    for moment in _moments(duration, seed=3):
        _kill_after(_command("compare", "--config", config, "-q"), moment)
        for run in (tmp_path / "out").glob("ratio-2/vanilla/seed-*"):
            if is_complete(run):
                _check_run(run)
    _run(_command("compare", "--config", config, "-q"))
    _check_experiment(tmp_path / "out")


# Kills and restarts whole processes (tens of seconds): with the slow tests, which CI runs too.
@pytest.mark.slow
def test_two_compare_workers_share_one_output(tiny_model, balanced_csv, tmp_path):
    """Two workers started together finish the experiment between them, each run trained by exactly one."""
    config = _experiment(tmp_path, tiny_model, balanced_csv)
    subprocess.run(_command("compare", "--config", config, "--dry-run"), env=_env(), check=True,
                   capture_output=True)  # fmt: skip
    workers = [
        subprocess.Popen(
            _command("compare", "--config", config),  # not -q: the log names each run a worker trained
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    logs = [worker.communicate(timeout=300) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], logs
    _check_experiment(tmp_path / "out")
    trained = sum(err.count(" done in ") for _, err in logs)
    assert trained == 3, logs


def test_killed_make_imbalanced_is_whole_or_incomplete(small_csv, tmp_path):
    out = tmp_path / "made"

    def argv(seed: int) -> list[str]:
        return _command("make-imbalanced", "--input", small_csv, "--output", out, "--ratio", "4",
                        "--test-per-class", "2", "--seed", seed)  # fmt: skip

    duration = _run(argv(0))
    for number, moment in enumerate(_moments(duration, seed=4), start=1):
        _kill_after(argv(number), moment)
        if (out / "counts.json").exists():  # complete: the files agree with the counts
            counts = json.loads((out / "counts.json").read_text())
            train = pd.read_csv(out / "train.csv")
            assert train["label"].value_counts().to_dict() == counts["train"]
