"""Tests of model selection: carving a validation split, keeping the best epoch, early stopping, refit configs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tailtune.strategies import build_run_config
from tailtune.training.loop import StageHooks
from tailtune.training.selection import EpochSelector, Score, StageChoice, carve_validation, refit_config


def _labels(counts: dict[str, int]) -> list[str]:
    labels = [name for name, n in counts.items() for _ in range(n)]
    return [labels[i] for i in np.random.default_rng(0).permutation(len(labels))]


def test_carve_is_stratified():
    """Each class large enough gives round(fraction * n) of its examples to validation."""
    labels = _labels({"a": 50, "b": 30, "c": 10})
    train, validation = carve_validation(labels, fraction=0.2, min_class_count=5, seed=0)
    held = Counter(labels[i] for i in validation)
    assert held == {"a": 10, "b": 6, "c": 2}
    assert Counter(labels[i] for i in train) == {"a": 40, "b": 24, "c": 8}


def test_carve_is_seeded():
    """The same seed gives the same split; another seed picks other examples."""
    labels = _labels({"a": 60, "b": 40})
    first = carve_validation(labels, fraction=0.25, min_class_count=5, seed=3)
    again = carve_validation(labels, fraction=0.25, min_class_count=5, seed=3)
    other = carve_validation(labels, fraction=0.25, min_class_count=5, seed=4)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_carve_keeps_small_classes_whole():
    """A class below min_class_count gives nothing to validation; the others still do."""
    labels = _labels({"big": 40, "small": 4})
    train, validation = carve_validation(labels, fraction=0.5, min_class_count=5, seed=0)
    small = {i for i, label in enumerate(labels) if label == "small"}
    assert small <= set(train.tolist())
    assert not small & set(validation.tolist())
    assert Counter(labels[i] for i in validation) == {"big": 20}


def test_carve_leaves_one_in_training():
    """A class that gives examples keeps at least one in training, even with a large fraction."""
    labels = _labels({"a": 2, "b": 3})
    train, validation = carve_validation(labels, fraction=0.9, min_class_count=2, seed=0)
    assert Counter(labels[i] for i in train) == {"a": 1, "b": 1}
    assert Counter(labels[i] for i in validation) == {"a": 1, "b": 2}


def test_carve_small_fraction_holds_at_least_one():
    """A tiny fraction still holds out one example of every class large enough."""
    labels = _labels({"a": 20, "b": 6})
    _, validation = carve_validation(labels, fraction=0.01, min_class_count=5, seed=0)
    assert Counter(labels[i] for i in validation) == {"a": 1, "b": 1}


def test_carve_fraction_zero_holds_nothing():
    """Fraction 0 gives an empty validation set and every index to training."""
    labels = _labels({"a": 20, "b": 10})
    train, validation = carve_validation(labels, fraction=0.0, min_class_count=2, seed=0)
    assert len(validation) == 0
    np.testing.assert_array_equal(train, np.arange(len(labels)))


@settings(max_examples=150, deadline=None)
@given(
    labels=st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=80),
    fraction=st.floats(min_value=0.0, max_value=0.95),
    min_class_count=st.integers(min_value=2, max_value=8),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_carve_partitions_property(labels, fraction, min_class_count, seed):
    """For any labels, train and validation are sorted, disjoint and together hold every index once."""
    train, validation = carve_validation(labels, fraction=fraction, min_class_count=min_class_count, seed=seed)
    assert np.all(np.diff(train) > 0)
    assert np.all(np.diff(validation) > 0)
    assert not set(train.tolist()) & set(validation.tolist())
    np.testing.assert_array_equal(np.sort(np.concatenate([train, validation])), np.arange(len(labels)))
    counts, held = Counter(labels), Counter(labels[i] for i in validation)
    for name, n in counts.items():
        if n < min_class_count or fraction <= 0:
            assert held[name] == 0
        else:
            assert 1 <= held[name] <= n - 1


# EpochSelector


def _stage():
    return build_run_config("m", "two-stage").stages[0]


def _run_epochs(selector: EpochSelector, model: torch.nn.Linear, n_epochs: int, *, index: int = 0) -> list[bool]:
    """Simulate training: epoch e sets every trainable weight to e, then the selector scores it."""
    stage, stops = _stage(), []
    for epoch in range(1, n_epochs + 1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        stops.append(selector.on_epoch_end(index, stage, epoch))
    return stops


def _scripted(scores: list[float]):
    values = iter(scores)
    return lambda: Score(next(values))


class _History(StageHooks):
    def __init__(self) -> None:
        self.entries: list[dict] = []

    def on_log(self, entry):
        self.entries.append(entry)


def test_selector_restores_best_epoch():
    """The best epoch's weights come back when the stage ends; the choice records epoch, score and history."""
    model = torch.nn.Linear(3, 2)
    history = _History()
    selector = EpochSelector(model, _scripted([0.1, 0.5, 0.3, 0.4]), patience=None, metric="macro_f1",
                             history=history)  # fmt: skip
    _run_epochs(selector, model, 4)
    assert torch.all(model.weight == 4.0)
    selector.restore_best(0, _stage())
    assert torch.all(model.weight == 2.0)
    choice = selector.choices[0]
    assert (choice.stage, choice.best_epoch, choice.best_score, choice.epochs_run) == (0, 2, 0.5, 4)
    assert choice.scores == [0.1, 0.5, 0.3, 0.4]
    seen = [(e["stage"], e["epoch"], e["validation_macro_f1"]) for e in history.entries]
    assert seen == [(0, 1, 0.1), (0, 2, 0.5), (0, 3, 0.3), (0, 4, 0.4)]


