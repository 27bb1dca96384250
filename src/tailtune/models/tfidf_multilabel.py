"""The ``tfidf`` strategy on multi-label data: one binary linear model per label, each with its own threshold.

Where the training texts carry label sets (``TextDataset.multi_label``), :func:`fit_label_sets` fits the stage's
TF-IDF features (:func:`~tailtune.models.tfidf_terms.make_vectorizer`, as for one label a text) and a scikit-learn
``OneVsRestClassifier`` of the stage's linear model: one binary model per label, **without class weights**. The
per-label thresholds do the balancing: on a development split of Reuters-21578 (``benchmarks/multilabel.py``),
``class_weight="balanced"`` with thresholds scored below the unweighted models with thresholds and took three times
as long to fit, since a label with a handful of positives weighs them a thousandfold.

**Thresholds.** A label's score is the sigmoid of its model's margin. Each label's threshold is chosen by the
multi-label task's rule, the one that chooses a fine-tuned model's thresholds
(:meth:`~tailtune.task.MultiLabel.choose_rule`: each label's best-F1 threshold shrunk toward one global threshold in
margin space, the global one for a label too rare to choose on), on **out-of-fold scores of the training data**: the
texts are dealt into :data:`FOLDS` folds that spread every label's texts (:func:`fold_ids`) and each fold is scored
by models fitted on the others. Not on a validation split, for the reasons the single-label ``tfidf`` family fits on
all the training data and chooses nothing on one: a carved split would take a rare label's few texts away from its
model and leave its threshold to one or two texts, while out-of-fold scores give every training text a score from a
model that did not see it, so each threshold is chosen on all the label's texts. The vectoriser is fitted once, on
all the training texts (its vocabulary and idf see no label). :data:`FOLDS` was chosen on that development split
(``benchmarks/README.md``); another rule can be given to :func:`fit_label_sets` (``choose``), as the benchmark
compares them.

**Folded into the model.** Each threshold ``t`` is folded into its binary model's intercept (``- logit(t)``): the
saved pipeline's own ``predict`` (a 0/1 indicator matrix, columns in the order of the record's labels) gives the
label sets tailtune gives, and :meth:`TfidfMultiLabelModel.predict_proba`'s scores, ``sigmoid(margin - logit(t))``,
exceed 0.5 exactly for the labels predicted, the rule of :class:`~tailtune.task.MultiLabel`. The scores are no
probabilities (``calibrated`` is False): they order a label's texts as its model does.

A label on every training text (and, inside a fold, a label on none of the others' texts) gets a constant model:
zero weights and the logit of its smoothed share of the texts as intercept, so it is always (never) predicted.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tailtune.config import TfidfStage
from tailtune.data.types import LabelMap, TextDataset
from tailtune.data.values import dataset_from_values
from tailtune.errors import TailTuneError, first_line
from tailtune.models.tfidf_terms import without_terms
from tailtune.task import MultiLabel, Task

if TYPE_CHECKING:
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline

#: Folds of the training data whose out-of-fold scores choose the thresholds.
FOLDS = 5
#: A threshold rule: out-of-fold margins and 0/1 targets (both ``[n, K]``) in; each label's threshold on the
#: sigmoid of its margin, and what the record says of the choice, out.
Rule = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, Any]]]


@dataclass(frozen=True)
class LabelSetSettings:
    """How the multi-label models are fitted (the module's defaults; the benchmark compares others on a
    development split).

    Attributes:
        folds: Folds of the training data for the out-of-fold scores (at most one per text; with fewer than two
            texts every threshold is 0.5).
        class_weight: The binary models' ``class_weight`` (None or ``balanced``).
    """

    folds: int = FOLDS
    class_weight: str | None = None


def task_rule(margins: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The multi-label task's threshold rule (:meth:`~tailtune.task.MultiLabel.choose_rule`) on out-of-fold
    margins; the record names it and gives the global threshold, the rule applied to every decision pooled."""
    task = MultiLabel()
    chosen = task.choose_rule("label-thresholds", margins, targets, targets.sum(axis=0).tolist(), prior_tau=0.0)
    pooled = task.choose_rule("label-thresholds", margins.reshape(-1, 1), targets.reshape(-1, 1), [], prior_tau=0.0)
    how = {"rule": "the multi-label task's (tailtune.task.MultiLabel.choose_rule, as for fine-tuned models): each "
           "label's best-F1 threshold shrunk toward the global best-micro-F1 threshold in margin space; a label too "
           "rare to choose on takes the global one; kept only where they beat that one threshold and 0.5 out of fold",
           "kept": (chosen.one_threshold or {}).get("kept"),
           "global_threshold": round(float(task.scores(-np.asarray(pooled.class_offsets))[0]), 6)}  # fmt: skip
    return task.scores(-np.asarray(chosen.class_offsets)), how


