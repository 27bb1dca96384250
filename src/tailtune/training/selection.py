"""Model selection on validation data: carving a validation split, keeping the best epoch, stopping early.

Practitioners keep asking for these around ``transformers.Trainer``: a held-out split when they have none,
the best checkpoint by macro-F1 rather than the last, and early stopping. Here they need no checkpoints on
disk: the best epoch's trainable weights are kept in memory and restored when the stage ends. The selector
is a hook of the stage loop (:class:`tailtune.training.loop.StageHooks`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from tailtune.config import RunConfig, StageConfig
from tailtune.training.loop import StageHooks

logger = logging.getLogger(__name__)


def carve_validation(
    labels: Sequence[str], *, fraction: float, min_class_count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split training examples into ``(train, validation)`` indices, stratified by class and seeded.

    A class gives ``round(fraction * n)`` examples (at least one) to validation. A class with fewer than
    ``min_class_count`` examples stays whole in training: a model cannot learn a class from nothing, and one
    or two validation examples say little about it. Both index arrays are sorted (data order).

    Args:
        labels: Training labels.
        fraction: Share of each class to hold out, in [0, 1).
        min_class_count: Smallest class size that gives examples to validation.
        seed: Seeds the choice of examples.
    """
    labels = np.asarray(labels, dtype=object)
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for name in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == name)
        if len(members) < min_class_count or fraction <= 0:
            continue
        n_held = min(len(members) - 1, max(1, round(fraction * len(members))))
        held.append(rng.choice(members, size=n_held, replace=False))
    validation = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    train = np.setdiff1d(np.arange(len(labels)), validation)
    return train, validation


@dataclass
class StageChoice:
    """What selection chose in one stage: the best epoch, its score, the epochs that ran and were planned.

    Epochs are fractional where evaluation ran within an epoch (``eval_steps``); ``positions`` holds the epoch
    of each score.
    """

    stage: int
    best_epoch: float
    best_score: float
    epochs_run: float
    scores: list[float] = field(default_factory=list)
    epochs_planned: int | None = None
    positions: list[float] = field(default_factory=list)


@dataclass
class Score:
    """A validation score (higher is better), with the logits it was computed from where they are to be kept."""

    value: float
    logits: np.ndarray | None = None


class EpochSelector(StageHooks):
    """Evaluates after every epoch (or every few steps), keeps each stage's best weights, and stops a stage early.

    Args:
        model: The model being trained (its trainable parameters are snapshotted in memory).
        score: Scores the model as it is now; the logits of the best epoch of the latest stage are kept as
            ``best_logits``.
        patience: Evaluations without improvement after which a stage stops; None never stops early.
        tolerance: Scores within this of the stage's best count as ties, and a tie goes to the later epoch.
            A small validation split moves by a whole example's worth between epochs; where it cannot tell
            epochs apart, the longer training (the step budget) stands.
        metric: The score's name in history entries (``validation_<metric>``).
        history: Hears each score as a history entry (``stage``, ``stage_name``, ``epoch``,
            ``validation_<metric>``).

    Attributes:
        choices: What each stage chose, in stage order.
        best_logits: The best epoch's logits in the latest stage (None where the score kept none).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        score: Callable[[], Score],
        *,
        patience: int | None,
        tolerance: float = 0.0,
        metric: str = "score",
        history: StageHooks | None = None,
    ) -> None:
        self.model = model
        self.score = score
        self.patience = patience
        self.tolerance = tolerance
        self.metric = metric
        self.history = history
        self.choices: list[StageChoice] = []
        self.best_logits: np.ndarray | None = None
        self._best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, stage_index: int, stage: StageConfig, epoch: float, planned: int | None = None) -> bool:
        """Score the model after ``epoch`` (perhaps fractional) of ``planned``; remember it if it is the best.

        Returns:
            True to stop the stage (``patience`` evaluations without improvement).
        """
        if not self.choices or self.choices[-1].stage != stage_index:
            self.choices.append(StageChoice(stage_index, 0, -np.inf, 0, epochs_planned=planned))
            self._best_state = self.best_logits = None
        choice = self.choices[-1]
        score = self.score()
        value = float(score.value)
        choice.scores.append(value)
        choice.positions.append(epoch)
        choice.epochs_run = epoch
        if self.history is not None:
            self.history.on_log({"stage": stage_index, "stage_name": stage.name, "epoch": epoch,
                                 f"validation_{self.metric}": value})  # fmt: skip
        top = max(choice.scores)
        if value >= top - self.tolerance:  # the best so far, or tied with it: the later epoch is kept
            choice.best_epoch, choice.best_score = epoch, value
            self.best_logits = score.logits
            # Only what this stage trains can change, so only that is kept.
            # On the CPU: a copy of every weight on an accelerator would double a full fine-tuning's memory.
            self._best_state = {
                name: p.detach().to("cpu", copy=True) for name, p in self.model.named_parameters() if p.requires_grad
            }
        since_best = len(choice.positions) - 1 - choice.positions.index(choice.best_epoch)
        return self.patience is not None and since_best >= self.patience

    def on_stage_end(self, stage_index: int, stage: StageConfig, model: torch.nn.Module) -> None:
        """Put the stage's best weights back."""
        self.restore_best(stage_index, stage)

    def restore_best(self, index: int, stage: StageConfig) -> None:
        """Put the stage's best weights back (called once the stage ends)."""
        if self._best_state is None or not self.choices or self.choices[-1].stage != index:
            return
        choice = self.choices[-1]
        if choice.best_epoch < choice.epochs_run:
            with torch.no_grad():
                for name, param in self.model.named_parameters():
                    if name in self._best_state:
                        param.copy_(self._best_state[name])
            logger.info(
                "stage %d (%s): kept epoch %s of %s (validation %.4f)",
                index + 1, stage.name, choice.best_epoch, choice.epochs_run, choice.best_score,
            )  # fmt: skip
        self._best_state = None


def refit_config(config: RunConfig, choices: list[StageChoice]) -> RunConfig:
    """The config to retrain on all the data: every stage stops at the epoch selection chose for it.

    The learning-rate schedule still spans the epochs the selection run planned, so the refit model goes
    through the same rates as the selected one did up to its best epoch.
    """
    chosen = {c.stage: c for c in choices}
    stages = []
    for i, stage in enumerate(config.stages):
        choice = chosen.get(i)
        if choice is None:  # the stage did not run
            stages.append(stage)
            continue
        planned = choice.epochs_planned or math.ceil(choice.best_epoch)
        stages.append(stage.replace(epochs=planned, min_steps=None, stop_after=choice.best_epoch))
    return config.replace(stages=stages)
