"""The classic baseline, strategy ``tfidf``: TF-IDF features and a class-balanced linear model, no transformer.

One :class:`~tailtune.config.TfidfStage` describes the model; :func:`make_pipeline` builds it as a scikit-learn
``Pipeline`` (``TfidfVectorizer``, then ``LinearSVC`` or ``LogisticRegression`` with ``class_weight="balanced"``).
:data:`FAMILY` is its :class:`~tailtune.models.family.ModelFamily`: ``tailtune train`` fits the pipeline on all the
training data and scores it as every run is scored, into a run directory with the same files as a fine-tuned one.
Nothing is chosen on validation data (``tailtune tune`` searches ``C`` there: :func:`suggest_stage`). Label sets
(multi-label data) fit one binary model per label, each with its own threshold: :mod:`tailtune.models.tfidf_multilabel`.

Its model folder holds ``pipeline.joblib`` (``joblib.load`` gives the fitted pipeline, whose ``predict`` returns the
training labels), ``tailtune.json`` (the record tailtune loads it by: labels, training counts, the stage) and a short
``README.md``. :class:`TfidfModel` is the loaded model: ``tailtune predict`` and ``tailtune evaluate`` use it as
they use a fine-tuned one. A class's score is the logistic regression's probability, or for the linear SVM a
softmax over its margins: it orders the classes as the SVM does, but it is no calibrated probability (margins lie
near -1 and +1, so it understates confidence; on R8 the mean top score is 0.56 at accuracy 0.98).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tailtune import __version__
from tailtune.config import RunConfig, TfidfStage
from tailtune.data.types import LabelMap, Splits, TextDataset
from tailtune.data.values import dataset_from_values
from tailtune.errors import TailTuneError, first_line
from tailtune.fileio import write_atomic, write_json
from tailtune.metrics import softmax
from tailtune.models.family import Decisions, FitResult
from tailtune.models.tfidf_terms import analyzer_decision, make_vectorizer, without_terms
from tailtune.models.tfidf_terms import choose_analyzer as choose_analyzer  # where it was first documented
from tailtune.task import SingleLabel, Task, get_task

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.joblib"
RECORD_FILE = "tailtune.json"
CARD_FILE = "README.md"
FORMAT = "tailtune-tfidf"
#: The run settings a TF-IDF run uses, and all its ``config.json`` records beside the strategy and the stage; the
#: others shape fine-tuning only.
RUN_SETTINGS = ("seed", "report_to", "time_budget")
#: The range ``tailtune tune`` searches ``C`` in, on a log scale.
C_RANGE = (1e-2, 1e2)


def make_pipeline(stage: TfidfStage | None = None, *, seed: int = 0, texts: Sequence[str] | None = None) -> Pipeline:
    """The unfitted scikit-learn pipeline of a TF-IDF stage (default: the ``tfidf`` strategy's).

    Args:
        stage: The features and classifier.
        seed: Seeds the linear SVM's coordinate descent (logistic regression's solver is deterministic).
        texts: The training texts, on which ``analyzer: auto`` is decided (:func:`choose_analyzer`); without
            them ``auto`` reads words.
    """
    from sklearn.pipeline import Pipeline

    stage = stage or TfidfStage()
    return Pipeline([("tfidf", make_vectorizer(stage, texts)), ("classifier", make_classifier(stage, seed=seed))])


def make_classifier(stage: TfidfStage, *, seed: int = 0, class_weight: str | None = "balanced") -> Any:
    """The unfitted linear model of a stage: ``LinearSVC`` or ``LogisticRegression`` with ``C`` and
    ``class_weight``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if stage.classifier == "linear-svc":
        return LinearSVC(C=stage.C, class_weight=class_weight, random_state=seed)
    return LogisticRegression(C=stage.C, class_weight=class_weight, max_iter=1000, random_state=seed)


