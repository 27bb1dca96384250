"""Tests of tune: the search writes its study, trials and best run, resumes, and checks its arguments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tailtune.data.readers import read_dataset
from tailtune.data.types import Splits
from tailtune.errors import TailTuneError
from tailtune.experiments.tune import STUDY_FILE, TuneResult, pick_best, suggest_settings, tune
from tailtune.runs.rundir import is_complete
from tailtune.strategies import SETTINGS, build_run_config

STRATEGIES = ["vanilla", "probe"]
# Small budgets: one epoch per stage and early stopping after one epoch without improvement.
FAST = {"max_length": 32, "batch_size": 8, "eval_batch_size": 16, "epochs": 1, "min_steps": 0, "patience": 1}


def test_fast_settings_are_known():
    """Every setting the fast tuning runs pass is a setting build_run_config accepts."""
    assert set(FAST) <= set(SETTINGS)


@pytest.fixture(scope="module")
def splits(tiny_data) -> Splits:
    train = read_dataset(tiny_data["train"])
    test = read_dataset(tiny_data["test"])
    return Splits(train=train, eval=test.subset(range(0, 30, 2)), test=test)


@pytest.fixture(scope="module")
def tuned(tiny_model, splits, tmp_path_factory) -> tuple[Path, TuneResult, list[dict]]:
    """A two-trial search over vanilla and probe, with the trials it reported."""
    out = tmp_path_factory.mktemp("tune") / "t"
    seen: list[dict] = []
    result = tune(tiny_model, splits, out, strategies=STRATEGIES, trials=2, settings=FAST, show_progress=False,
                  on_trial=seen.append)  # fmt: skip
    return out, result, seen


def test_tune_writes_trials_csv(tuned):
    """trials.csv has one row per trial, with its state, score, strategy and parameters."""
    out, _, _ = tuned
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2
    assert trials["number"].tolist() == [0, 1]
    assert set(trials["state"]) == {"COMPLETE"}
    assert trials["value"].between(0, 1).all()
    assert set(trials["param.strategy"]) <= set(STRATEGIES)
    assert (trials["seconds"] > 0).all()


def test_tune_writes_best_json(tuned):
    """best.json names the best trial's strategy, settings and score, which match the result."""
    out, result, _ = tuned
    best = json.loads((out / "best.json").read_text())
    trials = pd.read_csv(out / "trials.csv")
    assert best["strategy"] == result.strategy in STRATEGIES
    assert best["validation_score"] == pytest.approx(result.validation_score)
    # Kept: the best, or a trial tied with it (one validation example's worth: 1/15 here).
    assert best["validation_score"] >= trials["value"].max() - 1 / 15 - 1e-9
    assert best["kept_because"]
    assert trials.loc[trials["number"] == best["trial"], "param.strategy"].item() == best["strategy"]
    assert best["n_trials"] == result.n_trials == 2
    assert best["select_metric"] == "macro_f1"
    assert best["validation_split"] == {"source": "given", "size": 15}
    assert best["settings"] == json.loads(json.dumps(result.settings))
    assert best["final"]["split"] == "test"


def test_tune_trains_best_run(tuned, tiny_model):
    """best/ is a complete run directory of the best strategy, trained with the shared settings."""
    out, result, _ = tuned
    assert is_complete(out / "best")
    assert (out / "best" / "model" / "model.safetensors").is_file()
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert metrics["split"] == result.final_metrics["split"] == "test"
    assert metrics["macro_f1"] == pytest.approx(result.final_metrics["macro_f1"])
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["run"]["strategy"] == result.strategy
    assert config["run"]["max_length"] == 32 and config["run"]["batch_size"] == 8
    kept = build_run_config(tiny_model, result.strategy, settings={**FAST, **result.settings["settings"]},
                            stages=result.settings["stages"])  # fmt: skip
    assert [s["lr"] for s in config["run"]["stages"]] == pytest.approx([s.lr for s in kept.stages])


def test_tune_keeps_study_and_trial_runs(tuned):
    """The study lives in study.db; each trial wrote its own run directory."""
    out, _, seen = tuned
    assert (out / STUDY_FILE).is_file()
    assert sorted(p.name for p in (out / ".trials").iterdir()) == ["trial-0", "trial-1"]
    assert [t["number"] for t in seen] == [0, 1]
    assert all(t["state"] == "COMPLETE" and t["strategy"] in STRATEGIES for t in seen)
    for trial in ("trial-0", "trial-1"):
        metrics = json.loads((out / ".trials" / trial / "metrics.json").read_text())
        assert metrics["split"] == "eval"  # test data never reaches the search
        assert json.loads((out / ".trials" / trial / "config.json").read_text())["data"]["test"] is None


def test_tune_carves_validation_without_eval_data(tiny_model, tiny_data, tmp_path):
    """Without eval data the search runs on a carved split, and the best run refits on all the training data."""
    splits = Splits(train=read_dataset(tiny_data["train"]))
    out = tmp_path / "t"
    tune(tiny_model, splits, out, strategies=["probe"], trials=1, settings=FAST, show_progress=False)
    best = json.loads((out / "best.json").read_text())
    assert best["validation_split"]["source"] == "carved"
    assert best["validation_split"]["counts"] == {"sport": 4, "tech": 1}
    trial = json.loads((out / ".trials" / "trial-0" / "config.json").read_text())
    assert trial["train_counts"] == {"money": 4, "sport": 36, "tech": 11}
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert metrics["validation_split"]["source"] == "carved"
    assert metrics["refit_epochs"] == [1]
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["train_counts"] == {"money": 4, "sport": 40, "tech": 12}


