"""The task: what depends on the shape of the labels, read from the training data (:func:`task_of`) and recorded
with the run (``task`` in ``config.json``) and the model (``tailtune_task``).

A task owns the label encoding, the family of losses its stages may use, the decision rule that turns scores into
predictions, the metrics and the prediction format. Every layer that would otherwise ask "one label or several?"
asks the run's task instead, so a new shape of labels is one new class here, not a branch in every layer.
``single-label`` (one class per text, softmax scores, argmax decisions) and ``multi-label`` (any number of labels
per text, none included: sigmoid scores, each label decided on its own) are the two.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from tailtune.errors import TailTuneError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from tailtune.config import RunConfig, StageConfig
    from tailtune.data.types import LabelMap, Splits, TextDataset
    from tailtune.training.calibration import Calibration

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

    def summary(self, metrics: dict[str, Any]) -> str:
        """The headline scores of a split's metrics, on one line."""
        ...

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

    def strata(self, dataset: TextDataset) -> list[str]:
        """One name per text that a validation split is stratified by."""
        ...

    def predicted_columns(self, scores: np.ndarray, classes: Sequence[Any], *,
                          separator: str | None = None) -> dict[str, list[Any]]:  # fmt: skip
        """The columns ``predict`` writes beside the input: the prediction per text (a label set as a list, or
        joined with ``separator`` for a table of plain cells), and its score where it has one."""
        ...

    def prepare(self, config: RunConfig) -> RunConfig:
        """The run's settings as this task trains them (each stage's loss one of :attr:`losses`), refusing what
        it cannot train; called once, before anything is recorded, so ``config.json`` holds what ran."""
        ...

    def loss(self, stage: StageConfig, class_counts: Sequence[int], num_texts: int) -> torch.nn.Module:
        """A stage's loss, for ``class_counts`` training examples per class out of ``num_texts`` texts."""
        ...

    def select_score(self, metric: str, targets: np.ndarray, logits: np.ndarray) -> float:
        """The validation score (higher is better) by ``select_metric`` that picks epochs and trials."""
        ...

    def choose_rule(self, method: str, logits: np.ndarray, targets: np.ndarray, train_counts: Sequence[int], *,
                    prior_tau: float) -> Calibration:  # fmt: skip
        """The decision rule chosen on validation logits, as bias offsets a saved checkpoint applies."""
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

    def summary(self, metrics: dict[str, Any]) -> str:
        return (
            f"macro-F1 {metrics['macro_f1']:.4f}  micro-F1 {metrics['micro_f1']:.4f}  "
            f"balanced accuracy {metrics['balanced_accuracy']:.4f}  tail F1 {_score(metrics.get('tail_f1'))}"
        )

    def label_map(self, splits: Splits) -> LabelMap:
        from tailtune.data.types import check_labels

        return check_labels(splits)

    def encode(self, label_map: LabelMap, dataset: TextDataset) -> np.ndarray:
        return np.asarray(label_map.encode(_one_label_each(dataset), source=dataset.source))

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
            self.encode(label_map, dataset), scores, texts=dataset.texts,
            labels=dataset.labels, label_names=label_map.labels, train_counts=train_counts, calibrated=calibrated,
        )  # fmt: skip

    def strata(self, dataset: TextDataset) -> list[str]:
        return list(dataset.labels)

    def predicted_columns(self, scores: np.ndarray, classes: Sequence[Any], *,
                          separator: str | None = None) -> dict[str, list[Any]]:  # fmt: skip
        best = self.decide(scores)
        return {"predicted": [classes[i] for i in best], "score": scores[np.arange(len(best)), best].round(6).tolist()}

    def prepare(self, config: RunConfig) -> RunConfig:
        from tailtune.config import LOSS_PARAMS

        config = _with_tfidf_terms(config, ngram_max=2)
        for stage in _trained_stages(config):
            if stage.loss not in self.losses:
                raise TailTuneError(f"stage {stage.name!r}: loss {stage.loss!r} is for multi-label data; for one "
                                    f"label per text choose one of {', '.join(self.losses)}")  # fmt: skip
            # A name both tasks use (focal) may take parameters only its multi-label form has.
            unknown = sorted(set(stage.loss_params) - set(LOSS_PARAMS[stage.loss]))
            if unknown:
                raise TailTuneError(f"stage {stage.name!r}: unknown parameter(s) {', '.join(unknown)} for loss "
                                    f"{stage.loss!r} on one label a text; valid: "
                                    f"{', '.join(LOSS_PARAMS[stage.loss]) or 'none'}")  # fmt: skip
        return config

    def loss(self, stage: StageConfig, class_counts: Sequence[int], num_texts: int) -> torch.nn.Module:
        from tailtune.training.loop import stage_loss

        return stage_loss(stage, class_counts)

    def select_score(self, metric: str, targets: np.ndarray, logits: np.ndarray) -> float:
        from tailtune.metrics import score_predictions

        return score_predictions(metric, targets, logits.argmax(axis=1))

    def choose_rule(self, method: str, logits: np.ndarray, targets: np.ndarray, train_counts: Sequence[int], *,
                    prior_tau: float) -> Calibration:  # fmt: skip
        from tailtune.training.calibration import choose_calibration

        return choose_calibration(method, logits, targets, train_counts, prior_tau=prior_tau)