def fold_ids(train: TextDataset, folds: int, *, seed: int) -> np.ndarray:
    """The fold of each training text, ``0 .. folds - 1``, by iterative stratification (Sechidis et al., ECML
    PKDD 2011), so that every label's texts spread over the folds and no fold holds all the texts of a label
    that has two or more (its out-of-fold scores would all come from a model that never saw it).

    The label with the fewest texts still unplaced goes first: each of its texts (in an order shuffled by
    ``seed``) joins the fold that most lacks that label, then the one that most lacks the text's other labels,
    then the one that most lacks texts; each fold aims at ``1 / folds`` of every label's texts and of all texts.
    Texts without a label fill the folds last.
    """
    rng = np.random.default_rng(seed)
    texts_of: dict[str, list[int]] = {}
    for i, row in enumerate(train.labels):
        for name in row:
            texts_of.setdefault(name, []).append(i)
    wanted = {name: np.full(folds, len(rows) / folds) for name, rows in texts_of.items()}
    room = np.full(folds, len(train) / folds)
    ids = np.full(len(train), -1, dtype=np.int64)
    unplaced = {name: len(rows) for name, rows in texts_of.items()}

    def place(i: int, keys: list[tuple[float, ...]]) -> None:
        ids[i] = fold = max(range(folds), key=keys.__getitem__)  # the largest key; the first fold on a tie
        room[fold] -= 1
        for name in train.labels[i]:
            wanted[name][fold] -= 1
            unplaced[name] -= 1

    while any(unplaced.values()):
        label = min((name for name, left in unplaced.items() if left), key=lambda name: (unplaced[name], name))
        for i in rng.permutation(texts_of[label]).tolist():
            if ids[i] < 0:
                row = train.labels[i]
                place(i, [(wanted[label][f], sum(wanted[n][f] for n in row), room[f]) for f in range(folds)])
    for i in rng.permutation(np.flatnonzero(ids < 0)).tolist():
        place(i, [(room[f],) for f in range(folds)])
    return ids


def fit_binary_models(stage: TfidfStage, vectors: Any, targets: np.ndarray, *, seed: int,
                      class_weight: str | None = None) -> OneVsRestClassifier:  # fmt: skip
    """One binary model of the stage's kind per column of the 0/1 ``targets`` ``[n, K]``, on ``vectors``; a
    column of one value gets a constant linear model (zero weights, the logit of the column's smoothed share of
    positives as intercept), so every model is the stage's kind and its ``decision_function`` is a margin."""
    from sklearn.multiclass import OneVsRestClassifier

    from tailtune.models.tfidf import make_classifier

    base = make_classifier(stage, seed=seed, class_weight=class_weight)
    with warnings.catch_warnings():  # a label on every text: handled below
        warnings.filterwarnings("ignore", category=UserWarning, module="sklearn.multiclass")
        model = OneVsRestClassifier(base).fit(vectors, targets)
    features = vectors.shape[1]
    for j, fitted in enumerate(model.estimators_):
        if not hasattr(fitted, "coef_"):
            constant = make_classifier(stage, seed=seed, class_weight=class_weight)
            share = (targets[:, j].sum() + 0.5) / (len(targets) + 1.0)
            constant.classes_, constant.n_features_in_ = np.array([0, 1]), features
            constant.coef_, constant.intercept_ = np.zeros((1, features)), np.log([share / (1 - share)])
            model.estimators_[j] = constant
    return model


def out_of_fold_margins(stage: TfidfStage, vectors: Any, targets: np.ndarray, folds: np.ndarray, *, seed: int,
                        class_weight: str | None = None) -> np.ndarray:  # fmt: skip
    """``[n, K]`` margins of each text by models fitted on the other folds' texts."""
    margins = np.zeros(targets.shape, dtype=np.float64)
    for fold in np.unique(folds):
        held = folds == fold
        model = fit_binary_models(stage, vectors[~held], targets[~held], seed=seed, class_weight=class_weight)
        margins[held] = model.decision_function(vectors[held])
    return margins


