"""A scikit-learn estimator: ``TailTuner(...).fit(texts, labels).predict(texts)``."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from tailtune.config import DEFAULT_STRATEGY, PREDICT_SETTINGS, PredictSettings, RunConfig, field_default
from tailtune.data.builtin import resolve_model
from tailtune.data.given import are_label_sets, check_listed_kinds, label_kind
from tailtune.data.label_sets import indicator_columns
from tailtune.data.types import LabelMap, Splits
from tailtune.data.values import column_of, dataset_from_values
from tailtune.errors import TailTuneError
from tailtune.fileio import FolderKind, atomic_dir
from tailtune.models.card import CARD_FILE, write_model_card
from tailtune.models.family import family_of, family_of_folder
from tailtune.models.saved import SAVED_MODEL, is_saved_model, read_record
from tailtune.models.transformer import check_max_length, load_saved_classifier, position_limit, save_classifier
from tailtune.scoring import macro_f1_score
from tailtune.strategies import SETTINGS, build_run_config
from tailtune.task import Task, get_task, task_of
from tailtune.training.batching import Encoded, encode
from tailtune.training.cost import plan_fit
from tailtune.training.fitting import FitContext, fit, resolve_max_length
from tailtune.training.loop import make_accelerator, predict_logits
from tailtune.training.unknown_tokens import UNKNOWN_SHARE, unknown_shares

if TYPE_CHECKING:
    from accelerate import Accelerator
    from sklearn.utils import Tags

logger = logging.getLogger(__name__)


#: The default of every setting: the strategy's (or :class:`~tailtune.config.RunConfig`'s) own value. A plain
#: string, as scikit-learn wants a default to be (no setting takes "default" as a value of its own); ``None``
#: could not serve, being a value of some settings (``patience=None`` never stops early).
UNSET: Any = "default"


def _given(value: Any) -> bool:
    """Whether a setting was given a value, not left at ``"default"`` (compared by value: pickles copy strings)."""
    return not (isinstance(value, str) and value == UNSET)


# What TailTuner.load takes: the settings of prediction (PredictSettings), as its message lists them.
_PREDICT_SETTINGS = tuple(sorted(PREDICT_SETTINGS))


def _is_any_saved_model(path: Path) -> bool:
    from tailtune.models.tfidf import is_tfidf_model

    return is_saved_model(path) or is_tfidf_model(path)


#: The folders :meth:`TailTuner.save` replaces: a model of either family saved before.
_ANY_SAVED_MODEL = FolderKind(SAVED_MODEL.name, SAVED_MODEL.noun, SAVED_MODEL.elsewhere, _is_any_saved_model)


class TailTunerNotFitted(TailTuneError, NotFittedError):
    """Prediction or saving before ``fit()`` or ``load()``: a TailTuneError and scikit-learn's NotFittedError."""