def class_scores(pipeline: Pipeline, texts: Sequence[str]) -> np.ndarray:
    """``[n, K]`` class scores in the order of ``pipeline.classes_``, each row summing to 1.

    Logistic regression's probabilities; for the linear SVM, a softmax over its margins (the argmax is its
    prediction, the values are no calibrated probabilities).
    """
    if hasattr(pipeline, "predict_proba"):
        return pipeline.predict_proba(texts)
    margins = np.asarray(pipeline.decision_function(texts), dtype=np.float64)
    if margins.ndim == 1:  # two classes: one margin, positive for classes_[1]
        margins = np.column_stack([np.zeros_like(margins), margins])
    return softmax(margins)


class TfidfModel:
    """A fitted TF-IDF pipeline as tailtune predicts with it; what ``TailTuner.load`` gives for its folder.

    Attributes:
        pipeline: The fitted scikit-learn pipeline.
        classes_: The labels in class-id order (the run's order), integers where the training labels were.
        train_counts: Training examples per label name.
        stage: The features and classifier.
        batch_size: Texts scored at a time (None: all at once).
    """

    def __init__(self, pipeline: Pipeline, labels: Sequence[str], train_counts: dict[str, int], stage: TfidfStage,
                 *, batch_size: int | None = None) -> None:  # fmt: skip
        fitted = [str(name) for name in pipeline.classes_]
        if sorted(fitted) != sorted(labels):
            raise TailTuneError(f"the pipeline's classes ({', '.join(fitted)}) are not the recorded labels "
                                f"({', '.join(labels)}); train the model again")  # fmt: skip
        self._columns = [fitted.index(name) for name in labels]  # pipeline column of each class id
        self.pipeline, self.train_counts, self.stage, self.batch_size = pipeline, dict(train_counts), stage, batch_size
        self.classes_ = np.asarray(pipeline.classes_)[self._columns]

    #: One class per text: the pipeline's classifier is a multi-class one.
    task: Task = SingleLabel()
    #: Every text is read whole: no token budget.
    reading = None

    @property
    def calibrated(self) -> bool:
        """Whether the scores are probabilities (logistic regression), not a softmax over a linear SVM's margins."""
        return self.stage.classifier == "logistic-regression"

    @property
    def label_map(self) -> LabelMap:
        """Label names in class-id order."""
        return LabelMap([str(label) for label in self.classes_])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class scores ``[n, K]``, columns in the order of ``classes_`` (see :func:`class_scores`).

        Args:
            texts: One string per example (a list, tuple, 1-D array or Series); empty strings are allowed.
        """
        if not isinstance(texts, (str, bytes)) and hasattr(texts, "__len__") and len(texts) == 0:
            return np.zeros((0, len(self.classes_)))
        texts = dataset_from_values(texts, None, source="predict_proba()", allow_empty_texts=True).texts
        size = self.batch_size or len(texts)
        scores = [class_scores(self.pipeline, texts[i : i + size]) for i in range(0, len(texts), size)]
        return np.concatenate(scores)[:, self._columns]

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Predicted labels, of ``classes_``' type."""
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]

    def unread(self, texts: Sequence[str]) -> np.ndarray:
        """Which texts the model reads as nothing: no term of its vocabulary (one prediction for them all)."""
        texts = dataset_from_values(texts, None, source="unread()", allow_empty_texts=True).texts if len(texts) else []
        return without_terms(self.pipeline, texts)

    def score(self, texts: Sequence[str], labels: Any, sample_weight: Any = None) -> float:
        """Macro-F1 of the predictions for ``texts``, as :meth:`tailtune.TailTuner.score` (labels: one per text)."""
        from tailtune.scoring import macro_f1_score

        return macro_f1_score(self, texts, labels, sample_weight)

    def save(self, path: str | Path, *, scores: dict[str, Any] | None = None, **_: Any) -> None:
        """Write the model folder's files into the folder ``path``: the pipeline, the record and a card.

        Args:
            path: An empty or new folder (a run writes its ``model/`` through
                :func:`tailtune.runs.rundir.writing_model`).
            scores: The run's metrics, quoted in the card.
            **_: What a run tells every family's model as it saves it (the settings, the data's source): the
                pipeline and its record say all a TF-IDF model needs.
        """
        labels = self.label_map.labels
        save_folder(Path(path), self.pipeline, {"task": self.task.name, "labels": labels,
                                                "train_counts": self.train_counts, "stage": self.stage.to_dict()},
                    _card(self.stage, labels, self.train_counts, scores or {}))  # fmt: skip

    @classmethod
    def load(cls, path: str | Path, **settings: Any) -> TfidfModel:
        """Load a model folder written by :meth:`save`.

        Args:
            path: The folder (a run's ``model/``).
            **settings: Prediction settings given: ``eval_batch_size`` scores that many texts at a time; those of
                a transformer (``max_length``, ``long_texts``, ``mixed_precision``) are refused, since a TF-IDF
                model reads every text whole.

        Raises:
            TailTuneError: A transformer's setting, or a folder whose record or pipeline cannot be read.
        """
        import joblib

        for name, value in settings.items():
            if value is not None and name != "eval_batch_size":
                raise TailTuneError(f"{name} does not apply to {path}, a TF-IDF + linear model that reads every text "
                                    "whole; leave it out", setting=name)  # fmt: skip
        path = Path(path)
        try:
            record = json.loads((path / RECORD_FILE).read_text(encoding="utf-8"))
            if record.get("format") != FORMAT:
                raise ValueError(f"format {record.get('format')!r}, not {FORMAT!r}")
            stage = TfidfStage(**record["stage"])
            pipeline = joblib.load(path / PIPELINE_FILE)
            batch_size = settings.get("eval_batch_size")
            if get_task(record.get("task")).name == "multi-label":  # one binary model per label, thresholds folded in
                from tailtune.models.tfidf_multilabel import TfidfMultiLabelModel

                return TfidfMultiLabelModel(pipeline, record["labels"], record["train_counts"], stage,
                                            record["thresholds"], batch_size=batch_size)  # fmt: skip
            if stage.classifier == "linear-svc":
                logger.info("%s: scores are a softmax over the linear SVM's margins; they rank the classes but are no "
                            "calibrated probabilities", path)  # fmt: skip
            return cls(pipeline, record["labels"], record["train_counts"], stage, batch_size=batch_size)
        except TailTuneError as exc:
            raise TailTuneError(f"{path}: {exc}") from None
        except Exception as exc:  # unpickling raises whatever the pickled classes raise
            raise TailTuneError(f"{path}: cannot load the TF-IDF model ({first_line(exc)}); train it again") from None