def fit_label_sets(stage: TfidfStage, train: TextDataset, label_map: LabelMap, *, seed: int,
                   settings: LabelSetSettings | None = None,
                   choose: Rule = task_rule) -> TfidfMultiLabelModel:  # fmt: skip
    """Fit the multi-label model of ``stage`` on ``train`` and fold in the thresholds chosen out of fold.

    Args:
        stage: The features and the linear model (its analyzer decided: :func:`~tailtune.models.tfidf.fit`).
        train: Multi-label training data.
        label_map: Its labels (every one on at least one training text).
        seed: Seeds the folds and the linear SVM's coordinate descent.
        settings: The folds and the class weights (default: the module's).
        choose: The threshold rule (default: the multi-label task's, :func:`task_rule`).

    Raises:
        TailTuneError: The vectoriser keeps no term.
    """
    from sklearn.pipeline import Pipeline

    from tailtune.models.tfidf import warn_few_shared_terms
    from tailtune.models.tfidf_terms import make_vectorizer

    settings = settings or LabelSetSettings()
    targets = label_map.encode_sets(train.labels, source=train.source).astype(np.int64)
    vectorizer = make_vectorizer(stage)
    try:
        vectors = vectorizer.fit_transform(train.texts)
    except ValueError as exc:
        raise TailTuneError(f"{train.source}: the TF-IDF stage cannot be fitted ({first_line(exc)}); lower min_df, "
                            "or, for texts of few words (emoji, symbols, codes), set analyzer: char in the stage"
                            ) from None  # fmt: skip
    warn_few_shared_terms(vectors, stage, train.source)
    weight = settings.class_weight
    started = time.perf_counter()
    model = fit_binary_models(stage, vectors, targets, seed=seed, class_weight=weight)
    folds = min(settings.folds, len(train))
    margins = None
    if folds >= 2:
        ids = fold_ids(train, folds, seed=seed)
        margins = out_of_fold_margins(stage, vectors, targets, ids, seed=seed, class_weight=weight)
    record = decision_record(label_map.labels, margins, targets, folds, choose)
    record["seconds"] = round(time.perf_counter() - started, 3)
    for fitted, offset in zip(model.estimators_, record["class_offsets"], strict=True):
        fitted.intercept_ = fitted.intercept_ + offset  # the margin less the logit of the threshold
    counts = dict(zip(label_map.labels, label_map.counts(train), strict=True))
    pipeline = Pipeline([("tfidf", vectorizer), ("classifier", model)])
    return TfidfMultiLabelModel(pipeline, label_map.labels, counts, stage, record)


def probe(stage: TfidfStage, sample: TextDataset, label_map: LabelMap, *,
          seed: int) -> tuple[Callable[[Sequence[str]], Any], float]:  # fmt: skip
    """Fit the vectoriser and the binary models once on ``sample`` (no folds, no thresholds), as a run's time
    estimate measures them: their margins for new texts, and the seconds the binary models took to fit (a run
    fits them :data:`FOLDS` more times, each on ``(FOLDS - 1) / FOLDS`` of its texts)."""
    from sklearn.pipeline import make_pipeline

    from tailtune.models.tfidf_terms import make_vectorizer

    vectorizer = make_vectorizer(stage)
    vectors = vectorizer.fit_transform(sample.texts)
    targets = label_map.encode_sets(sample.labels, source=sample.source).astype(np.int64)
    started = time.perf_counter()
    models = fit_binary_models(stage, vectors, targets, seed=seed)
    return make_pipeline(vectorizer, models).decision_function, time.perf_counter() - started