class TailTuner(ClassifierMixin, BaseEstimator):
    """Fine-tune a pretrained transformer classifier on long-tailed data, as a scikit-learn estimator.

    ``strategy="tfidf"`` (and no ``model``) fits the classic baseline instead, as ``tailtune train --strategy
    tfidf`` does: TF-IDF features and a linear model, for label sets one per label with its threshold.

    Every setting is a constructor parameter, so ``get_params``/``set_params``, ``clone``,
    ``GridSearchCV`` and ``cross_val_score`` see all of them. A setting left at ``default`` takes the
    strategy's value; see :class:`~tailtune.config.RunConfig` and :class:`~tailtune.config.StageConfig` for
    what each means. ``None`` is a value for the settings where it means something (``patience=None`` never
    stops early, ``attention_dropout=None`` keeps the checkpoint's), as in YAML files.

    Args:
        model: Local model folder, Hugging Face hub id, or ``builtin:minilm`` (the embedded MiniLM).
        strategy: A strategy name (``tailtune strategies`` lists them) or ``custom`` with ``stages``.
        stages: Per-stage override dicts by position, e.g. ``[{"lr": 1e-3}, {"epochs": 2}]``.
        show_progress: Progress bars during training.
        head, max_length, long_texts, batch_size, eval_batch_size, seed, gradient_accumulation_steps, mixed_precision,
        group_by_length, feature_cache, cache_dir, trust_remote_code, logging_steps, pooling, eval_fraction,
        eval_min_class_count, select_metric, eval_steps, patience, refit, calibrate, report_to, attention_dropout,
        time_budget: Run settings (:class:`~tailtune.config.RunConfig`); ``time_budget`` (seconds, or ``"10m"``)
            shrinks the plan to fit and stops training in time (``decisions_["cost"]`` says what it decided).
        epochs, lr, loss, weights, trainable, stage_batch_size, beta, sampler, min_steps: Stage settings, one
            value for every stage or a list with one per stage (``stage_batch_size`` sets
            :attr:`StageConfig.batch_size <tailtune.config.StageConfig>`).

    Attributes:
        classes_: The labels in class-id order, a NumPy array of the training labels' kind: integers (int64),
            booleans, or strings (object); :meth:`predict` returns values from it.
        model_, tokenizer_: The trained model and its tokenizer (a fine-tuned strategy).
        classic_: The fitted TF-IDF model (:class:`~tailtune.models.tfidf.TfidfModel`, or its multi-label
            counterpart), for ``strategy="tfidf"``.
        config_: The resolved run config (None after :meth:`load`).
        decisions_: What validation chose: the split, each stage's best epoch, the refit and the decision rule;
            and ``cost``: the plan, its estimated and actual seconds, and the time budget's decision.
        stages_: What each training stage did (:class:`~tailtune.training.loop.StageReport`: steps, time, cache).

    A fitted (or loaded) TailTuner pickles, e.g. with ``joblib.dump``: the pickle leaves out the ``accelerate``
    state, which is made again on the first prediction after loading, and holds the model on the CPU.

    Example:
        >>> clf = TailTuner(model="path/to/model", strategy="two-stage", epochs=2, lr=[1e-3, 5e-5])
        >>> clf.fit(texts, labels).predict(["a new text"])  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | None = None,
        strategy: str = DEFAULT_STRATEGY,
        *,
        stages: list[dict[str, Any]] | None = None,
        show_progress: bool = True,
        head: str = UNSET,
        max_length: int = UNSET,
        long_texts: str = UNSET,
        batch_size: int = UNSET,
        eval_batch_size: int = UNSET,
        seed: int = UNSET,
        gradient_accumulation_steps: int = UNSET,
        mixed_precision: str = UNSET,
        group_by_length: bool = UNSET,
        feature_cache: bool = UNSET,
        cache_dir: str | None = UNSET,
        trust_remote_code: bool = UNSET,
        logging_steps: int = UNSET,
        pooling: str = UNSET,
        eval_fraction: float = UNSET,
        eval_min_class_count: int = UNSET,
        select_metric: str = UNSET,
        eval_steps: int | None = UNSET,
        patience: int | None = UNSET,
        refit: bool | str = UNSET,
        calibrate: str = UNSET,
        report_to: str = UNSET,
        attention_dropout: float | None = UNSET,
        time_budget: float | str | None = UNSET,
        epochs: int | list[int] = UNSET,
        lr: float | list[float] = UNSET,
        loss: str | list[str] = UNSET,
        weights: str | list[str] = UNSET,
        trainable: str | list[str] = UNSET,
        stage_batch_size: int | None | list[int | None] = UNSET,
        beta: float | list[float] = UNSET,
        sampler: str | list[str] = UNSET,
        min_steps: int | None | list[int | None] = UNSET,
    ) -> None:
        # scikit-learn's convention: store the arguments as given; fit() validates them.
        arguments = dict(locals())
        for name in self._get_param_names():
            setattr(self, name, arguments[name])

    def settings(self) -> dict[str, Any]:
        """The settings given (not left at ``default``), by name, as :func:`build_run_config` takes them."""
        return {name: getattr(self, name) for name in SETTINGS if _given(getattr(self, name))}

    def _config(self) -> RunConfig:
        config = build_run_config(None, self.strategy, settings=self.settings(), stages=self.stages)
        if config.classic:  # no transformer: a model or a fine-tuning setting given is refused, naming it
            family_of(config).refuse_unused(self.strategy, [*(["model"] if self.model else []), *self.settings()])
            return config
        if not self.model:
            raise TailTuneError("TailTuner needs a model: a local model folder, a hub id or builtin:minilm")
        return config.replace(model=resolve_model(self.model))

    def fit(self, texts: Sequence[str], labels: Sequence[Any]) -> TailTuner:
        """Fine-tune on ``texts`` with ``labels``; returns ``self``.

        Args:
            texts: One string per example: a list, tuple, 1-D NumPy array or pandas Series (not a DataFrame:
                pass its text column).
            labels: One label per text, all strings, all integers (whole floats count as integers) or all
                booleans; ``classes_`` and :meth:`predict` give them back in that type. A column vector
                (shape ``[n, 1]``) is raveled with scikit-learn's ``DataConversionWarning``. Several labels per
                text (multi-label) as scikit-learn's multi-label estimators take them: a 0/1 indicator matrix
                ``[n, K]`` (``classes_`` is then ``0 .. K-1``, or a DataFrame's columns in their order; a column
                that marks no text keeps its place and is predicted 0) or one list of label names per text (an empty
                list: no label; a plain list of 0/1 lists is read as names, with a warning: pass
                ``np.asarray(y)`` for an indicator matrix); :meth:`predict` then gives a 0/1 indicator matrix in
                ``classes_`` order.

        Raises:
            TailTuneError: Input that is not one text and one label per row (a lone string, a table, None,
                no rows, a missing or non-string text, a missing label, continuous or mixed-kind labels),
                and bad settings.
        """
        started = time.perf_counter()
        if labels is None:  # worded as scikit-learn words it, which its estimator checks look for
            raise TailTuneError("fit() requires y to be passed, but the target y is None: give one label per text")
        columns = None  # an indicator matrix's label names, in the order of its columns
        if are_label_sets(labels):
            train = dataset_from_values(column_of(texts, "texts", "fit()"), labels, source="fit()")
            kind = LabelMap.from_label_sets(train.labels).kind
            columns = indicator_columns(labels, source="fit()")
            if columns is None:  # lists of names: each checked as one label a text is
                check_listed_kinds(labels, "fit()")
        else:
            values = column_of(labels, "labels", "fit()")
            train = dataset_from_values(column_of(texts, "texts", "fit()"), values, source="fit()")
            kind = label_kind(values, "fit()")
        task = task_of(train)
        config = task.prepare(self._config())
        label_map = task.label_map(Splits(train))
        self._set_classes(label_map, kind, columns)
        if config.classic:
            return self._fit_classic(config, train, label_map, started=started)
        self.config_ = resolve_max_length(config, train.texts)
        self.accelerator_ = make_accelerator(self.config_)
        # The same method as `tailtune train`: a held-out split, the best epochs, a refit and the decision rule.
        ctx = FitContext.of(self.config_, train, label_map, self.accelerator_, show_progress=self.show_progress)
        ctx = dataclasses.replace(ctx, label_kind=kind)  # recorded with the model: a loaded one predicts integers too
        plan = plan_fit(ctx, Splits(train), started=started)  # its estimated time, and a time budget's decision
        fitted = fit(ctx, Splits(train), plan=plan)
        self.config_ = fitted.config  # with what the fit decided (long_texts under auto)
        self.model_, self.tokenizer_, self.stages_ = fitted.model, fitted.tokenizer, fitted.stages
        self.decisions_ = fitted.decisions().to_dict()
        cost = plan.record()  # None without a time budget: nothing was probed
        self.decisions_["cost"] = cost and {**cost, "actual_s": round(time.perf_counter() - started, 2)}
        return self

    def _set_classes(self, label_map: LabelMap, kind: str, columns: list[str] | None) -> None:
        """``classes_``: the labels learned, or an indicator matrix's columns in their order. A column that marks no
        text is learned by no model; it keeps its place in the output, always 0, as scikit-learn's one-vs-rest
        classifiers keep it (so that ``cross_val_predict`` stacks folds that lack a rare label)."""
        outputs = columns or label_map.labels
        self.classes_ = _typed(outputs, kind)
        learned = {name: k for k, name in enumerate(label_map.labels)}
        self.output_columns_ = None if outputs == label_map.labels else np.array([learned.get(n, -1) for n in outputs])

    def _fit_classic(self, config: RunConfig, train: Any, label_map: LabelMap, *, started: float) -> TailTuner:
        """:meth:`fit` for a TF-IDF strategy: the model ``tailtune train --strategy tfidf`` fits (for label sets, one
        linear model per label with its threshold), held in ``classic_``."""
        splits = Splits(train)
        result = family_of(config).start(config, splits, label_map, show_progress=self.show_progress).fit(splits)
        self.classic_, self.config_, self.stages_ = result.classifier, result.config, result.stages
        self.decisions_ = result.decisions.to_dict()
        self.decisions_["cost"] = {**result.decisions.cost, "actual_s": round(time.perf_counter() - started, 2)}
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities ``[n, K]``, columns in the order of ``classes_``.

        Args:
            texts: One string per example (a list, tuple, 1-D array or Series); empty strings are allowed.
        """
        return self._proba(texts, "predict_proba()")

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Predicted labels: a NumPy array of ``classes_``' type (integers for integer labels, else strings); for a
        multi-label model a 0/1 indicator matrix ``[n, K]``, columns in the order of ``classes_``."""
        decided = self.task.decide(self._proba(texts, "predict()"))
        return decided if decided.ndim == 2 else self.classes_[decided]

    def unread(self, texts: Sequence[str]) -> np.ndarray:
        """Which texts the model reads as (almost) nothing, so that they all get the prediction of no input: for a
        fine-tuned model, those whose tokens are mostly the tokenizer's unknown token (a script its vocabulary does
        not cover); for ``tfidf``, those holding no term of its vocabulary."""
        self._check_fitted()
        column = column_of(texts, "texts", "unread()")
        if not len(column):
            return np.zeros(0, dtype=bool)
        texts = dataset_from_values(column, None, source="unread()", allow_empty_texts=True).texts
        if hasattr(self, "classic_"):
            return self.classic_.unread(texts)
        shares = unknown_shares(self.tokenizer_, self._encode(texts))  # read as prediction reads them
        return np.zeros(len(texts), bool) if shares is None else shares >= UNKNOWN_SHARE

    def score(self, texts: Sequence[str], labels: Sequence[Any], sample_weight: Any = None) -> float:
        """Macro-F1 of the predictions for ``texts``: ``f1_score(labels, predict(texts), average="macro")``.

        Averaged, as scikit-learn's ``f1_score`` does, over the classes present in ``labels`` or in the
        predictions; labels are compared by name after the same normalisation as in :meth:`fit` (``1.0`` is
        ``1``). Unlike scikit-learn's classifiers, whose ``score`` is accuracy: on long-tailed data accuracy
        rewards ignoring the tail. ``GridSearchCV`` and ``cross_val_score`` use it when given no ``scoring``.
        For label sets, an indicator DataFrame's columns are matched to ``classes_`` by name, and a label never
        seen in training counts as missed (as an unseen single label does).
        """
        self._check_fitted()
        return macro_f1_score(self, texts, labels, sample_weight)

    def save(self, path: str | Path) -> Path:
        """Save model, tokenizer and model card (``transformers.pipeline`` loads the folder); for
        ``strategy="tfidf"`` the folder ``tailtune train`` writes (``joblib.load`` its ``pipeline.joblib``).

        The folder is replaced whole, so it must be new, empty, or a model saved before; any other folder is
        refused (a :class:`~tailtune.errors.TailTuneError`) and left as it was.
        """
        self._check_fitted()
        with atomic_dir(path, _ANY_SAVED_MODEL) as tmp:
            if hasattr(self, "classic_"):  # the TF-IDF model's own folder: pipeline, record and card
                self.classic_.save(tmp)
            else:
                save_classifier(self.model_, self.tokenizer_, tmp)
                if self.config_ is not None:
                    learned = self.model_.config.id2label
                    labels = [learned[k] for k in sorted(learned)]
                    counts = [self.train_counts[name] for name in labels]
                    write_model_card(tmp, self.config_, labels, counts, self.decisions_, data_source="fit()")
                elif (Path(self.model) / CARD_FILE).is_file():  # loaded: keep the card it came with
                    shutil.copyfile(Path(self.model) / CARD_FILE, tmp / CARD_FILE)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, *, trust_remote_code: bool = False, **settings: Any) -> TailTuner:
        """Load a saved classifier, ready to predict.

        Args:
            path: A folder written by :meth:`save` or a run directory's ``model/``.
            trust_remote_code: Allow code shipped with the checkpoint.
            **settings: Prediction settings: ``max_length`` (default: the training length recorded with the
                model), ``long_texts`` (default: as recorded with the model, else ``truncate``), ``eval_batch_size``
                and ``mixed_precision``.

        A TF-IDF model's folder (strategy ``tfidf``) gives a :class:`~tailtune.models.tfidf.TfidfModel`, with the same
        ``classes_``, ``predict`` and ``predict_proba``.
        """
        unknown = sorted(set(settings) - set(_PREDICT_SETTINGS))
        if unknown:
            raise TailTuneError(f"TailTuner.load: unknown prediction setting(s) {', '.join(unknown)}; "
                                f"valid: {', '.join(_PREDICT_SETTINGS)}")  # fmt: skip
        given = {name: value for name, value in settings.items() if value is not None}
        checked = PredictSettings(**given)  # each value checked as for training, and coerced (max_length "16")
        given = {name: getattr(checked, name) for name in given}
        return family_of_folder(path).load(path, trust_remote_code=trust_remote_code, **given)

    @classmethod
    def _load_transformer(cls, path: str | Path, *, trust_remote_code: bool = False, **given: Any) -> TailTuner:
        """:meth:`load` for a fine-tuned transformer's folder, with prediction settings already checked."""
        model, tokenizer, labels = load_saved_classifier(path, trust_remote_code=trust_remote_code)
        if "max_length" in given:
            check_max_length(given["max_length"], model.config, tokenizer)
        tuner = cls(model=str(path), show_progress=False, **given)
        tuner.model_, tuner.tokenizer_ = model, tokenizer
        tuner.classes_ = _typed(labels, read_record(model.config).label_kind)
        tuner.config_ = None
        tuner.accelerator_ = None
        tuner._accelerator()  # made now, as the loaded model's settings ask
        return tuner

    @property
    def label_map(self) -> LabelMap:
        """Label names in class-id order."""
        self._check_fitted()
        return LabelMap([str(label) for label in self.classes_])

    @property
    def calibrated(self) -> bool:
        """Whether the scores are probabilities: a softmax (sigmoids, for label sets) over the classifier's logits;
        a TF-IDF linear SVM's are not."""
        return self.classic_.calibrated if hasattr(self, "classic_") else True

    @property
    def task(self) -> Task:
        """What the model's labels are (:mod:`tailtune.task`), as recorded with it."""
        self._check_fitted()
        if hasattr(self, "classic_"):
            return self.classic_.task
        return get_task(read_record(self.model_.config).task)

    @property
    def train_counts(self) -> dict[str, int]:
        """Training examples per label name of the data the model trained on, as recorded with it."""
        self._check_fitted()
        if hasattr(self, "classic_"):
            return dict(self.classic_.train_counts)
        return dict(read_record(self.model_.config).train_counts or {})

    def _max_length(self) -> int:
        if self.config_ is not None:
            return self.config_.max_length
        if _given(self.max_length):
            return int(self.max_length)
        trained = read_record(self.model_.config).max_length
        return int(trained) if trained else min(512, position_limit(self.model_.config, self.tokenizer_) or 512)

    @property
    def reading(self) -> str | None:
        """How the fitted or loaded model reads a text longer than its ``max_length``: ``chunks`` (whole, in windows)
        or ``truncate`` (its first ``max_length`` tokens); None for a TF-IDF model, which reads every text whole."""
        self._check_fitted()
        return None if hasattr(self, "classic_") else self._long_texts()

    def _long_texts(self) -> str:
        if self.config_ is not None:
            return self.config_.long_texts
        if _given(self.long_texts) and self.long_texts != "auto":
            return str(self.long_texts)
        # Recorded as chosen when the model was fitted; a model saved without a record reads as it trained.
        return read_record(self.model_.config).long_texts or "truncate"

    def _eval_batch_size(self) -> int:
        if self.config_ is not None:
            return self.config_.eval_batch_size
        if _given(self.eval_batch_size):
            return int(self.eval_batch_size)
        return field_default(RunConfig, "eval_batch_size")

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_") and not hasattr(self, "classic_"):
            raise TailTunerNotFitted("this TailTuner is not fitted yet: call fit() or TailTuner.load() first")

    def _proba(self, texts: Any, call: str) -> np.ndarray:
        self._check_fitted()
        column = column_of(texts, "texts", call)
        if not len(column):
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        texts = dataset_from_values(column, None, source=call, allow_empty_texts=True).texts
        if hasattr(self, "classic_"):
            scores = self.classic_.predict_proba(texts)
        else:
            logits = predict_logits(self.model_, self._encode(texts), self._accelerator(),
                                    batch_size=self._eval_batch_size(), inference_only=True)  # fmt: skip
            scores = self.task.scores(logits)
        where = getattr(self, "output_columns_", None)
        if where is None:
            return scores
        out = np.zeros((len(scores), len(where)), dtype=scores.dtype)  # a label no text marked: never predicted
        out[:, where >= 0] = scores[:, where[where >= 0]]
        return out

    def _encode(self, texts: list[str]) -> Encoded:
        """The texts as prediction reads them: at the model's length, long ones as :meth:`_long_texts` says."""
        return encode(self.tokenizer_, texts, None, max_length=self._max_length(), long_texts=self._long_texts())

    def _accelerator(self) -> Accelerator:
        """The Accelerator to predict with; made again on first use after unpickling, which drops it."""
        if getattr(self, "accelerator_", None) is None:
            if self.config_ is not None:
                config = self.config_
            else:  # loaded: the prediction settings it was loaded with
                given = {name: value for name, value in self.settings().items() if name in _PREDICT_SETTINGS}
                config = PredictSettings(**given)
            self.accelerator_ = make_accelerator(config)
        return self.accelerator_

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        # An Accelerator holds weak references (no pickling) and process-wide state (no loading elsewhere).
        state.pop("accelerator_", None)
        model = state.get("model_")
        if model is not None and any(p.device.type != "cpu" for p in model.parameters()):
            # Saved from the CPU, so that a model trained on a GPU loads on a machine without one; the next
            # prediction moves it back to the accelerator's device.
            state["model_"] = model.cpu()
        return state

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        # One text per example: a 1-D array of strings, not the 2-D numeric X most estimators take.
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


def _typed(names: list[str], kind: str) -> np.ndarray:
    """Label names as the user gave them: back to ``int`` or ``bool`` when every training label was one."""
    if kind == "integer":
        return np.array([int(name) for name in names])
    if kind == "boolean":
        return np.array([name == "True" for name in names])
    return np.array(names, dtype=object)