def save_folder(path: Path, pipeline: Pipeline, record: dict[str, Any], card: str) -> None:
    """Write a TF-IDF model folder into ``path`` (made where it does not exist yet): the pipeline, the record
    (``record`` with the format and the versions) and the card."""
    import joblib
    import sklearn

    path.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, path / PIPELINE_FILE)
    versions = {"tailtune": __version__, "scikit-learn": sklearn.__version__}
    write_json(path / RECORD_FILE, {"format": FORMAT, **record, "versions": versions})
    write_atomic(path / CARD_FILE, card)


def is_tfidf_model(path: str | Path) -> bool:
    """Whether ``path`` is a TF-IDF model folder (it holds ``tailtune.json``)."""
    return (Path(path) / RECORD_FILE).is_file()


def fit(stage: TfidfStage, train: TextDataset, label_map: LabelMap, *, seed: int) -> Any:
    """Fit the pipeline of ``stage`` on ``train``; the model's stage names the analyzer it read with. Label sets
    (multi-label data) fit one binary model per label with its own threshold
    (:func:`tailtune.models.tfidf_multilabel.fit_label_sets`).

    The pipeline learns the labels as the user gave them, integers where every training label is one, so that
    ``joblib.load(...).predict`` returns what ``tailtune predict`` writes. A vocabulary that leaves most training
    texts with at most one term shared with another text is a warning (:func:`warn_few_shared_terms`).

    Raises:
        TailTuneError: The vectoriser keeps no term (e.g. ``min_df`` above every term's document count).
    """
    stage = stage.replace(analyzer=analyzer_decision(stage, train.texts)[0])
    if train.multi_label:
        from tailtune.models.tfidf_multilabel import fit_label_sets

        return fit_label_sets(stage, train, label_map, seed=seed)
    typed = [int(name) for name in train.labels] if label_map.kind == "integer" else list(train.labels)
    pipeline = make_pipeline(stage, seed=seed)
    try:
        # The pipeline's fit, step by step (the same model): the training texts' vectors are checked below.
        vectors = pipeline.named_steps["tfidf"].fit_transform(train.texts)
        pipeline.named_steps["classifier"].fit(vectors, typed)
    except ValueError as exc:
        raise TailTuneError(f"{train.source}: the TF-IDF stage cannot be fitted ({first_line(exc)}); lower min_df, "
                            "or, for texts of few words (emoji, symbols, codes), set analyzer: char in the stage"
                            ) from None  # fmt: skip
    warn_few_shared_terms(vectors, stage, train.source)
    counts = dict(zip(label_map.labels, label_map.counts(train), strict=True))
    return TfidfModel(pipeline, label_map.labels, counts, stage)