#: How a text's label set is written in one cell of a table (predictions.csv, a CSV prediction file).
LABEL_SET_SEPARATOR = "|"


@dataclass(frozen=True)
class MultiLabel:
    """Any number of labels per text (none included): a sigmoid score per label, each label predicted where its
    score exceeds 0.5 (per-label thresholds are folded into the classifier's bias, so 0.5 is the rule a plain
    checkpoint applies too), the multi-label metrics of :mod:`tailtune.multilabel_metrics`."""

    name: str = "multi-label"
    problem_type: str = "multi_label_classification"

    @property
    def losses(self) -> tuple[str, ...]:
        from tailtune.config import MULTILABEL_LOSS_PARAMS

        return tuple(MULTILABEL_LOSS_PARAMS)

    def summary(self, metrics: dict[str, Any]) -> str:
        return (
            f"micro-F1 {metrics['micro_f1']:.4f}  macro-F1 {_score(metrics.get('macro_f1'))}  "
            f"samples-F1 {metrics['samples_f1']:.4f}  tail F1 {_score(metrics.get('tail_f1'))}"
        )

    def label_map(self, splits: Splits) -> LabelMap:
        from tailtune.data.types import check_label_sets

        return check_label_sets(splits)

    def encode(self, label_map: LabelMap, dataset: TextDataset) -> np.ndarray:
        return label_map.encode_sets(label_sets_of(dataset), source=dataset.source)

    def scores(self, logits: np.ndarray) -> np.ndarray:
        from tailtune.training.thresholds import sigmoid

        return sigmoid(logits)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return (np.asarray(scores) > 0.5).astype(np.int64)

    def evaluate(
        self, label_map: LabelMap, dataset: TextDataset, scores: np.ndarray, *, train_counts: Sequence[int],
        calibrated: bool = True,
    ) -> tuple[dict[str, Any], pd.DataFrame]:  # fmt: skip
        import pandas as pd

        from tailtune.multilabel_metrics import compute_multilabel_metrics

        predicted = self.decide(scores)
        metrics = compute_multilabel_metrics(
            self.encode(label_map, dataset), predicted, label_names=label_map.labels, train_counts=train_counts,
            probabilities=scores if calibrated else None,
        )  # fmt: skip
        # One name for the per-class rows, whatever the task: the tables, the report and the card read them.
        metrics["per_class"], metrics["absent_classes"] = metrics.pop("per_label"), metrics.pop("absent_labels")
        names = label_map.labels
        predictions = pd.DataFrame({
            "text": list(dataset.texts),
            "label": [LABEL_SET_SEPARATOR.join(row) for row in label_sets_of(dataset)],
            "predicted": [LABEL_SET_SEPARATOR.join(names[i] for i in np.flatnonzero(row)) for row in predicted],
        })  # fmt: skip
        # Names that hold the joining separator make those cells ambiguous: said where the table is written.
        predictions.attrs["joined_by"] = (LABEL_SET_SEPARATOR, [name for name in names if LABEL_SET_SEPARATOR in name])
        return metrics, predictions

    def predicted_columns(self, scores: np.ndarray, classes: Sequence[Any], *,
                          separator: str | None = None) -> dict[str, list[Any]]:  # fmt: skip
        names = classes.tolist() if hasattr(classes, "tolist") else list(classes)  # NumPy scalars as Python's
        sets = [[names[i] for i in np.flatnonzero(row)] for row in self.decide(scores)]
        if separator is not None:
            joined = [name for name in classes if separator in str(name)]
            if joined:
                raise TailTuneError(
                    f"the label {str(joined[0])!r} holds {separator!r}, which joins a text's labels in "
                    "one cell: write JSON lines or Parquet (lists), or name another --label-separator"
                )
            return {"predicted": [separator.join(str(name) for name in names) for names in sets]}
        return {"predicted": sets}

    def strata(self, dataset: TextDataset) -> list[str]:
        # Each text stands for its rarest label, so that a validation split carved by these strata holds some of
        # every label with enough texts (a text without labels is a stratum of its own).
        counts = Counter(name for row in dataset.labels for name in row)
        return [min(row, key=lambda name: (counts[name], name)) if row else "" for row in dataset.labels]

    def prepare(self, config: RunConfig) -> RunConfig:
        from tailtune.config import StageConfig

        stages, balanced = [], False
        # Unigrams: on development splits of Reuters-21578's training data they scored above 1-2 grams (macro-F1
        # 0.629 against 0.612, mean of two splits) in a quarter of the time (benchmarks/README.md).
        for stage in _with_tfidf_terms(config, ngram_max=1).stages:
            if isinstance(stage, StageConfig):
                if stage.sampler != "random":
                    raise TailTuneError(f"stage {stage.name!r}: sampler {stage.sampler!r} draws texts by their one "
                                        "class; texts with several labels train with sampler 'random'")  # fmt: skip
                name, params = multilabel_loss_of(stage, after_balanced=balanced)
                balanced = balanced or name == "db"
                # The balancing a multi-label loss needs is its own (class-balanced terms, rebalancing weights).
                stage = stage.replace(loss=name, loss_params=params, weights="none",
                                      epochs=stage.label_set_epochs or stage.epochs)  # fmt: skip
            stages.append(stage)
        return config.replace(stages=stages)

    def loss(self, stage: StageConfig, class_counts: Sequence[int], num_texts: int) -> torch.nn.Module:
        from tailtune.training.multilabel_losses import build_multilabel_loss

        name, params = multilabel_loss_of(stage)
        return build_multilabel_loss(name, label_counts=class_counts, num_texts=num_texts, **params)

    def select_score(self, metric: str, targets: np.ndarray, logits: np.ndarray) -> float:
        return _label_set_score(metric, targets, self.scores(logits))

    def choose_rule(self, method: str, logits: np.ndarray, targets: np.ndarray, train_counts: Sequence[int], *,
                    prior_tau: float) -> Calibration:  # fmt: skip
        from tailtune.training.calibration import Calibration
        from tailtune.training.thresholds import choose_thresholds, logit

        probabilities = self.scores(logits)
        before = _label_set_score("macro_f1", targets, probabilities)
        if method == "none":
            return Calibration("none", 0.0, [0.0] * logits.shape[1], before, before)
        chosen = choose_thresholds(probabilities, targets)
        thresholds = np.asarray(chosen.thresholds)
        after = _label_set_score("macro_f1", targets, probabilities, thresholds=thresholds)
        one = float(chosen.global_threshold)
        one_macro_f1 = _label_set_score("macro_f1", targets, probabilities, thresholds=one)
        # Per-label thresholds are kept only where validation says they pay: over several labels they must beat
        # both one threshold for all and the model's own 0.5 there, where they were chosen. After a balanced loss
        # they may not (reuters90: 0.662 against 0.666 at 0.5), and on the test set they then cost 0.04 macro-F1.
        kept = "per-label thresholds"
        if logits.shape[1] > 1 and after <= max(before, one_macro_f1):
            kept, after = ("one threshold", one_macro_f1) if one_macro_f1 > before else ("0.5", before)
            thresholds = np.full(logits.shape[1], one if kept == "one threshold" else 0.5)
        one_threshold = {"threshold": round(one, 6), "validation_macro_f1": one_macro_f1, "kept": kept}
        return Calibration("label-thresholds", 0.0, (-logit(thresholds)).tolist(), before, after, one_threshold)