def decision_record(labels: Sequence[str], margins: np.ndarray | None, targets: np.ndarray, folds: int,
                    choose: Rule = task_rule) -> dict[str, Any]:  # fmt: skip
    """The thresholds ``choose`` picks on out-of-fold ``margins`` and how: ``metrics.json``'s ``calibration`` and
    the model's record.

    Keys as the fine-tuned multi-label models record theirs (``method``, ``tau``, ``class_offsets`` = ``-logit``
    of each threshold, the macro-F1 before and after, here out of fold), with the thresholds by label, the global
    threshold, the rule, each label's out-of-fold positives, and micro- and macro-F1 out of fold before and after.
    Without ``margins`` (fewer than two texts) every threshold is 0.5.
    """
    if margins is None:
        thresholds = np.full(len(labels), 0.5)
        how: dict[str, Any] = {"chosen_on": f"nothing: {len(targets)} training text(s) make no two folds; every "
                               "threshold is 0.5"}  # fmt: skip
        before = after = None
    else:
        thresholds, how = choose(margins, targets)
        thresholds = np.clip(np.asarray(thresholds, dtype=np.float64), 1e-6, 1 - 1e-6)
        how = {"chosen_on": f"out-of-fold scores of the training data ({folds} folds)",
               "score": "sigmoid of each label's margin", **how}  # fmt: skip
        offsets = -np.log(thresholds / (1 - thresholds))
        before, after = _f1s(targets, margins > 0), _f1s(targets, margins + offsets > 0)
    return {
        "method": "label-thresholds", "tau": 0.0,
        "class_offsets": [round(float(-np.log(t / (1 - t))), 6) + 0.0 for t in thresholds],
        "validation_macro_f1_before": before and before["macro_f1"],
        "validation_macro_f1_after": after and after["macro_f1"],
        "out_of_fold_before": before, "out_of_fold_after": after,
        "thresholds": {name: round(float(t), 6) for name, t in zip(labels, thresholds, strict=True)}, **how,
        "folds": folds, "n_positives": dict(zip(labels, targets.sum(axis=0).astype(int).tolist(), strict=True)),
    }  # fmt: skip