def warn_few_shared_terms(vectors: Any, stage: TfidfStage, source: str) -> None:
    """Warn where most training texts have at most one term that another training text has too.

    A term of one text only tells nothing about a new text; where most texts have no more than one shared term
    (words run together and read as one term per text, or ``min_df`` drops nearly all), the model sees next to
    nothing and predicts the most frequent class for most new texts.

    Args:
        vectors: The training texts' TF-IDF vectors, a CSR matrix ``[n, terms]`` (each stored value a term present).
        stage: The stage, its analyzer decided, for the message.
        source: The training data, for the message.
    """
    texts = vectors.shape[0]
    document_counts = np.bincount(vectors.indices, minlength=vectors.shape[1])
    rows = np.repeat(np.arange(texts), np.diff(vectors.indptr))
    shared = np.bincount(rows, weights=document_counts[vectors.indices] >= 2, minlength=texts)
    few = int(np.count_nonzero(shared <= 1))
    if 2 * few > texts:
        fixes = ["where words are not separated by spaces, set analyzer: char in the stage"]
        if stage.min_df > 1:
            fixes.append("lower min_df")
        logger.warning("%s: %d of %d training texts have at most one TF-IDF term that another training text has "
                       "(analyzer %s, min_df %d): new texts will mostly get the most frequent class; %s", source, few,
                       texts, stage.analyzer, stage.min_df, ", or ".join(fixes))  # fmt: skip


