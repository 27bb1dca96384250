"""A scikit-learn style facade: ``TailTuner(...).fit(texts, labels).predict(texts)``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tailtune.batching import encode
from tailtune.config import RunConfig
from tailtune.data import LabelMap, TextDataset
from tailtune.errors import TailTuneError
from tailtune.fileio import atomic_dir
from tailtune.metrics import softmax
from tailtune.modeling import check_max_length, load_saved_classifier, save_classifier
from tailtune.run import Splits, check_labels, fit_selected
from tailtune.strategies import build_run_config
from tailtune.training import make_accelerator, predict_logits

logger = logging.getLogger(__name__)


class TailTuner:
    """Fine-tune a pretrained transformer classifier on long-tailed data.

    Args:
        model: Local model folder or Hugging Face hub id.
        strategy: A strategy name (``tailtune strategies`` lists them) or ``custom`` with ``stages``.
        stages: Per-stage override dicts by position, e.g. ``[{"lr": 1e-3}, {"epochs": 2}]``.
        show_progress: Progress bars during training.
        **overrides: Run settings (``max_length``, ``batch_size``, ``seed``, ``head``, ...; see
            :class:`~tailtune.config.RunConfig`) and stage shortcuts (``epochs``, ``lr``, ``loss``, ``weights``,
            ``trainable``, ``batch_size`` is the run's; ``beta``, ``sampler``) given as one value for every
            stage or a list with one per stage.

    Example:
        >>> clf = TailTuner(model="path/to/model", strategy="two-stage", epochs=2, lr=[1e-3, 5e-5])
        >>> clf.fit(texts, labels).predict(["a new text"])  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str,
        strategy: str = "two-stage",
        *,
        stages: list[dict[str, Any]] | None = None,
        show_progress: bool = True,
        **overrides: Any,
    ) -> None:
        self.model = model
        self.strategy = strategy
        self.stages = stages
        self.show_progress = show_progress
        self.overrides = overrides

    def _config(self) -> RunConfig:
        return build_run_config(self.model, self.strategy, settings=self.overrides, stages=self.stages)

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
        self.config_ = self._config()
        label_map = check_labels(Splits(train))
        self.accelerator_ = make_accelerator(self.config_)
        # The same path as `tailtune train`: a held-out split, the best epochs, a refit and the decision rule.
        fitted = fit_selected(self.config_, Splits(train), label_map, self.accelerator_,
                              show_progress=self.show_progress)  # fmt: skip
        self.model_, self.tokenizer_, self.report_ = fitted.model, fitted.tokenizer, fitted.report
        self.decisions_ = fitted.summary()
        self.classes_ = list(label_map.labels)
        self._integer_labels = all(isinstance(y, (int, np.integer)) for y in labels)
        # Saved with the model, so that a loaded model predicts integers too.
        self.model_.config.tailtune_integer_labels = self._integer_labels
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities ``[n, K]``, columns in the order of ``classes_``."""
        self._check_fitted()
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        encoded = encode(self.tokenizer_, texts, None, max_length=self._max_length())
        logits = predict_logits(self.model_, encoded, self.accelerator_, batch_size=self._eval_batch_size())
        return softmax(logits)

    def predict(self, texts: Sequence[str]) -> list[Any]:
        """Predicted labels (of the same type as the training labels)."""
        ids = self.predict_proba(texts).argmax(axis=1)
        return [int(self.classes_[i]) if self._integer_labels else self.classes_[i] for i in ids]

    def save(self, path: str | Path) -> Path:
        """Save model and tokenizer (``save_pretrained``; ``transformers.pipeline`` loads the folder)."""
        self._check_fitted()
        with atomic_dir(path) as tmp:
            save_classifier(self.model_, self.tokenizer_, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, *, trust_remote_code: bool = False, **settings: Any) -> TailTuner:
        """Load a saved classifier, ready to predict.

        Args:
            path: A folder written by :meth:`save` or a run directory's ``model/``.
            trust_remote_code: Allow code shipped with the checkpoint.
            **settings: Prediction settings such as ``max_length`` and ``eval_batch_size``.
        """
        model, tokenizer, labels = load_saved_classifier(path, trust_remote_code=trust_remote_code)
        if "max_length" in settings:
            check_max_length(int(settings["max_length"]), model, tokenizer)
        tuner = cls(model=str(path), show_progress=False, **settings)
        tuner.model_, tuner.tokenizer_, tuner.classes_ = model, tokenizer, labels
        tuner._integer_labels = bool(getattr(model.config, "tailtune_integer_labels", False))
        tuner.config_ = None
        tuner.accelerator_ = make_accelerator(build_run_config(str(path), "vanilla"))
        return tuner

    @property
    def label_map(self) -> LabelMap:
        """Label names in class-id order."""
        self._check_fitted()
        return LabelMap(list(self.classes_))

    def _max_length(self) -> int:
        if self.config_ is not None:
            return self.config_.max_length
        return int(self.overrides.get("max_length", min(512, getattr(self.tokenizer_, "model_max_length", 512))))

    def _eval_batch_size(self) -> int:
        return self.config_.eval_batch_size if self.config_ is not None else self.overrides.get("eval_batch_size", 64)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise TailTuneError("this TailTuner is not fitted yet: call fit() or TailTuner.load() first")
