"""Tests of the decisions :func:`~tailtune.training.fitting.fit` makes beside training: whether to refit, and the
budgets."""

from __future__ import annotations

import pytest

from tailtune.config import RunConfig
from tailtune.errors import TailTuneError
from tailtune.strategies import build_run_config
from tailtune.training.fitting import REFIT_BELOW_MEDIAN_CLASS, refit_decision
from tailtune.training.loop import stage_epochs


def test_refit_auto_where_the_median_class_is_small():
    small = [500, 300, REFIT_BELOW_MEDIAN_CLASS - 1, 40, 3]
    large = [2840, 1596, REFIT_BELOW_MEDIAN_CLASS, 206, 41]
    assert refit_decision("auto", small)["done"] is True
    assert refit_decision("auto", large)["done"] is False
    # The reason names the rule's numbers, for metrics.json and the log.
    assert (
        f"{REFIT_BELOW_MEDIAN_CLASS - 1} training examples, below {REFIT_BELOW_MEDIAN_CLASS}"
        in (refit_decision("auto", small)["reason"])
    )


@pytest.mark.parametrize("value", [True, False])
def test_refit_given_decides(value):
    assert refit_decision(value, [10_000, 10_000])["done"] is value
    assert refit_decision(value, [2, 2])["done"] is value


@pytest.mark.parametrize("value", ["auto", True, False])
def test_refit_setting_accepts_auto_true_false(value):
    assert RunConfig(model="m", stages=[{"name": "s"}], refit=value).refit == value


@pytest.mark.parametrize("value", ["yes", 1, None, "always"])
def test_refit_setting_refuses_other_values(value):
    with pytest.raises(TailTuneError, match="refit"):
        RunConfig(model="m", stages=[{"name": "s"}], refit=value)


def test_full_fine_tuning_plans_one_epoch_and_its_step_budget():
    """Full fine-tuning plans one epoch, raised on small data until it spends its step budget (the paper's
    budgets: one epoch, no step minimum)."""
    full = [s for s in build_run_config("m", "two-stage").stages if s.trainable == "all"]
    assert [(s.epochs, s.min_steps) for s in full] == [(1, 100)]
    assert [s.epochs for s in build_run_config("m", "two-stage-paper").stages] == [1, 1]
    assert [s.epochs for s in build_run_config("m", "vanilla").stages] == [1]
    assert stage_epochs(full[0], batches_per_epoch=20, accumulation=1) == 5  # 100 steps over epochs of 20
    assert stage_epochs(full[0], batches_per_epoch=300, accumulation=1) == 1
