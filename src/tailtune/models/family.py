"""One interface for every model family: how a run trains, scores, saves and loads a model without asking which
kind of model it holds.

A family (the fine-tuned transformer, the TF-IDF + linear model, ...) implements :class:`ModelFamily`: it
``prepare``\\ s a run's settings (resolving what the data decides, once), ``fit``\\ s on the splits and returns a
:class:`FitResult` (the trained :class:`Classifier`, what each stage did, and the :class:`Decisions` the fit
made), and ``load``\\ s a saved model folder. :func:`evaluate` scores any classifier on labelled data, through
its task. ``train_run``, ``evaluate``, ``predict``, ``tune``, ``compare`` and ``TailTuner.load`` use only this
module's names, so a new family is one new module registered in :data:`FAMILIES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tailtune.task import Task

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tailtune.config import RunConfig
    from tailtune.data.types import LabelMap, Splits, TextDataset


class Classifier(Protocol):
    """A trained classifier of any family, as scoring, prediction and saving use it.

    Attributes:
        task: What its labels are (:mod:`tailtune.task`).
        label_map: Label names in class-id order.
        train_counts: Training examples per label name.
        calibrated: Whether its scores are probabilities (a log loss is measured only then).
        reading: How it reads a text longer than its token budget (``chunks`` or ``truncate``); None for a family
            that reads every text whole.
    """

    task: Task
    label_map: LabelMap
    train_counts: dict[str, int]
    calibrated: bool
    reading: str | None

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Per-class scores ``[n, K]``, columns in class-id order."""
        ...


class Trained(Classifier, Protocol):
    """A classifier a run has just trained: it can also write its model folder."""

    def save(self, path: Path, *, config: RunConfig, scores: dict[str, Any], data_source: str | None,
             scored_on: str | None) -> None:  # fmt: skip
        """Write the model folder's files into the empty folder ``path``, its card quoting ``scores``."""
        ...