def _f1s(targets: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Micro- and macro-F1 (over every label: each has training texts) of 0/1 predictions."""
    from sklearn.metrics import f1_score

    return {average: round(float(f1_score(targets, predicted.astype(np.int64), average=average.split("_")[0],
                                          zero_division=0)), 6) for average in ("micro_f1", "macro_f1")}  # fmt: skip


class TfidfMultiLabelModel:
    """A fitted multi-label TF-IDF pipeline as tailtune predicts with it; what ``TailTuner.load`` gives for its
    folder.

    Attributes:
        pipeline: The fitted scikit-learn pipeline (``tfidf``, then a ``OneVsRestClassifier`` whose intercepts
            hold the thresholds): its ``predict`` gives the 0/1 label indicator matrix.
        classes_: The labels in column order, integers where every label is one.
        train_counts: Training texts per label name.
        stage: The features and classifier.
        record: The thresholds and how they were chosen (:func:`decision_record`).
        batch_size: Texts scored at a time (None: all at once).
    """

    #: Any number of labels per text, each decided by its score above 0.5.
    task: Task = MultiLabel()
    #: Every text is read whole: no token budget.
    reading = None
    #: The scores are margins shifted by the thresholds, through a sigmoid: no probabilities.
    calibrated = False

    def __init__(self, pipeline: Pipeline, labels: Sequence[str], train_counts: dict[str, int], stage: TfidfStage,
                 record: dict[str, Any], *, batch_size: int | None = None) -> None:  # fmt: skip
        labels = [str(name) for name in labels]
        models = getattr(pipeline[-1], "estimators_", None)
        if models is None or len(models) != len(labels) or sorted(record.get("thresholds", {})) != sorted(labels):
            raise TailTuneError(f"the pipeline's binary models do not match the {len(labels)} recorded labels; train "
                                "the model again")  # fmt: skip
        self.pipeline, self.train_counts, self.stage, self.record = pipeline, dict(train_counts), stage, record
        self.batch_size = batch_size
        kind = LabelMap(labels).kind
        self.classes_ = np.asarray([int(name) for name in labels] if kind == "integer" else labels)
        self._offsets = np.asarray(record["class_offsets"], dtype=np.float64)  # -logit(threshold), in label order
        self.thresholds = self.task.scores(-self._offsets)  # the intercepts' thresholds, exactly

    @property
    def label_map(self) -> LabelMap:
        """Label names in column order."""
        return LabelMap([str(label) for label in self.classes_])

    def margins(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, K]`` margins of the binary models with the thresholds folded in: a label is predicted where its
        margin is positive."""
        if not isinstance(texts, (str, bytes)) and hasattr(texts, "__len__") and len(texts) == 0:
            return np.zeros((0, len(self.classes_)))
        texts = dataset_from_values(texts, None, source="predict_proba()", allow_empty_texts=True).texts
        size = self.batch_size or len(texts)
        return np.concatenate([np.asarray(self.pipeline.decision_function(texts[i : i + size]), dtype=np.float64)
                               for i in range(0, len(texts), size)])  # fmt: skip

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Per-label scores ``[n, K]``, columns in the order of ``classes_``: ``sigmoid(margin - logit(t))``, above
        0.5 exactly for the labels predicted."""
        return self.task.scores(self.margins(texts))

    def raw_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Per-label scores before the thresholds, ``sigmoid(margin)``: a label is predicted where its raw score
        exceeds its threshold (``thresholds``)."""
        return self.task.scores(self.margins(texts) - self._offsets)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """The predicted label sets, a 0/1 indicator matrix ``[n, K]`` in the order of ``classes_``."""
        return self.task.decide(self.predict_proba(texts))

    def unread(self, texts: Sequence[str]) -> np.ndarray:
        """Which texts the model reads as nothing: no term of its vocabulary (one prediction for them all)."""
        texts = dataset_from_values(texts, None, source="unread()", allow_empty_texts=True).texts if len(texts) else []
        return without_terms(self.pipeline, texts)

    def score(self, texts: Sequence[str], labels: Any, sample_weight: Any = None) -> float:
        """Macro-F1 of the predictions for ``texts`` over the labels true or predicted, as
        :meth:`tailtune.TailTuner.score` (labels: a list of labels per text, or a 0/1 indicator matrix in the order
        of ``classes_``)."""
        from tailtune.scoring import macro_f1_score

        return macro_f1_score(self, texts, labels, sample_weight)

    def save(self, path: str | Path, *, scores: dict[str, Any] | None = None, **_: Any) -> None:
        """Write the model folder (as :meth:`~tailtune.models.tfidf.TfidfModel.save`; the record also holds the
        task and the thresholds)."""
        from tailtune.models.tfidf import save_folder

        labels = self.label_map.labels
        save_folder(Path(path), self.pipeline, {"task": self.task.name, "labels": labels,
                                                "train_counts": self.train_counts, "stage": self.stage.to_dict(),
                                                "thresholds": self.record},
                    card(self.stage, labels, self.train_counts, scores or {}))  # fmt: skip


def describe(stage: TfidfStage) -> str:
    """The features and the binary models, in words."""
    features = stage.describe().split(", " + stage.classifier)[0]
    return f"{features}, one {stage.classifier} per label (C={stage.C:g}, no class weights), each with a threshold"


def card(stage: TfidfStage, labels: list[str], train_counts: dict[str, int], scores: dict[str, Any]) -> str:
    """The model folder's ``README.md``: what the model is, how to load it, its scores."""
    from tailtune.models.tfidf import PIPELINE_FILE, RECORD_FILE

    lines = [
        "# TF-IDF + one-vs-rest linear models (tailtune strategy `tfidf`, several labels per text)",
        "",
        f"A scikit-learn pipeline: {describe(stage)}, chosen on out-of-fold scores of the training data and folded "
        f"into the model's intercept. No transformer. Trained on {len(labels)} labels; the most frequent is on "
        f"{max(train_counts.values(), default=0)} training texts, the rarest on "
        f"{min(train_counts.values(), default=0)}.",
        "",
        "```python",
        "import json, joblib",
        f'pipeline = joblib.load("{PIPELINE_FILE}")  # a pickle: load only files you trust',
        f'labels = json.load(open("{RECORD_FILE}"))["labels"]',
        'rows = pipeline.predict(["a new text"])  # 0/1, one column per label',
        "[[labels[j] for j in row.nonzero()[0]] for row in rows]",
        "```",
        "",
        "`tailtune predict --model FOLDER` and `tailtune evaluate --model FOLDER` load it too.",
    ]
    if scores.get("split"):
        macro = "not measured" if scores.get("macro_f1") is None else f"{scores['macro_f1']:.4f}"
        lines += ["", f"Scores on the {scores['split']} split: micro-F1 {scores['micro_f1']:.4f}, macro-F1 {macro}."]
    return "\n".join(lines) + "\n"