#: The multi-label loss a stage trains with where its loss is one of single-label data: plain cross-entropy is
#: binary cross-entropy (class-balanced where the stage weights classes), focal stays focal, and the losses that
#: balance the prior (the two-stage method's first stage) become the distribution-balanced loss (Wu et al., 2020),
#: the balanced loss that scored best on the tail of Reuters-21578 (Huang et al., 2021).
SINGLE_TO_MULTILABEL = {"ce": "bce", "focal": "focal", "ldam": "db", "logit-adjusted": "db", "balanced-softmax": "db"}


def label_sets_of(dataset: TextDataset) -> list[tuple[str, ...]]:
    """A labelled dataset's label sets; a file of one label per text (no separator given, none needed) holds sets
    of one, so a multi-label model is scored on it as it is."""
    return list(dataset.labels) if dataset.multi_label else [(name,) for name in dataset.labels]


def _one_label_each(dataset: TextDataset) -> list[str]:
    """The labels of a dataset scored by a single-label model, refusing label sets."""
    if dataset.multi_label:
        raise TailTuneError(
            f"{dataset.source}: holds several labels a text (label sets), and the model predicts one "
            "label a text; score it on data of one label a text, or train a multi-label model"
        )
    return list(dataset.labels)


def _with_tfidf_terms(config: RunConfig, *, ngram_max: int) -> RunConfig:
    """``config`` with the task's word n-grams in a TF-IDF stage that leaves them to the task."""
    from tailtune.config import TfidfStage

    return config.replace(stages=[
        stage.replace(ngram_max=ngram_max) if isinstance(stage, TfidfStage) and stage.ngram_max is None else stage
        for stage in config.stages
    ])  # fmt: skip