class _Session:
    """One TF-IDF run: a single process fits (the others of a distributed launch fit the same model and write
    nothing)."""

    def __init__(self, config: RunConfig, label_map: LabelMap) -> None:
        (self.stage,) = config.stages
        self.config, self.label_map = config, label_map
        self.main = int(os.environ.get("RANK", "0")) == 0

    def run_settings(self) -> dict[str, Any]:
        """The strategy, the settings a TF-IDF run uses, the stage."""
        config = self.config
        return {"strategy": config.strategy, **{name: getattr(config, name) for name in RUN_SETTINGS},
                "stages": [stage.to_dict() for stage in config.stages]}  # fmt: skip

    def environment(self) -> dict[str, Any]:
        return {}  # no accelerator: scikit-learn on the CPU

    def wait(self) -> None:
        """A TF-IDF run has no process group to wait for."""

    def fit(self, splits: Splits, *, hooks: Sequence[Any] = ()) -> FitResult:
        """Fit on all the training data (nothing is chosen on validation data: ``tailtune tune`` searches ``C``
        there); ``hooks`` hear the one ``history.jsonl`` entry."""
        stage, train = self.stage, splits.train
        cost = estimate_cost(self.config, splits, self.label_map)
        for hook in hooks:
            hook.on_plan({k: v for k, v in cost.items() if k != "actual_s"})
        started = time.perf_counter()
        analyzer, reason = analyzer_decision(stage, train.texts)
        model = fit(stage.replace(analyzer=analyzer), train, self.label_map, seed=self.config.seed)
        seconds = round(time.perf_counter() - started, 3)
        features = len(model.pipeline.named_steps["tfidf"].vocabulary_)
        logger.info("%s: %d training texts, %d TF-IDF features of %s n-grams (%s), fitted in %.1fs", stage.name,
                    len(train), features, analyzer, reason, seconds)  # fmt: skip
        terms = {"features": features, "analyzer": analyzer, "analyzer_reason": reason}
        for hook in hooks:
            hook.on_log({"stage": 0, "stage_name": stage.name, "examples": len(train), **terms, "seconds": seconds})
        stages = [{"name": stage.name, "seconds": seconds, "examples": len(train), **terms, "phase": "train"}]
        refit = {"done": False, "reason": "a TF-IDF model fits once, on all the training data"}
        rule = getattr(model, "record", None)  # a multi-label model's thresholds, chosen out of fold
        return FitResult(model, stages, Decisions(refit=refit, calibration=rule, cost=cost), self.config)


#: The share of the training texts a TF-IDF run's estimate fits on (at least :data:`PROBE_TEXTS` of them).
PROBE_SHARE = 0.1
PROBE_TEXTS = 200


def estimate_cost(config: RunConfig, splits: Splits, label_map: LabelMap) -> dict[str, Any]:
    """The estimated time of a TF-IDF run, from fitting its pipeline on a sample of the training texts (a tenth,
    at least :data:`PROBE_TEXTS`) and scoring it, scaled to the whole: ``metrics.json``'s ``cost`` (``actual_s`` is
    filled in by whoever times the whole run)."""
    (stage,) = config.stages
    train = splits.train
    started = time.perf_counter()
    size = min(len(train), max(PROBE_TEXTS, round(PROBE_SHARE * len(train))))
    sample = train.subset(np.sort(np.random.default_rng(0).permutation(len(train))[:size]))
    describe, more = stage.describe, 0.0  # more: seconds of the fits a run makes beyond the one probed
    try:
        if train.multi_label:
            from tailtune.models import tfidf_multilabel as multi

            decided = stage.replace(analyzer=analyzer_decision(stage, sample.texts)[0])
            score, models_s = multi.probe(decided, sample, label_map, seed=config.seed)
            more, describe = models_s * (multi.FOLDS - 1), functools.partial(multi.describe, stage)
        else:
            pipeline = make_pipeline(stage, seed=config.seed, texts=sample.texts).fit(sample.texts, sample.labels)
            score = functools.partial(class_scores, pipeline)
        fitted = time.perf_counter()
        score(sample.texts)
        fit_s, predict_per_text = fitted - started, (time.perf_counter() - fitted) / max(1, size)
    except (ValueError, TailTuneError):  # a sample of one class, or of no term kept: the run itself says why
        fit_s, predict_per_text = time.perf_counter() - started, 0.0
    probe_s = time.perf_counter() - started
    target = splits.test if splits.test is not None else splits.eval
    scored = sum(len(part) for part in (target, splits.eval if splits.test is not None else None) if part is not None)
    parts = {"before": 0.0, "probe": round(probe_s, 3), "fit": round((fit_s + more) * len(train) / max(1, size), 3),
             "evaluate": round(predict_per_text * scored, 3)}  # fmt: skip
    estimate = sum(parts.values())
    budget = None
    if config.time_budget is not None:
        fits = estimate <= config.time_budget
        budget = {"budget_s": config.time_budget, "chosen": "as planned", "changes": [],
                  "planned_s": round(estimate, 1), "estimate_s": round(estimate, 1), "stopped": None,
                  "reason": "a TF-IDF model is fitted in one go, with nothing to shrink; its estimate "
                  f"{'fits' if fits else 'does not fit'} the budget"}  # fmt: skip
    plan = {"family": "tfidf", "strategy": config.strategy, "texts": len(train),
            "stages": [{"name": stage.name, "describe": describe()}]}  # fmt: skip
    probe = {"seconds": round(probe_s, 3), "sample_texts": size, "fit_s": round(fit_s, 3),
             "predict_per_text_s": predict_per_text}  # fmt: skip
    return {"estimate_s": round(estimate, 1), "actual_s": None, "parts": parts, "plan": plan, "probe": probe,
            "budget": budget}  # fmt: skip


