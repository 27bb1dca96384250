"""The classic baseline, strategy ``tfidf``: TF-IDF features and a class-balanced linear model, no transformer.

One :class:`~tailtune.config.TfidfStage` describes the model; :func:`make_pipeline` builds it as a scikit-learn
``Pipeline`` (``TfidfVectorizer``, then ``LinearSVC`` or ``LogisticRegression`` with ``class_weight="balanced"``).
:func:`train_into` is what :func:`tailtune.runs.train.train_run` runs for it: the pipeline is fitted on all the training
data and scored by :func:`tailtune.metrics.compute_metrics`, the metric path of every run, into a run directory
with the same files as a fine-tuned one. Nothing is chosen on validation data (``tailtune tune`` searches ``C``
there: :func:`suggest_stage`).

Its model folder holds ``pipeline.joblib`` (``joblib.load`` gives the fitted pipeline, whose ``predict`` returns the
training labels), ``tailtune.json`` (the record tailtune loads it by: labels, training counts, the stage) and a short
``README.md``. :class:`TfidfModel` is the loaded model: ``tailtune predict`` and ``tailtune evaluate`` use it as
they use a fine-tuned one. A class's score is the logistic regression's probability, or for the linear SVM a
softmax over its margins: it orders the classes as the SVM does, but it is no calibrated probability (margins lie
near -1 and +1, so it understates confidence; on R8 the mean top score is 0.56 at accuracy 0.98).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailtune import __version__
from tailtune.config import TFIDF_CHAR_NGRAMS, RunConfig, TfidfStage
from tailtune.data.types import LabelMap, Splits, TextDataset
from tailtune.data.values import dataset_from_values
from tailtune.errors import TailTuneError, first_line
from tailtune.fileio import write_atomic, write_json
from tailtune.metrics import score_probabilities, softmax
from tailtune.runs import rundir

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.joblib"
RECORD_FILE = "tailtune.json"
CARD_FILE = "README.md"
FORMAT = "tailtune-tfidf"
#: The run settings a TF-IDF run uses, and all its ``config.json`` records beside the strategy and the stage; the
#: others shape fine-tuning only.
RUN_SETTINGS = ("seed", "report_to")
#: The range ``tailtune tune`` searches ``C`` in, on a log scale.
C_RANGE = (1e-2, 1e2)
#: Letters of the scripts written without spaces between words: Thai, Lao, Tibetan, Myanmar, Khmer, the Japanese
#: kana (halfwidth katakana too) and the CJK ideographs (with 々, 〆, 〇 and the extensions).
_UNSPACED = (
    "\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_UNSPACED_RUN = re.compile(f"[{_UNSPACED}]+")
_OTHER_WORDS = re.compile(f"[^\\W\\d_{_UNSPACED}]+")
#: Letters of such a script whose runs (between spaces, punctuation, digits and other letters) average more than
#: this many are words written together: text segmented with spaces averages under 2 (Chinese words have 1 or 2
#: characters, few have more), an unsegmented headline or clause has 4 or more.
RUN_LETTERS = 2.5


def runs_words_together(text: str) -> bool:
    """Whether ``text`` is written without spaces between its words.

    It is where it has at least as many letters of a script written so (Chinese, Japanese, Thai, ...; each about a
    syllable) as words of other scripts, and their runs average more than :data:`RUN_LETTERS` letters (the same
    script segmented into words with spaces does not).
    """
    runs = _UNSPACED_RUN.findall(text)
    if not runs:
        return False
    letters = sum(map(len, runs))
    return letters > RUN_LETTERS * len(runs) and letters >= len(_OTHER_WORDS.findall(text))


def choose_analyzer(texts: Sequence[str]) -> tuple[str, str]:
    """What ``analyzer: auto`` reads in these training texts, and why.

    ``char`` where more than half of them are written without spaces between words (:func:`runs_words_together`):
    there a word n-gram is a whole clause or text, seen once, and a new text shares none with the training texts;
    else ``word``, the n-grams of text whose words are separated by spaces.

    Returns:
        ``word`` or ``char``, and the reason (how many texts run their words together).
    """
    together = sum(map(runs_words_together, texts))
    counted = (f"auto: {together} of {len(texts)} training texts are written without spaces between words (as "
               "Chinese, Japanese or Thai are)")  # fmt: skip
    if 2 * together > len(texts):
        return "char", counted
    return "word", f"{counted}; character n-grams are read where more than half are"


def analyzer_decision(stage: TfidfStage, texts: Sequence[str] | None) -> tuple[str, str]:
    """The analyzer a stage reads ``texts`` (its training texts) with, ``word`` or ``char``, and why: the one
    given, else :func:`choose_analyzer`'s choice (words where there are no texts to decide on)."""
    if stage.analyzer != "auto":
        return stage.analyzer, "given"
    if texts is None:
        return "word", "auto without training texts: words"
    return choose_analyzer(texts)