@dataclass
class Decisions:
    """What a fit decided on the data, recorded once: ``metrics.json`` holds :meth:`to_dict`, the saved model's
    record (:func:`tailtune.models.saved.write_fit_record`) and card are written from the same fit.

    Attributes:
        validation_split: Where the validation data came from (``source``: ``given``, ``carved`` or None).
        selection: The epoch each stage kept on validation.
        long_texts: How the model reads a text longer than its budget, and why (None where given or not applicable).
        refit: Whether the final model was retrained on all the training data, and why.
        refit_epochs: The epochs per stage of that refit (None without one).
        calibration: The decision rule folded into the model (None: none).
        cost: The plan, its estimated time and the time budget's decision, with the time taken (``actual_s``,
            filled in by whoever times the whole run); None where the family records none.
        task: What the final model's labels are (:mod:`tailtune.task`).
        label_kind: ``string``, ``integer`` or ``boolean``: the type of every training label, which predictions keep.
        train_counts: Examples per label name of the data the final model trained on (less a carved validation
            split where nothing was refit).
        max_length: The token budget the final model trained with.
        reading: How the final model reads a text longer than ``max_length`` (``chunks`` or ``truncate``).

    The last five are recorded with the saved model, not in ``metrics.json``, whose run already records its task,
    settings and class counts in ``config.json``; None where the family records none (or read from
    ``metrics.json``).
    """

    validation_split: dict[str, Any] = field(default_factory=lambda: {"source": None})
    selection: list[dict[str, Any]] = field(default_factory=list)
    long_texts: dict[str, Any] | None = None
    refit: dict[str, Any] = field(default_factory=lambda: {"done": False, "reason": "no validation split was carved"})
    refit_epochs: list[float] | None = None
    calibration: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None
    task: str | None = None
    label_kind: str | None = None
    train_counts: dict[str, int] | None = None
    max_length: int | None = None
    reading: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The decisions as ``metrics.json`` keys them."""
        return {name: getattr(self, name) for name in METRICS_KEYS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decisions:
        """The decisions of a ``metrics.json`` (keys it lacks take their defaults)."""
        return cls(**{name: data[name] for name in METRICS_KEYS if name in data})


#: The :class:`Decisions` that ``metrics.json`` holds, in its order.
METRICS_KEYS = ("validation_split", "selection", "long_texts", "refit", "refit_epochs", "calibration", "cost")


@dataclass
class FitResult:
    """What a family's fit returns.

    Attributes:
        classifier: The final model.
        stages: What each stage did (``metrics.json`` ``stages``).
        decisions: What the fit decided on the data.
        config: The run's settings as the fit decided them.
    """

    classifier: Trained
    stages: list[dict[str, Any]]
    decisions: Decisions
    config: RunConfig


class FitSession(Protocol):
    """One run's fit, started by :meth:`ModelFamily.start`: a family's processes, settings and environment.

    Attributes:
        config: The run's settings, resolved.
        main: Whether this process writes the run's files (the others of a distributed launch keep quiet).
    """

    config: RunConfig
    main: bool

    def run_settings(self) -> dict[str, Any]:
        """What ``config.json`` records under ``run``."""
        ...

    def environment(self) -> dict[str, Any]:
        """Further ``config.json`` keys: where and how the fit runs (e.g. the accelerator)."""
        ...

    def fit(self, splits: Splits, *, hooks: Sequence[Any] = ()) -> FitResult:
        """Train on ``splits.train`` (choosing on ``splits.eval`` where the family chooses); test data plays no
        part. ``hooks`` hear the history entries (``on_log``) and, for staged families, the stage loop."""
        ...

    def wait(self) -> None:
        """Wait for every process of the run (a no-op for a single process)."""
        ...


class ModelFamily(Protocol):
    """A kind of model: how its runs start and its saved folders load."""

    name: str
    #: Whether its runs start from a pretrained model (``--model``).
    uses_model: bool

    def refuse_unused(self, strategy: str, given: Sequence[str]) -> None:
        """Refuse, in one line naming it, the first setting given (``model`` included) that the family's runs of
        ``strategy`` do not use."""
        ...

    def suggest(self, trial: Any, strategy: str, stages: Sequence[Any]) -> dict[str, Any]:
        """``tune``'s sample of settings for a trial of ``strategy`` (an Optuna trial): ``{"settings": {...},
        "stages": [...]}``, as :func:`tailtune.strategies.build_run_config` takes them."""
        ...

    def handles(self, config: RunConfig) -> bool:
        """Whether ``config`` is a run of this family."""
        ...

    def owns(self, path: str | Path) -> bool:
        """Whether the folder ``path`` is a saved model of this family."""
        ...

    def prepare(self, config: RunConfig, texts: Sequence[str] | None = None) -> RunConfig:
        """``config`` with what the training ``texts`` decide resolved (e.g. the token budget), once, before
        anything is written."""
        ...

    def start(self, config: RunConfig, splits: Splits, label_map: LabelMap, *, show_progress: bool = True
              ) -> FitSession:  # fmt: skip
        """The session that fits one run."""
        ...

    def load(self, path: str | Path, *, trust_remote_code: bool = False, **settings: Any) -> Classifier:
        """A saved model folder, ready to predict with the prediction ``settings`` given."""
        ...


#: The families, most specific first: a run or a folder belongs to the first that claims it. Each is named by
#: where it lives, so that reading this table imports no model library.
FAMILIES = ("tailtune.models.tfidf:FAMILY", "tailtune.training.family:FAMILY")


def families() -> list[ModelFamily]:
    """Every registered family, in :data:`FAMILIES` order."""
    return list(_each_family())


def _each_family() -> Iterator[ModelFamily]:
    """The registered families in :data:`FAMILIES` order, each module imported only when reached, so that finding a
    TF-IDF run's family imports no deep-learning library."""
    for spec in FAMILIES:
        module, _, name = spec.partition(":")
        yield getattr(importlib.import_module(module), name)


def family_of(config: RunConfig) -> ModelFamily:
    """The family that trains ``config``."""
    return next(family for family in _each_family() if family.handles(config))


def family_of_folder(path: str | Path) -> ModelFamily:
    """The family whose saved model the folder ``path`` holds (the transformer family takes what none claims,
    and says why it cannot load it)."""
    return next(family for family in _each_family() if family.owns(path))


def evaluate(classifier: Classifier, dataset: TextDataset) -> tuple[dict[str, Any], pd.DataFrame]:
    """Score ``classifier`` on labelled data, as every run scores its test data: its task's metrics (with the
    reading of long texts where the family has one) and one prediction row per example."""
    names = classifier.label_map.labels
    metrics, predictions = classifier.task.evaluate(
        classifier.label_map, dataset, classifier.predict_proba(dataset.texts),
        train_counts=[int(classifier.train_counts.get(name, 0)) for name in names], calibrated=classifier.calibrated,
    )  # fmt: skip
    return {"task": classifier.task.name, **metrics}, predictions