def test_tune_resumes(tuned, tiny_model, splits, tmp_path):
    """Running again with more trials adds only the missing ones; earlier trials are unchanged."""
    source, _, _ = tuned
    out = tmp_path / "t"
    shutil.copytree(source, out)
    before = pd.read_csv(out / "trials.csv")
    result = tune(tiny_model, splits, out, strategies=STRATEGIES, trials=3, settings=FAST, show_progress=False)
    after = pd.read_csv(out / "trials.csv")
    assert len(after) == 3 and result.n_trials == 3
    pd.testing.assert_frame_equal(after.loc[:1, before.columns], before, check_dtype=False)
    assert json.loads((out / "best.json").read_text())["n_trials"] == 3
    assert is_complete(out / "best")


def test_tune_with_enough_trials_does_not_search(tuned, tiny_model, splits, tmp_path):
    """A study that already has the trials asked for runs none, and still writes the best run."""
    source, _, _ = tuned
    out = tmp_path / "t"
    shutil.copytree(source, out)
    shutil.rmtree(out / "best")
    seen: list[dict] = []
    result = tune(tiny_model, splits, out, strategies=STRATEGIES, trials=2, settings=FAST, show_progress=False,
                  on_trial=seen.append)  # fmt: skip
    assert seen == [] and result.n_trials == 2
    assert len(pd.read_csv(out / "trials.csv")) == 2
    assert is_complete(out / "best")


def test_tune_unknown_strategy(tiny_model, splits, tmp_path):
    """An unknown strategy raises before anything is written."""
    with pytest.raises(TailTuneError, match="no-such-strategy"):
        tune(tiny_model, splits, tmp_path / "t", strategies=["vanilla", "no-such-strategy"], trials=1,
             show_progress=False)  # fmt: skip
    assert not (tmp_path / "t").exists()


def test_tune_needs_a_budget(tiny_model, splits, tmp_path):
    """Neither trials nor timeout raises."""
    with pytest.raises(TailTuneError, match="budget"):
        tune(tiny_model, splits, tmp_path / "t", strategies=["vanilla"], trials=None, timeout=None)


@pytest.mark.parametrize("strategy", ["two-stage", "reweight", "vanilla", "probe"])
def test_suggest_settings_fit_the_strategy(strategy):
    """Sampled settings give one learning rate per stage in its range and build a valid run config."""
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask({"strategy": optuna.distributions.CategoricalDistribution([strategy])})
    chosen_strategy, chosen = suggest_settings(trial, [strategy], "m")
    assert chosen_strategy == strategy
    config = build_run_config("m", strategy, settings=chosen["settings"], stages=chosen["stages"])
    assert [s.lr for s in config.stages] == chosen["settings"]["lr"]
    for stage in config.stages:
        low, high = {"all": (2e-5, 5e-4), "head": (1e-3, 5e-2)}.get(stage.trainable, (1e-4, 1e-2))
        assert low <= stage.lr <= high
    if strategy in ("reweight", "two-stage"):
        assert any("max_margin" in s.loss_params for s in config.stages)


def test_report_of_a_tuning_folder(tuned):
    """tailtune report on a tuning folder shows the final model's run and a tuning section with every trial."""
    from tailtune.report import build_report

    out, result, _ = tuned
    html_path, md_path = build_report(out)
    markdown = md_path.read_text(encoding="utf-8")
    assert "## Tuning" in markdown
    assert f"{len(pd.read_csv(out / 'trials.csv'))} trials searched" in markdown
    assert f"won with {result.strategy}" in markdown
    # The trials' own run directories are hidden: the report covers the final model only.
    assert "1 complete run" in markdown or "1 run" in markdown


def test_first_trial_is_the_defaults(tuned, tiny_model):
    """Trial 0 trains the first searched strategy as train would, with the shared settings and nothing sampled."""
    out, _, _ = tuned
    trials = pd.read_csv(out / "trials.csv")
    first = trials[trials["number"] == 0].iloc[0]
    assert first["param.strategy"] == STRATEGIES[0]
    assert all(pd.isna(first[c]) for c in trials.columns if c.startswith("param.") and c != "param.strategy")
    config = json.loads((out / ".trials" / "trial-0" / "config.json").read_text())["run"]
    expected = build_run_config(tiny_model, STRATEGIES[0], settings=FAST)
    assert [stage["lr"] for stage in config["stages"]] == [stage.lr for stage in expected.stages]


def _trial(number, value, log_loss=None, defaults=False):
    attrs = {"defaults": True} if defaults else {}
    if log_loss is not None:
        attrs["log_loss"] = log_loss
    return SimpleNamespace(number=number, value=value, user_attrs=attrs)


def test_pick_best_keeps_the_defaults_among_ties():
    """Every trial at 1.0 on an easy split: the defaults are kept, not whichever trial ran first."""
    trials = [_trial(0, 1.0, 0.9), _trial(1, 1.0, 0.1, defaults=True), _trial(2, 1.0, 0.05)]
    best, why = pick_best(trials, tolerance=0.01)
    assert best.number == 1 and "defaults" in why


def test_pick_best_breaks_ties_by_log_loss():
    trials = [_trial(0, 0.95, 0.4), _trial(1, 0.955, 0.2), _trial(2, 0.90, 0.01, defaults=True), _trial(3, 0.951)]
    best, why = pick_best(trials, tolerance=0.01)
    assert best.number == 1 and "log loss" in why


def test_pick_best_keeps_a_clearly_better_trial_over_the_defaults():
    trials = [_trial(0, 0.80, 0.3, defaults=True), _trial(1, 0.92, 0.5)]
    assert pick_best(trials, tolerance=0.01)[0].number == 1