def make_pipeline(stage: TfidfStage | None = None, *, seed: int = 0, texts: Sequence[str] | None = None) -> Pipeline:
    """The unfitted scikit-learn pipeline of a TF-IDF stage (default: the ``tfidf`` strategy's).

    Args:
        stage: The features and classifier.
        seed: Seeds the linear SVM's coordinate descent (logistic regression's solver is deterministic).
        texts: The training texts, on which ``analyzer: auto`` is decided (:func:`choose_analyzer`); without
            them ``auto`` reads words.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    stage = stage or TfidfStage()
    tf = {"min_df": stage.min_df, "sublinear_tf": stage.sublinear_tf}
    if analyzer_decision(stage, texts)[0] == "char":
        # Within words (char_wb): an n-gram never spans the space between two words of other scripts in the text.
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=TFIDF_CHAR_NGRAMS, **tf)
    else:
        vectorizer = TfidfVectorizer(ngram_range=(1, stage.ngram_max), **tf)
    if stage.classifier == "linear-svc":
        classifier = LinearSVC(C=stage.C, class_weight="balanced", random_state=seed)
    else:
        classifier = LogisticRegression(C=stage.C, class_weight="balanced", max_iter=1000, random_state=seed)
    return Pipeline([("tfidf", vectorizer), ("classifier", classifier)])


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

    def save(self, path: str | Path, *, scores: dict[str, Any] | None = None) -> None:
        """Write the model folder's files into the folder ``path``: the pipeline, the record and a card.

        Args:
            path: An empty folder (a run writes its ``model/`` through :func:`tailtune.runs.rundir.writing_model`).
            scores: The run's metrics, quoted in the card.
        """
        import joblib
        import sklearn

        path = Path(path)
        joblib.dump(self.pipeline, path / PIPELINE_FILE)
        labels = self.label_map.labels
        write_json(path / RECORD_FILE, {
            "format": FORMAT, "labels": labels, "train_counts": self.train_counts, "stage": self.stage.to_dict(),
            "versions": {"tailtune": __version__, "scikit-learn": sklearn.__version__},
        })  # fmt: skip
        write_atomic(path / CARD_FILE, _card(self.stage, labels, self.train_counts, scores or {}))

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
            if stage.classifier == "linear-svc":
                logger.info("%s: scores are a softmax over the linear SVM's margins; they rank the classes but are no "
                            "calibrated probabilities", path)  # fmt: skip
            return cls(pipeline, record["labels"], record["train_counts"], stage,
                       batch_size=settings.get("eval_batch_size"))  # fmt: skip
        except TailTuneError as exc:
            raise TailTuneError(f"{path}: {exc}") from None
        except Exception as exc:  # unpickling raises whatever the pickled classes raise
            raise TailTuneError(f"{path}: cannot load the TF-IDF model ({first_line(exc)}); train it again") from None


def is_tfidf_model(path: str | Path) -> bool:
    """Whether ``path`` is a TF-IDF model folder (it holds ``tailtune.json``)."""
    return (Path(path) / RECORD_FILE).is_file()


def fit(stage: TfidfStage, train: TextDataset, label_map: LabelMap, *, seed: int) -> TfidfModel:
    """Fit the pipeline of ``stage`` on ``train``; the model's stage names the analyzer it read with.

    The pipeline learns the labels as the user gave them, integers where every training label is one, so that
    ``joblib.load(...).predict`` returns what ``tailtune predict`` writes. A vocabulary that leaves most training
    texts with at most one term shared with another text is a warning (:func:`warn_few_shared_terms`).

    Raises:
        TailTuneError: The vectoriser keeps no term (e.g. ``min_df`` above every term's document count).
    """
    from tailtune.training.fitting import _label_kind

    typed = [int(name) for name in train.labels] if _label_kind(label_map) == "integer" else list(train.labels)
    stage = stage.replace(analyzer=analyzer_decision(stage, train.texts)[0])
    pipeline = make_pipeline(stage, seed=seed)
    try:
        # The pipeline's fit, step by step (the same model): the training texts' vectors are checked below.
        vectors = pipeline.named_steps["tfidf"].fit_transform(train.texts)
        pipeline.named_steps["classifier"].fit(vectors, typed)
    except ValueError as exc:
        raise TailTuneError(f"{train.source}: the TF-IDF stage cannot be fitted ({first_line(exc)}); lower min_df "
                            "or give texts with words") from None  # fmt: skip
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


def evaluate(model: TfidfModel, dataset: TextDataset, label_map: LabelMap) -> tuple[dict[str, Any], pd.DataFrame]:
    """Score ``model`` on labelled data: the metrics, and one row per example (``text``, ``label``, ``predicted``
    and the predicted class's ``score``), as a fine-tuned run's predictions."""
    probs = model.predict_proba(dataset.texts)
    names = label_map.labels
    # A softmax over the SVM's margins is no probability: its log loss would fall as C grows and rank tied
    # trials by that alone, so it is measured for logistic regression only.
    return score_probabilities(
        label_map.encode(dataset.labels, source=dataset.source), probs, texts=dataset.texts, labels=dataset.labels,
        label_names=names, train_counts=[model.train_counts[name] for name in names],
        calibrated=model.calibrated,
    )  # fmt: skip


def run_settings(config: RunConfig) -> dict[str, Any]:
    """What a TF-IDF run's ``config.json`` records under ``run``: the strategy, the settings it uses, the stage."""
    return {"strategy": config.strategy, **{name: getattr(config, name) for name in RUN_SETTINGS},
            "stages": [stage.to_dict() for stage in config.stages]}  # fmt: skip


def train_into(config: RunConfig, splits: Splits, label_map: LabelMap, out: Path, *, record: dict[str, Any],
               hooks: Sequence[Any] = (), save_model: bool = True, main: bool = True) -> dict[str, Any]:  # fmt: skip
    """Fit a TF-IDF run and write every file of its run directory but ``metrics.json`` into ``out``.

    Args:
        config: A run config whose one stage is a :class:`~tailtune.config.TfidfStage`.
        splits: Training data, and optional eval and test data; the metrics come from the test split (else the
            eval split), and with both the eval split is scored too (``metrics["eval"]``).
        label_map: The labels (:func:`tailtune.data.check_labels`).
        out: The folder the run is built in.
        record: ``config.json`` as every run writes it, without ``run`` (:func:`run_settings` fills it in).
        hooks: Hear the one ``history.jsonl`` entry (``on_log``), as the stage loop's hooks do.
        save_model: Write ``model/``.
        main: Write files (other processes of a distributed launch fit the same model and write nothing).

    Returns:
        The run's metrics, keyed as a fine-tuned run's.
    """
    (stage,) = config.stages
    if main:
        rundir.write_config(out, {**record, "run": run_settings(config)})
        rundir.reset_history(out)
    started = time.perf_counter()
    analyzer, reason = analyzer_decision(stage, splits.train.texts)
    model = fit(stage.replace(analyzer=analyzer), splits.train, label_map, seed=config.seed)
    seconds = round(time.perf_counter() - started, 3)
    features = len(model.pipeline.named_steps["tfidf"].vocabulary_)
    logger.info("%s: %d training texts, %d TF-IDF features of %s n-grams (%s), fitted in %.1fs", stage.name,
                len(splits.train), features, analyzer, reason, seconds)  # fmt: skip
    terms = {"features": features, "analyzer": analyzer, "analyzer_reason": reason}
    for hook in hooks:
        hook.on_log({"stage": 0, "stage_name": stage.name, "examples": len(splits.train), **terms,
                     "seconds": seconds})  # fmt: skip
    metrics: dict[str, Any] = {"split": None}
    target = splits.test if splits.test is not None else splits.eval
    if target is not None:
        metrics, predictions = evaluate(model, target, label_map)
        metrics["split"] = "test" if splits.test is not None else "eval"
        if main:
            rundir.write_predictions(out, predictions)
    if splits.test is not None and splits.eval is not None:
        metrics["eval"] = evaluate(model, splits.eval, label_map)[0]
    metrics["stages"] = [{"name": stage.name, "seconds": seconds, "examples": len(splits.train), **terms,
                          "phase": "train"}]  # fmt: skip
    # Nothing is chosen on validation data: the keys of a fine-tuned run's decisions, empty.
    metrics.update({
        "validation_split": {"source": None}, "selection": [], "calibration": None, "long_texts": None,
        "refit": {"done": False, "reason": "a TF-IDF model fits once, on all the training data"}, "refit_epochs": None,
    })  # fmt: skip
    if main and save_model:
        with rundir.writing_model(out) as tmp:
            model.save(tmp, scores=metrics)
    return metrics


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
