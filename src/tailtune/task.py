"""The task: what depends on the shape of the labels, chosen through one value recorded with the run and the model.

A task owns the label encoding, the family of losses its stages may use, the decision rule that turns scores into
predictions, the metrics and the prediction format. Every layer that would otherwise ask "one label or several?"
asks the run's task instead, so a new shape of labels is one new class here, not a branch in every layer.
``single-label`` (one class per text, softmax scores, argmax decisions) is the one implemented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from tailtune.errors import TailTuneError

if TYPE_CHECKING:
    import pandas as pd

    from tailtune.data.types import LabelMap, Splits, TextDataset

#: The task a run and a model are recorded with when none is named.
DEFAULT_TASK = "single-label"


class Task(Protocol):
    """What a task decides; :class:`SingleLabel` is the reference implementation.

    Attributes:
        name: The value recorded in ``config.json`` (``task``) and in a saved model's record.
        problem_type: The ``problem_type`` a saved transformers config states, which plain ``transformers``
            reads to choose its loss and its scores.
        losses: The names of the losses its stages may use.
    """

    name: str
    problem_type: str
    losses: tuple[str, ...]

    def label_map(self, splits: Splits) -> LabelMap:
        """The classes of a run, from its training labels; eval and test labels must all be among them."""
        ...

    def encode(self, label_map: LabelMap, dataset: TextDataset) -> np.ndarray:
        """The labels of ``dataset`` as the targets the losses and metrics take."""
        ...

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """A model's logits as per-class scores."""
        ...

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """The predictions the scores make."""
        ...

    def evaluate(
        self, label_map: LabelMap, dataset: TextDataset, scores: np.ndarray, *, train_counts: Sequence[int],
        calibrated: bool = True,
    ) -> tuple[dict[str, Any], pd.DataFrame]:  # fmt: skip
        """The metrics of ``scores`` on labelled data, and one prediction row per example."""
        ...


@dataclass(frozen=True)
class SingleLabel:
    """One class per text: softmax scores, the argmax as the prediction, the single-label metrics."""

    name: str = "single-label"
    problem_type: str = "single_label_classification"

    @property
    def losses(self) -> tuple[str, ...]:
        from tailtune.config import LOSS_PARAMS

        return tuple(LOSS_PARAMS)

    def label_map(self, splits: Splits) -> LabelMap:
        from tailtune.data.types import check_labels

        return check_labels(splits)

    def encode(self, label_map: LabelMap, dataset: TextDataset) -> np.ndarray:
        return np.asarray(label_map.encode(dataset.labels, source=dataset.source))

    def scores(self, logits: np.ndarray) -> np.ndarray:
        from tailtune.metrics import softmax

        return softmax(logits)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return scores.argmax(axis=1)

    def evaluate(
        self, label_map: LabelMap, dataset: TextDataset, scores: np.ndarray, *, train_counts: Sequence[int],
        calibrated: bool = True,
    ) -> tuple[dict[str, Any], pd.DataFrame]:  # fmt: skip
        from tailtune.metrics import score_probabilities

        return score_probabilities(
            label_map.encode(dataset.labels, source=dataset.source), scores, texts=dataset.texts,
            labels=dataset.labels, label_names=label_map.labels, train_counts=train_counts, calibrated=calibrated,
        )  # fmt: skip


TASKS: dict[str, Task] = {task.name: task for task in (SingleLabel(),)}


def get_task(name: str | None) -> Task:
    """The task of a name (None: :data:`DEFAULT_TASK`, what runs and models recorded before tasks were named).

    Raises:
        TailTuneError: An unknown name, listing the known ones.
    """
    name = name or DEFAULT_TASK
    if name not in TASKS:
        raise TailTuneError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]