class TfidfFamily:
    """TF-IDF features and a class-balanced linear model (:class:`~tailtune.models.family.ModelFamily`)."""

    name = "tfidf"
    uses_model = False

    def refuse_unused(self, strategy: str, given: Sequence[str]) -> None:
        refuse_unused(strategy, given)

    def suggest(self, trial: Any, strategy: str, stages: Sequence[Any]) -> dict[str, Any]:
        return suggest_stage(trial, strategy)

    def handles(self, config: RunConfig) -> bool:
        return config.classic

    def owns(self, path: str | Path) -> bool:
        return is_tfidf_model(path)

    def prepare(self, config: RunConfig, texts: Sequence[str] | None = None) -> RunConfig:
        return config  # every text is read whole: nothing to resolve

    def start(self, config: RunConfig, splits: Splits, label_map: LabelMap, *, show_progress: bool = True) -> _Session:
        return _Session(config, label_map)

    def load(self, path: str | Path, *, trust_remote_code: bool = False, **settings: Any) -> TfidfModel:
        return TfidfModel.load(path, **settings)


FAMILY = TfidfFamily()


def refuse_unused(strategy: str, given: Sequence[str]) -> None:
    """Refuse the first setting given for a TF-IDF strategy that it does not use (all but :data:`RUN_SETTINGS`).

    Args:
        strategy: The strategy's name, for the message.
        given: The names of the settings given (``model`` included where one was).

    Raises:
        TailTuneError: Naming the setting.
    """
    for name in given:
        if name not in RUN_SETTINGS:
            raise TailTuneError(f"{name} does not apply to strategy {strategy!r}, a TF-IDF + linear model without a "
                                "transformer; leave it out", setting=name)  # fmt: skip


def suggest_stage(trial: Any, strategy: str) -> dict[str, Any]:
    """A trial's settings for a TF-IDF strategy, as :func:`~tailtune.experiments.tune.suggest_settings` returns them:
    ``C`` on a
    log scale in :data:`C_RANGE`."""
    return {"settings": {}, "stages": [{"C": trial.suggest_float(f"{strategy}.C", *C_RANGE, log=True)}]}


def _card(stage: TfidfStage, labels: list[str], train_counts: dict[str, int], scores: dict[str, Any]) -> str:
    """The model folder's ``README.md``: what the model is, how to load it, its scores."""
    lines = [
        "# TF-IDF + linear model (tailtune strategy `tfidf`)",
        "",
        f"A scikit-learn pipeline: {stage.describe()}. No transformer. Trained on "
        f"{sum(train_counts.values())} texts of {len(labels)} classes.",
        "",
        "```python",
        "import joblib",
        f'pipeline = joblib.load("{PIPELINE_FILE}")  # a pickle: load only files you trust',
        'pipeline.predict(["a new text"])',
        "```",
        "",
        "`tailtune predict --model FOLDER` and `tailtune evaluate --model FOLDER` load it too.",
    ]
    if scores.get("split"):
        lines += ["", f"Scores on the {scores['split']} split: macro-F1 {scores['macro_f1']:.4f}, accuracy "
                  f"{scores['accuracy']:.4f}."]  # fmt: skip
    return "\n".join(lines) + "\n"
