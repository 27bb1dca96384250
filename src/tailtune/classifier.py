"""A scikit-learn estimator: ``TailTuner(...).fit(texts, labels).predict(texts)``."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from tailtune.batching import encode
from tailtune.builtin import resolve_model
from tailtune.config import RunConfig
from tailtune.data import LabelMap, TextDataset
from tailtune.errors import TailTuneError
from tailtune.fileio import atomic_dir
from tailtune.metrics import softmax
from tailtune.modelcard import CARD_FILE, write_model_card
from tailtune.modeling import check_max_length, load_saved_classifier, position_limit, save_classifier
from tailtune.run import Splits, check_labels, fit_selected, resolve_max_length
from tailtune.saved import read_record, write_record
from tailtune.strategies import SETTINGS, build_run_config
from tailtune.training import make_accelerator, predict_logits

logger = logging.getLogger(__name__)


class _Unset:
    """The default of every setting: the strategy's (or :class:`~tailtune.config.RunConfig`'s) own value."""

    def __repr__(self) -> str:
        return "default"

    def __reduce__(self) -> str:
        return "UNSET"  # pickled by reference, so clone() and joblib keep the one instance


UNSET: Any = _Unset()
# What TailTuner.load takes: the settings of prediction.
_PREDICT_SETTINGS = ("eval_batch_size", "max_length", "mixed_precision")


class TailTunerNotFitted(TailTuneError, NotFittedError):
    """Prediction or saving before ``fit()`` or ``load()``: a TailTuneError and scikit-learn's NotFittedError."""


