"""The experiment file's schema (:mod:`tailtune.experiments.spec`): each bad value is one error naming its key."""

from __future__ import annotations

import re

import pytest
from compare_config import config_dict, write_config

from tailtune.errors import TailTuneError
from tailtune.experiments.runner import run_compare
from tailtune.experiments.spec import load_experiment


def _set(config: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        config = config[int(key)] if isinstance(config, list) else config[key]
    config[last] = value


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epochs", 3, "unknown key epochs; valid: output, model"),
        ("run.max_len", 8, "unknown key run.max_len"),
        ("run.seed", 8, "unknown key run.seed"),
        ("run.max_length", 1, "run: max_length must be >= 2"),
        ("data.make.ratio", 8, "unknown key data.make.ratio"),
        ("data.make.ratios", [2, 0.5], "data.make.ratios[1] must be >= 1, got 0.5"),
        ("data.make.profile", "linear", "data.make.profile: unknown profile 'linear'"),
        ("data.make.test_per_class", None, "no test set"),
        ("data.source", "missing/source.csv", "data.source: file not found: missing/source.csv"),
        ("data.source", "builtin:imdb", "data.source: unknown built-in data 'builtin:imdb'"),
        ("strategies", ["vanilla", "nope"], "strategies[1]: unknown strategy 'nope'"),
        ("strategies", [{"vanilla": {"lrr": 1}}], "unknown key strategies[0].lrr"),
        (
            "strategies",
            [{"two-stage": {"lr": [1, 2, 3]}}],
            "strategies[0]: lr: give one value for every stage or one per stage (2)",
        ),
        ("strategies", [{"name": "lp-ft", "stages": [{"lrr": 1}]}], "strategies[0]: stage 1 override: unknown key"),
        ("strategies", ["vanilla", "vanilla"], "strategy label 'vanilla' appears twice"),
        ("strategies", [{"name": "vanilla", "label": "a/b"}], "strategies[0].label 'a/b' must be usable as a folder"),
        ("baseline", "focal", "baseline 'focal' is not one of the strategies"),
        ("seeds", [1, "x"], "seeds[1] must be an integer"),
        ("model", "builtin:bert", "unknown built-in model 'builtin:bert'"),
        ("model", "./no/such/model", "model: folder not found"),
        ("data.classes", ["sport"], "data.classes must be a list of at least two labels"),
        ("data.classes", ["sport", "sport"], "label in data.classes 'sport' appears twice"),
        ("data.classes", ["sport", "golf"], "data.classes: 'golf' not a label of"),
    ],
)
def test_config_errors_name_the_key(tmp_path, tiny_model, source_csv, no_training, key, value, message):
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    _set(config, key, value)
    path = write_config(tmp_path / "exp.yaml", config)
    with pytest.raises(TailTuneError) as info:
        run_compare(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("rates", "message"),
    [([0.5, 1.5], "data.make.rates[1] must be in (0, 1], got 1.5"), ([0], "data.make.rates[0] must be in (0, 1]")],
)
def test_rate_outside_unit_interval(tmp_path, tiny_model, source_csv, no_training, rates, message):
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config["data"]["make"] = {"minority": "money", "rates": rates, "test_per_class": 3}
    with pytest.raises(TailTuneError, match=message.replace("(", r"\(").replace("[", r"\[")):
        run_compare(write_config(tmp_path / "exp.yaml", config))


def test_explicit_variant_errors(tmp_path, tiny_model, tiny_data, no_training):
    config = config_dict(tiny_model, tiny_data["train"], tmp_path / "out")
    variant = {"name": "mine", "train": str(tiny_data["train"]), "test": str(tmp_path / "nope.csv")}
    config["data"] = {"variants": [variant]}
    with pytest.raises(TailTuneError, match=r"data\.variants\[0\]\.test: file not found"):
        run_compare(write_config(tmp_path / "exp.yaml", config))
    good = dict(variant, test=str(tiny_data["test"]))
    config["data"]["variants"] = [good, dict(good, name="b", ratio=0.5)]
    with pytest.raises(TailTuneError, match=r"data\.variants\[1\]\.ratio must be >= 1, got 0.5"):
        run_compare(write_config(tmp_path / "exp.yaml", config))


@pytest.mark.parametrize(
    ("tune", "fragment"),
    [({"trials": 0}, "tune.trials must be >= 1"), ({}, "tune needs 'trials', 'timeout' or both"),
     ({"trials": 2, "budget": 1}, "budget"), ({"timeout": -5}, "tune.timeout must be > 0")],
)  # fmt: skip
def test_tune_settings_are_checked(tiny_model, source_csv, tmp_path, tune, fragment):
    """A bad 'tune' block is a one-line error naming the key."""
    config = {**config_dict(tiny_model, source_csv, tmp_path / "out"), "tune": tune}
    with pytest.raises(TailTuneError, match=re.escape(fragment)):
        load_experiment(write_config(tmp_path / "exp.yaml", config))


def test_tune_refuses_stage_overrides(tiny_model, source_csv, tmp_path):
    """A search samples every stage's settings: a strategy's 'stages' overrides under 'tune' would be dropped
    silently while its label still named them, so the experiment is refused; without 'tune' they are kept."""
    config = config_dict(tiny_model, source_csv, tmp_path / "out")
    config["strategies"] = ["tfidf", {"name": "tfidf", "label": "tfidf-lr",
                                      "stages": [{"classifier": "logistic-regression", "C": 10}]}]  # fmt: skip
    config["baseline"] = "tfidf"
    experiment = load_experiment(write_config(tmp_path / "exp.yaml", config))
    assert experiment.run_config(experiment.strategies[1], 1).stages[0].classifier == "logistic-regression"
    with pytest.raises(TailTuneError, match="strategies tfidf-lr: 'stages' overrides cannot be kept under 'tune'"):
        load_experiment(write_config(tmp_path / "exp.yaml", {**config, "tune": {"trials": 2}}))


def test_tfidf_strategies_alone_need_no_model(tmp_path, source_csv, capsys):
    """As for tune: an experiment of TF-IDF strategies only runs without 'model', and its dry run says so."""
    from conftest import run_cli

    from tailtune.runs.records import load_run

    config = config_dict("unused", source_csv, tmp_path / "out")
    del config["model"], config["run"], config["baseline"]
    config["strategies"] = ["tfidf", {"name": "tfidf", "label": "tfidf-lr",
                                      "stages": [{"classifier": "logistic-regression"}]}]  # fmt: skip
    config["data"]["make"]["ratios"] = [2]
    config["seeds"] = [1]
    path = write_config(tmp_path / "exp.yaml", config)
    code, out, err = run_cli(capsys, "compare", "--config", path, "--dry-run")
    assert code == 0, err
    assert "model: none (TF-IDF strategies only)" in out
    code, out, err = run_cli(capsys, "compare", "--config", path, "-q")
    assert code == 0, err
    runs = [load_run(tmp_path / "out" / "ratio-2" / label / "seed-1") for label in ("tfidf", "tfidf-lr")]
    assert [run.config["run"]["stages"][0]["classifier"] for run in runs] == ["linear-svc", "logistic-regression"]


def test_a_fine_tuned_strategy_still_needs_a_model(tmp_path, source_csv, no_training):
    config = config_dict("unused", source_csv, tmp_path / "out")
    del config["model"]
    config["strategies"] = ["tfidf", "vanilla"]
    path = write_config(tmp_path / "exp.yaml", config)
    with pytest.raises(TailTuneError, match="'model' is required"):
        run_compare(path)