def _trained_stages(config: RunConfig) -> list[StageConfig]:
    from tailtune.config import StageConfig

    return [stage for stage in config.stages if isinstance(stage, StageConfig)]


def multilabel_loss_of(stage: StageConfig, *, after_balanced: bool = False) -> tuple[str, dict[str, Any]]:
    """The multi-label loss (name, parameters) a stage trains with on multi-label data.

    ``after_balanced``: an earlier stage trained with the distribution-balanced loss. Plain cross-entropy after it
    (the two-stage method's second stage) keeps that loss instead of binary cross-entropy: on Reuters-21578's 90
    topics one epoch of BCE undid what the first stage had learnt of the rare ones (validation macro-F1 0.562 after
    the first stage, 0.158 after the second, 0.416 with per-label thresholds; with ``db`` 0.666 and 0.662:
    ``benchmarks/README.md``). ``bce`` named for the stage still trains BCE.
    """
    from tailtune.training.multilabel_losses import MULTILABEL_LOSSES

    if stage.loss in MULTILABEL_LOSSES and stage.loss != "focal":
        return stage.loss, dict(stage.loss_params)
    if after_balanced and stage.loss == "ce" and stage.weights == "none":
        return "db", {}
    name = SINGLE_TO_MULTILABEL[stage.loss]
    if name == "bce" and stage.weights != "none":
        return "cb", {}
    return name, dict(stage.loss_params) if name == "focal" else {}


def _label_set_score(metric: str, targets: np.ndarray, probabilities: np.ndarray, *,
                     thresholds: np.ndarray | float = 0.5) -> float:  # fmt: skip
    """A multi-label validation score: macro-F1 over the labels validation holds (micro-F1 for ``micro_f1``,
    samples-F1 for the accuracies) of the label sets ``probabilities > thresholds``."""
    from sklearn.metrics import f1_score

    from tailtune.training.thresholds import apply_thresholds

    predicted = apply_thresholds(probabilities, thresholds)
    truth = np.asarray(targets).astype(np.int64)
    if metric == "micro_f1":
        return float(f1_score(truth, predicted, average="micro", zero_division=0))
    if metric in ("accuracy", "balanced_accuracy"):
        return float(f1_score(truth, predicted, average="samples", zero_division=1))
    present = np.flatnonzero(truth.sum(axis=0))
    if not len(present):
        return 0.0
    return float(f1_score(truth, predicted, labels=present, average="macro", zero_division=0))


def _score(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4f}"


TASKS: dict[str, Task] = {task.name: task for task in (SingleLabel(), MultiLabel())}


def task_of(dataset: TextDataset) -> Task:
    """The task a labelled dataset's labels call for: multi-label where each text holds a set of labels."""
    return TASKS["multi-label" if dataset.multi_label else DEFAULT_TASK]


def get_task(name: str | None) -> Task:
    """The task of a name (None: :data:`DEFAULT_TASK`, what runs and models recorded before tasks were named).

    Raises:
        TailTuneError: An unknown name, listing the known ones.
    """
    name = name or DEFAULT_TASK
    if name not in TASKS:
        raise TailTuneError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]