def test_selector_keeps_last_epoch_when_best():
    """When the last epoch is the best, restoring leaves the weights as they are."""
    model = torch.nn.Linear(3, 2)
    selector = EpochSelector(model, _scripted([0.1, 0.2, 0.3]), patience=None)
    _run_epochs(selector, model, 3)
    selector.restore_best(0, _stage())
    assert torch.all(model.weight == 3.0)
    assert selector.choices[0].best_epoch == 3


def test_selector_ties_go_to_the_later_epoch():
    """A later score within the tolerance of the best is a tie, and the later epoch is kept; a clear drop is not."""
    model = torch.nn.Linear(3, 2)
    selector = EpochSelector(model, _scripted([0.40, 0.40, 0.395, 0.30]), patience=None, tolerance=0.01)
    _run_epochs(selector, model, 4)
    selector.restore_best(0, _stage())
    assert selector.choices[0].best_epoch == 3
    assert torch.all(model.weight == 3.0)


def test_selector_tie_does_not_lower_the_bar():
    """Ties are measured against the best score, so a slow decline cannot drift the choice later."""
    model = torch.nn.Linear(3, 2)
    selector = EpochSelector(model, _scripted([0.50, 0.495, 0.49, 0.485]), patience=None, tolerance=0.01)
    _run_epochs(selector, model, 4)
    assert selector.choices[0].best_epoch == 3


def test_selector_restores_only_trainable():
    """Frozen parameters are not snapshotted: restoring leaves them as they are now."""
    model = torch.nn.Linear(3, 2)
    model.bias.requires_grad_(False)
    selector = EpochSelector(model, _scripted([0.9, 0.1]), patience=None)
    stage = _stage()
    for epoch in (1, 2):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
            model.bias.fill_(float(10 * epoch))
        selector.on_epoch_end(0, stage, epoch)
    selector.restore_best(0, stage)
    assert torch.all(model.weight == 1.0)
    assert torch.all(model.bias == 20.0)


def test_selector_early_stop_after_patience():
    """A stage stops once `patience` epochs pass without improvement, not before."""
    model = torch.nn.Linear(3, 2)
    selector = EpochSelector(model, _scripted([0.5, 0.6, 0.55, 0.58, 0.1]), patience=2)
    stops = _run_epochs(selector, model, 4)
    assert stops == [False, False, False, True]
    selector.restore_best(0, _stage())
    assert torch.all(model.weight == 2.0)


def test_selector_patience_resets_on_improvement():
    """An improvement restarts the count of epochs without improvement."""
    model = torch.nn.Linear(3, 2)
    selector = EpochSelector(model, _scripted([0.5, 0.4, 0.6, 0.5, 0.4]), patience=2)
    assert _run_epochs(selector, model, 5) == [False, False, False, False, True]


