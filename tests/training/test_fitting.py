"""Tests of the decisions :func:`~tailtune.training.fitting.fit` makes beside training: whether to refit, and the
budgets."""

from __future__ import annotations

import pytest

from tailtune.config import RunConfig
from tailtune.errors import TailTuneError
from tailtune.strategies import build_run_config
from tailtune.training.fitting import REFIT_BELOW_MEDIAN_CLASS, refit_decision


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


def test_full_fine_tuning_plans_three_epochs_and_paper_budgets_one():
    """On large data the step budget is spent within an epoch; three are planned so that validation decides
    whether the second and third pay (the best epoch is kept, early stopping may end the stage after the budget)."""
    full = [s for s in build_run_config("m", "two-stage").stages if s.trainable == "all"]
    assert [s.epochs for s in full] == [3]
    assert [s.epochs for s in build_run_config("m", "two-stage-paper").stages] == [1, 1]
    assert [s.epochs for s in build_run_config("m", "vanilla").stages] == [3]
