"""The resumable runner (:mod:`tailtune.experiments.runner`): a complete compare, resuming, interruption, tuned
runs and a run that fails alone."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
from compare_config import STRATEGIES, VARIANTS, compare, config_dict, run_dirs, write_config

from tailtune.experiments import runner
from tailtune.experiments.runner import CompareInterrupted, run_compare
from tailtune.runs.rundir import is_complete, staging_dir
from tailtune.strategies import build_run_config


@pytest.fixture
def count_training(monkeypatch) -> list[Path]:
    """Wrap train_run and record the run directories it trains."""
    calls: list[Path] = []
    real = runner.train_run

    def counted(config, splits, output_dir, **kwargs):
        calls.append(Path(output_dir))
        return real(config, splits, output_dir, **kwargs)

    monkeypatch.setattr(runner, "train_run", counted)
    return calls


def test_compare_end_to_end(compared):
    out, result = compared["output"], compared["result"]
    assert result.trained == run_dirs(out) and result.skipped == []
    assert (result.summary_csv, result.summary_json) == (out / "summary.csv", out / "summary.json")
    for run in run_dirs(out):
        assert is_complete(run), run
        config = json.loads((run / "config.json").read_text())
        variant = run.parent.parent.name
        assert config["variant"] == variant
        assert config["variant_info"] == {"ratio": int(variant.split("-")[1]), "profile": "exp"}
        assert config["run"]["cache_dir"] == str(out / ".cache")
    for variant in VARIANTS:
        folder = out / variant / "data"
        assert {p.name for p in folder.iterdir()} == {"train.parquet", "test.parquet", "counts.json", "data.json"}
        counts = json.loads((folder / "counts.json").read_text())
        assert counts["test"] == {"money": 3, "sport": 3, "tech": 3}
        assert max(counts["train"].values()) == 8
    assert any((out / ".cache").iterdir())  # two-stage's frozen-bottom features
    summary = json.loads((out / "summary.json").read_text())
    assert {(r["variant"], r["strategy"], r["n_seeds"]) for r in summary["rows"]} == {
        (v, s, 2) for v in VARIANTS for s in STRATEGIES
    }
    assert (out / "summary.csv").is_file()
    assert result.summary == summary


def test_resume_trains_only_missing_runs(compared, tmp_path, count_training, caplog):
    out = tmp_path / "out"
    shutil.copytree(compared["output"], out)
    deleted, half = out / "ratio-2/vanilla/seed-1", out / "ratio-4/two-stage/seed-2"
    (deleted / "metrics.json").unlink()
    (half / "metrics.json").unlink()
    shutil.rmtree(half / "model")
    (half / "leftover.tmp").write_text("x")
    kept = {run: (run / "metrics.json").stat().st_mtime_ns for run in run_dirs(out) if is_complete(run)}
    data_stamp = (out / "ratio-2/data/train.parquet").stat().st_mtime_ns
    assert len(kept) == 6

    with caplog.at_level(logging.INFO, logger="tailtune.experiments.runner"):
        result = run_compare(compared["config"], output=out, show_progress=False)
    assert sorted(count_training) == sorted([deleted, half]) == sorted(result.trained)
    assert len(result.skipped) == 6
    assert all(is_complete(run) for run in run_dirs(out))
    assert not (half / "leftover.tmp").exists()
    assert {run: (run / "metrics.json").stat().st_mtime_ns for run in kept} == kept
    assert (out / "ratio-2/data/train.parquet").stat().st_mtime_ns == data_stamp  # data reused, not remade
    assert caplog.text.count("skipping complete run") == 6


def test_interrupt_keeps_complete_runs_and_resumes(tmp_path, tiny_model, source_csv, monkeypatch, capsys):
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config.update(seeds=[1, 2, 3], strategies=[{"vanilla": {"epochs": 1}}])
    config["data"]["make"]["ratios"] = [2]
    path = write_config(tmp_path / "exp.yaml", config)
    real, calls, interrupt = runner.train_run, [], {"at": 3}

    def train(conf, splits, output_dir, **kwargs):
        calls.append(Path(output_dir))
        if len(calls) == interrupt["at"]:
            staging = staging_dir(output_dir)
            staging.mkdir(parents=True, exist_ok=True)
            (staging / "config.json").write_text("{}")  # a run cut off half-way
            raise KeyboardInterrupt
        return real(conf, splits, output_dir, **kwargs)

    monkeypatch.setattr(runner, "train_run", train)
    with pytest.raises(CompareInterrupted) as info:
        run_compare(path, show_progress=False)
    assert (info.value.done, info.value.total, info.value.output) == (2, 3, tmp_path / "out")
    # The command line says how far it got and exits with 130.
    calls.clear()
    interrupt["at"] = 1
    assert compare("--config", path) == 130
    err = capsys.readouterr().err
    assert "interrupted: 2 of 3 runs complete" in err and "run the same command again to resume" in err
    runs = [tmp_path / "out/ratio-2/vanilla" / f"seed-{k}" for k in (1, 2, 3)]
    assert [is_complete(r) for r in runs] == [True, True, False]
    assert not (tmp_path / "out/summary.csv").exists()

    calls.clear()
    interrupt["at"] = None
    assert compare("--config", path) == 0
    assert calls == [runs[2]]
    assert all(is_complete(r) for r in runs)
    assert (tmp_path / "out/summary.csv").is_file()


def test_tuned_compare_gives_every_run_the_same_search(tiny_model, source_csv, tmp_path):
    """With 'tune', each run searches its strategy's budget, then the best settings fill the run directory."""
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    strategy = {"name": "vanilla", "label": "plain", "epochs": 1, "min_steps": 0}
    config.update(seeds=[1], baseline="plain", strategies=[strategy], tune={"trials": 1})
    config["data"]["make"]["ratios"] = [2]
    result = run_compare(write_config(tmp_path / "exp.yaml", config), show_progress=False)
    run_dir = tmp_path / "out" / "ratio-2" / "plain" / "seed-1"
    assert result.trained == [run_dir] and is_complete(run_dir)
    tuning = run_dir.with_name(".seed-1.tuning")
    assert (tuning / "study.db").is_file() and len(pd.read_csv(tuning / "trials.csv")) == 1
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["run"]["strategy"] == "plain" and recorded["variant"] == "ratio-2"
    best = json.loads((tuning / "best.json").read_text())
    # One trial: the strategy as configured (the defaults trial), whose learning rate is the strategy's own.
    assert best["trial"] == 0 and best["settings"] == {"settings": {}, "stages": []}
    assert recorded["run"]["stages"][0]["lr"] == build_run_config(tiny_model, "vanilla").stages[0].lr
    # Resuming counts the tuned run as complete although its stages differ from the configured ones.
    assert run_compare(write_config(tmp_path / "exp.yaml", config), show_progress=False).skipped == [run_dir]


def test_diverged_run_is_recorded_as_failed_and_the_rest_goes_on(tmp_path, tiny_model, source_csv):
    """A strategy whose loss blows up fails alone: recorded in failed.json and the summary, others complete."""
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config.update(seeds=[1], strategies=[{"vanilla": {"epochs": 1, "lr": "1e30"}}, {"reweight": {"epochs": 1}}])
    config["data"]["make"]["ratios"] = [2]
    result = run_compare(write_config(tmp_path / "exp.yaml", config), show_progress=False)
    failed = tmp_path / "out/ratio-2/vanilla/seed-1"
    assert result.failed == [failed] and not is_complete(failed)
    assert "diverged" in json.loads((failed / "failed.json").read_text())["reason"]
    assert [row["strategy"] for row in result.summary["rows"]] == ["reweight"]
    assert [f["run"] for f in result.summary["failed"]] == ["ratio-2/vanilla/seed-1"]