def test_selector_patience_none_never_stops():
    """Without patience, falling scores never stop a stage."""
    model = torch.nn.Linear(3, 2)
    selector = EpochSelector(model, _scripted([1.0 - 0.1 * e for e in range(8)]), patience=None)
    assert not any(_run_epochs(selector, model, 8))
    selector.restore_best(0, _stage())
    assert torch.all(model.weight == 1.0)


def test_selector_tracks_each_stage():
    """Every stage gets its own choice, and restoring one stage uses that stage's best epoch."""
    model = torch.nn.Linear(3, 2)
    selector = EpochSelector(model, _scripted([0.9, 0.1, 0.2, 0.5, 0.3]), patience=None)
    _run_epochs(selector, model, 2, index=0)
    selector.restore_best(0, _stage())
    assert torch.all(model.weight == 1.0)
    _run_epochs(selector, model, 3, index=1)
    selector.restore_best(1, _stage())
    assert torch.all(model.weight == 2.0)
    assert [(c.stage, c.best_epoch, c.epochs_run) for c in selector.choices] == [(0, 1, 2), (1, 2, 3)]


def test_selector_is_a_hook_of_the_stage_loop():
    """At a stage's end the selector, as a hook, restores the best epoch's weights; it keeps that epoch's logits."""
    model = torch.nn.Linear(3, 2)
    scores = iter([Score(0.5, np.array([[1.0]])), Score(0.4, np.array([[2.0]]))])
    selector = EpochSelector(model, lambda: next(scores), patience=None)
    _run_epochs(selector, model, 2)
    selector.on_stage_end(0, _stage(), model)
    assert torch.all(model.weight == 1.0)
    assert selector.best_logits.tolist() == [[1.0]]


# refit_config


def test_refit_config_uses_chosen_epochs():
    """Each stage of the refit stops at its chosen best epoch under the planned schedule; the rest is kept."""
    config = build_run_config("m", "two-stage")
    assert all(s.min_steps for s in config.stages)
    choices = [StageChoice(0, 3, 0.5, 5, epochs_planned=8), StageChoice(1, 2, 0.6, 4)]
    refit = refit_config(config, choices)
    assert [(s.epochs, s.stop_after) for s in refit.stages] == [(8, 3), (2, 2)]
    assert all(s.min_steps is None for s in refit.stages)
    assert [s.lr for s in refit.stages] == [s.lr for s in config.stages]
    assert [s.trainable for s in refit.stages] == [s.trainable for s in config.stages]
    assert refit.model == config.model and refit.seed == config.seed


def test_refit_config_skipped_stage_stays_skipped():
    """A stage that did not run (0 epochs, no choice) stays as it is."""
    config = build_run_config("m", "two-stage", settings={"epochs": [0, 1]})
    refit = refit_config(config, [StageChoice(1, 1, 0.5, 2, epochs_planned=3)])
    assert refit.stages[0] == config.stages[0]
    assert (refit.stages[1].epochs, refit.stages[1].stop_after) == (3, 1)


@pytest.mark.parametrize("best", [1, 7])
def test_refit_config_single_stage(best):
    """A one-stage strategy refits for exactly the chosen epoch count."""
    config = build_run_config("m", "vanilla")
    (stage,) = refit_config(config, [StageChoice(0, best, 0.5, 9, epochs_planned=9)]).stages
    assert (stage.epochs, stage.stop_after) == (9, best)


def test_selector_patience_counts_evaluations_within_epochs():
    """Patience counts evaluations, so evaluating every few steps stops after that many evaluations."""
    model = torch.nn.Linear(3, 2)
    selector = EpochSelector(model, _scripted([0.5, 0.7, 0.6, 0.6, 0.1]), patience=2)
    stops = [selector.on_epoch_end(0, _stage(), position, 2) for position in (0.5, 1, 1.5, 2)]
    assert stops == [False, False, False, True]
    (choice,) = selector.choices
    assert (choice.best_epoch, choice.epochs_run, choice.positions) == (1, 2, [0.5, 1, 1.5, 2])


def test_refit_config_fractional_best():
    """A best point within an epoch becomes a fractional stop_after on the planned schedule."""
    config = build_run_config("m", "vanilla")
    (stage,) = refit_config(config, [StageChoice(0, 1.5, 0.5, 2, epochs_planned=None)]).stages
    assert (stage.epochs, stage.stop_after) == (2, 1.5)
