"""Tests of the strategy registry: every strategy builds valid stages, and two-stage matches the paper."""

from __future__ import annotations

import pytest

from tailtune.config import StageConfig, TfidfStage, stage_from_dict
from tailtune.errors import TailTuneError
from tailtune.strategies import STRATEGIES, describe_strategies, get_strategy


@pytest.mark.parametrize("name", [name for name in STRATEGIES if name != "tfidf"])
def test_every_strategy_builds_valid_stages(name):
    """Each strategy gives a non-empty list of validated stages that survive a dict round trip."""
    stages = get_strategy(name)
    assert stages and all(isinstance(s, StageConfig) for s in stages)
    for stage in stages:
        assert StageConfig.from_dict(stage.to_dict()) == stage
        assert stage.epochs >= 1 and stage.lr > 0


def test_tfidf_is_one_tfidf_stage():
    """tfidf, the classic baseline, is one TF-IDF stage (the pipeline of benchmarks/real_longtail.py) that survives a
    dict round trip."""
    (stage,) = get_strategy("tfidf")
    assert stage == TfidfStage(classifier="linear-svc", C=1.0, ngram_max=None, min_df=1, sublinear_tf=True)
    assert stage_from_dict(stage.to_dict()) == stage


def test_the_task_decides_the_tfidf_word_ngrams_left_to_it():
    """1-2 grams for one label a text, unigrams for label sets; n-grams given stay as given."""
    from tailtune.strategies import build_run_config
    from tailtune.task import get_task

    config = build_run_config(None, "tfidf")
    assert get_task("single-label").prepare(config).stages[0].ngram_max == 2
    assert get_task("multi-label").prepare(config).stages[0].ngram_max == 1
    given = build_run_config(None, "tfidf", stages=[{"ngram_max": 3}])
    assert get_task("multi-label").prepare(given).stages[0].ngram_max == 3


def test_two_stage_paper_matches_the_authors():
    """two-stage-paper: top1 + LDAM(0.5, 1) + effective(0.9999) at 1e-4, then all + CE at 1e-5, 1 epoch each."""
    first, second = get_strategy("two-stage-paper")
    assert first.trainable == "top1"
    assert first.loss == "ldam"
    assert first.loss_params == {"max_margin": 0.5, "scale": 1.0}
    assert first.weights == "effective"
    assert first.beta == 0.9999
    assert first.lr == 1e-4
    assert (second.trainable, second.loss, second.weights, second.lr) == ("all", "ce", "none", 1e-5)
    assert second.loss_params == {}
    assert [(s.epochs, s.min_steps) for s in (first, second)] == [(1, 0), (1, 0)]
    assert [s.lr for s in get_strategy("vanilla-paper")] == [1e-5]
    assert [s.lr for s in get_strategy("reweight-paper")] == [1e-5]


def test_default_budgets_are_in_steps():
    """The default strategies differ from the paper only in budgets: larger rates, a step minimum and, for full
    fine-tuning, one epoch on large data (more on small data, to spend its step budget; three on label sets)."""
    paper, default = get_strategy("two-stage-paper"), get_strategy("two-stage")
    budget = ("lr", "min_steps", "max_epochs", "epochs", "label_set_epochs")
    for p, d in zip(paper, default, strict=True):
        assert {k: v for k, v in p.to_dict().items() if k not in budget} == {
            k: v for k, v in d.to_dict().items() if k not in budget
        }
    assert [s.lr for s in default] == [1e-3, 1e-4]
    assert all(s.min_steps and s.min_steps >= 100 for s in default)
    assert [s.label_set_epochs for s in default] == [None, 3]
    (probe,) = get_strategy("probe")
    assert (probe.trainable, probe.loss, probe.weights) == ("head", "ce", "inverse")


def test_baselines_settings():
    """The baselines use the settings their descriptions promise."""
    (vanilla,) = get_strategy("vanilla")
    assert (vanilla.trainable, vanilla.loss, vanilla.weights, vanilla.lr) == ("all", "ce", "none", 1e-4)
    (reweight,) = get_strategy("reweight")
    assert (reweight.trainable, reweight.loss, reweight.weights) == ("all", "ldam", "effective")
    assert reweight.loss_params == {"max_margin": 0.5, "scale": 1.0}
    probe, finetune = get_strategy("lp-ft")
    assert (probe.trainable, probe.lr, finetune.trainable) == ("head", 1e-3, "all")
    assert [s.loss for s in get_strategy("drw")] == ["ce", "ldam"]
    assert get_strategy("focal")[0].loss_params == {"gamma": 2.0}
    assert get_strategy("cb-ce")[0].weights == "effective"
    assert get_strategy("logit-adjusted")[0].loss_params == {"tau": 1.0}
    assert get_strategy("resample")[0].sampler == "class-balanced"
    assert get_strategy("sqrt-resample")[0].sampler == "sqrt"
    crt = get_strategy("crt")
    assert [(s.trainable, s.sampler) for s in crt] == [("all", "random"), ("head", "class-balanced")]


def test_get_strategy_returns_fresh_lists():
    """Changing a returned stage list (not its stages' contents) does not change the registry."""
    stages = get_strategy("two-stage")
    stages.append(StageConfig())
    stages[0].lr = 1.0
    again = get_strategy("two-stage")
    assert len(again) == 2 and again[0].lr == 1e-3
    assert again[0] is not stages[0]


def test_stage_loss_params_are_not_shared():
    """Editing one built stage's loss_params in place must not change later get_strategy results."""
    first = get_strategy("two-stage")[0]
    original = dict(first.loss_params)
    try:
        first.loss_params["scale"] = 99.0
        assert get_strategy("two-stage")[0].loss_params == {"max_margin": 0.5, "scale": 1.0}
        assert get_strategy("reweight")[0].loss_params == {"max_margin": 0.5, "scale": 1.0}
    finally:
        first.loss_params.clear()
        first.loss_params.update(original)  # undo the leak so later tests see the real registry


def test_unknown_strategy_lists_valid_names():
    """An unknown name raises TailTuneError listing every registered strategy."""
    with pytest.raises(TailTuneError) as info:
        get_strategy("two_stage")
    message = str(info.value)
    assert "unknown strategy 'two_stage'" in message
    for name in STRATEGIES:
        assert name in message


def test_describe_strategies_lists_each():
    """The listing has one header line per strategy and one line per stage with its settings."""
    text = describe_strategies()
    lines = text.splitlines()
    headers = [line.split(":")[0] for line in lines if not line.startswith(" ")]
    assert headers == list(STRATEGIES)
    n_stage_lines = sum(1 for line in lines if line.startswith("  "))
    assert n_stage_lines == sum(len(build()) for _, build in STRATEGIES.values())
    assert "  1. stage1: trainable=top1, loss=ldam(max_margin=0.5, scale=1.0), weights=effective, lr=0.0001" in text
    assert "  2. stage2: trainable=all, loss=ce, lr=1e-05, epochs=1" in text
    assert "  2. stage2: trainable=all, loss=ce, lr=0.0001, epochs=1 (3 on label sets), min_steps=100" in text
    assert "sampler=class-balanced" in text