class TailTuner(ClassifierMixin, BaseEstimator):
    """Fine-tune a pretrained transformer classifier on long-tailed data, as a scikit-learn estimator.

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
        head, max_length, batch_size, eval_batch_size, seed, gradient_accumulation_steps, mixed_precision,
        group_by_length, feature_cache, cache_dir, trust_remote_code, logging_steps, pooling, eval_fraction,
        eval_min_class_count, select_metric, eval_steps, patience, refit, calibrate, report_to, attention_dropout: Run
            settings (:class:`~tailtune.config.RunConfig`).
        epochs, lr, loss, weights, trainable, stage_batch_size, beta, sampler, min_steps: Stage settings, one
            value for every stage or a list with one per stage (``stage_batch_size`` sets
            :attr:`StageConfig.batch_size <tailtune.config.StageConfig>`).

    Attributes:
        classes_: The labels, in class-id order, of the training labels' type (integers stay integers).
        model_, tokenizer_: The trained model and its tokenizer.
        config_: The resolved run config (None after :meth:`load`).
        decisions_: What validation chose: the split, each stage's best epoch, the refit and the decision rule.

    Example:
        >>> clf = TailTuner(model="path/to/model", strategy="two-stage", epochs=2, lr=[1e-3, 5e-5])
        >>> clf.fit(texts, labels).predict(["a new text"])  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | None = None,
        strategy: str = "two-stage",
        *,
        stages: list[dict[str, Any]] | None = None,
        show_progress: bool = True,
        head: str = UNSET,
        max_length: int = UNSET,
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
        refit: bool = UNSET,
        calibrate: str = UNSET,
        report_to: str = UNSET,
        attention_dropout: float | None = UNSET,
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
        return {name: getattr(self, name) for name in SETTINGS if getattr(self, name) is not UNSET}

    def _config(self) -> RunConfig:
        if not self.model:
            raise TailTuneError("TailTuner needs a model: a local model folder, a hub id or builtin:minilm")
        return build_run_config(resolve_model(self.model), self.strategy, settings=self.settings(), stages=self.stages)

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[Any],
    ) -> TailTuner:
        """Fine-tune on ``texts`` with ``labels`` (strings or integers); returns ``self``."""
        texts, labels = list(texts), list(labels)
        if len(texts) != len(labels):
            raise TailTuneError(f"fit(): {len(texts)} texts but {len(labels)} labels")
        train = TextDataset(texts=[str(t) for t in texts], labels=[str(y) for y in labels], source="fit()")
        self.config_ = resolve_max_length(self._config())
        label_map = check_labels(Splits(train))
        self.accelerator_ = make_accelerator(self.config_)
        # The same path as `tailtune train`: a held-out split, the best epochs, a refit and the decision rule.
        fitted = fit_selected(self.config_, Splits(train), label_map, self.accelerator_,
                              show_progress=self.show_progress)  # fmt: skip
        self.model_, self.tokenizer_, self.report_ = fitted.model, fitted.tokenizer, fitted.report
        self.decisions_ = fitted.summary()
        integer_labels = all(isinstance(y, (int, np.integer)) and not isinstance(y, bool) for y in labels)
        # Saved with the model, so that a loaded model predicts integers too.
        write_record(self.model_.config, integer_labels=integer_labels)
        self.classes_ = _typed(label_map.labels, integer_labels)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities ``[n, K]``, columns in the order of ``classes_``."""
        self._check_fitted()
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        encoded = encode(self.tokenizer_, texts, None, max_length=self._max_length())
        logits = predict_logits(self.model_, encoded, self.accelerator_, batch_size=self._eval_batch_size(),
                                inference_only=True)  # fmt: skip
        return softmax(logits)

    def predict(self, texts: Sequence[str]) -> list[Any]:
        """Predicted labels (of the same type as the training labels)."""
        ids = self.predict_proba(texts).argmax(axis=1)
        return [self.classes_[i] for i in ids]

    def score(self, texts: Sequence[str], labels: Sequence[Any], sample_weight: Any = None) -> float:
        """Macro-F1 of the predictions for ``texts`` over every training class (absent ones count as 0).

        Unlike scikit-learn's classifiers, whose ``score`` is accuracy: on long-tailed data accuracy rewards
        ignoring the tail. ``GridSearchCV`` and ``cross_val_score`` use it when given no ``scoring``.
        """
        from sklearn.metrics import f1_score

        return float(f1_score(list(labels), self.predict(texts), labels=list(self.classes_), average="macro",
                              sample_weight=sample_weight, zero_division=0))  # fmt: skip

    def save(self, path: str | Path) -> Path:
        """Save model, tokenizer and model card (``transformers.pipeline`` loads the folder)."""
        self._check_fitted()
        with atomic_dir(path) as tmp:
            save_classifier(self.model_, self.tokenizer_, tmp)
            if self.config_ is not None:
                counts = [read_record(self.model_.config).train_counts[name] for name in self.label_map.labels]
                write_model_card(tmp, self.config_, self.label_map.labels, counts, self.decisions_,
                                 data_source="fit()")  # fmt: skip
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
                model), ``eval_batch_size`` and ``mixed_precision``.
        """
        unknown = sorted(set(settings) - set(_PREDICT_SETTINGS))
        if unknown:
            raise TailTuneError(f"TailTuner.load: unknown prediction setting(s) {', '.join(unknown)}; "
                                f"valid: {', '.join(_PREDICT_SETTINGS)}")  # fmt: skip
        run = build_run_config(str(path), "vanilla", settings=settings)  # each value checked as for training
        given = {name: getattr(run, name) for name, value in settings.items() if value is not None}
        model, tokenizer, labels = load_saved_classifier(path, trust_remote_code=trust_remote_code)
        if "max_length" in given:
            check_max_length(given["max_length"], model.config, tokenizer)
        tuner = cls(model=str(path), show_progress=False, **given)
        tuner.model_, tuner.tokenizer_ = model, tokenizer
        tuner.classes_ = _typed(labels, read_record(model.config).integer_labels)
        tuner.config_ = None
        tuner.accelerator_ = make_accelerator(run)
        return tuner

    @property
    def label_map(self) -> LabelMap:
        """Label names in class-id order."""
        self._check_fitted()
        return LabelMap([str(label) for label in self.classes_])

    def _max_length(self) -> int:
        if self.config_ is not None:
            return self.config_.max_length
        if self.max_length is not UNSET:
            return int(self.max_length)
        trained = read_record(self.model_.config).max_length
        return int(trained) if trained else min(512, position_limit(self.model_.config, self.tokenizer_) or 512)

    def _eval_batch_size(self) -> int:
        if self.config_ is not None:
            return self.config_.eval_batch_size
        return 64 if self.eval_batch_size is UNSET else int(self.eval_batch_size)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise TailTunerNotFitted("this TailTuner is not fitted yet: call fit() or TailTuner.load() first")


def _typed(names: list[str], integers: bool) -> list[Any]:
    """Label names as the user gave them: integers back to ``int`` when every training label was one."""
    return [int(name) for name in names] if integers else list(names)
