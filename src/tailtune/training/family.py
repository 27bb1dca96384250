"""The fine-tuned transformer family (:class:`~tailtune.models.family.ModelFamily`): runs trained by
:func:`~tailtune.training.fitting.fit` on an ``accelerate`` Accelerator, and the saved checkpoints they write."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tailtune.config import RunConfig
from tailtune.data.types import LabelMap, Splits
from tailtune.models.family import Classifier, FitResult
from tailtune.models.saved import read_record
from tailtune.task import Task, get_task
from tailtune.training.batching import encode
from tailtune.training.cost import plan_fit
from tailtune.training.fitting import FitContext, fit, resolve_max_length
from tailtune.training.loop import HookList, make_accelerator, predict_logits
from tailtune.training.precision import auto_decision

if TYPE_CHECKING:
    from accelerate import Accelerator


class TransformerClassifier:
    """A fine-tuned transformer as a :class:`~tailtune.models.family.Classifier`: it reads texts as its run decided
    (``max_length``, ``long_texts``) and scores them on the run's accelerator.

    Attributes:
        model: The model (unwrapped), the decision rule folded into its bias.
        tokenizer: Its tokenizer.
        label_map: Label names in class-id order.
        train_counts: Training examples per label name, of all the run's training data.
        config: The run's settings as the fit decided them.
    """

    calibrated = True  # a softmax over a classifier's logits

    def __init__(self, model: Any, tokenizer: Any, label_map: LabelMap, train_counts: dict[str, int],
                 config: RunConfig, accelerator: Accelerator, *, show_progress: bool = False) -> None:  # fmt: skip
        self.model, self.tokenizer, self.label_map, self.train_counts = model, tokenizer, label_map, train_counts
        self.config, self.accelerator, self.show_progress = config, accelerator, show_progress
        self.task: Task = get_task(read_record(model.config).task)

    @property
    def reading(self) -> str:
        """How the model reads a text longer than ``max_length``: ``chunks`` or ``truncate``."""
        return self.config.long_texts

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        encoded = encode(self.tokenizer, texts, None, max_length=self.config.max_length, long_texts=self.reading)
        logits = predict_logits(self.model, encoded, self.accelerator, batch_size=self.config.eval_batch_size,
                                show_progress=self.show_progress)  # fmt: skip
        return self.task.scores(logits)

    def save(self, path: Path, *, config: RunConfig, scores: dict[str, Any], data_source: str | None,
             scored_on: str | None) -> None:  # fmt: skip
        from tailtune.models.card import write_model_card
        from tailtune.models.transformer import save_classifier

        save_classifier(self.model, self.tokenizer, path)
        counts = [self.train_counts[name] for name in self.label_map.labels]
        write_model_card(path, config, self.label_map.labels, counts, scores, data_source=data_source,
                         scored_on=scored_on)  # fmt: skip


class _Session:
    """One fine-tuning run: its accelerator (made once, before anything is written) and its fit."""

    def __init__(self, config: RunConfig, splits: Splits, label_map: LabelMap, *, show_progress: bool) -> None:
        self.config, self.label_map, self.show_progress = config, label_map, show_progress
        self.started = time.perf_counter()  # a time budget counts from here
        self.accelerator = make_accelerator(config)
        self.ctx = FitContext.of(config, splits.train, label_map, self.accelerator, show_progress=show_progress)
        self.main = self.accelerator.is_main_process

    def run_settings(self) -> dict[str, Any]:
        return self.config.to_dict()

    def environment(self) -> dict[str, Any]:
        accelerator = self.accelerator
        return {"accelerate": {"num_processes": accelerator.num_processes,
                               "mixed_precision": accelerator.mixed_precision, "device": str(accelerator.device),
                               "mixed_precision_reason": _precision_reason(self.config)}}  # fmt: skip

    def wait(self) -> None:
        self.accelerator.wait_for_everyone()

    def fit(self, splits: Splits, *, hooks: Sequence[Any] = ()) -> FitResult:
        plan = plan_fit(self.ctx, splits, hooks=hooks, fallback=True, started=self.started)
        if plan.fallback is not None:
            return self._fall_back(plan.fallback, plan.record(), splits, hooks)
        fitted = fit(self.ctx, splits, hooks=hooks, plan=plan)
        decisions = fitted.decisions()
        decisions.cost = plan.record()  # with where the time budget ended training, if it did
        counts = dict(zip(self.label_map.labels, self.ctx.train_counts, strict=True))
        classifier = TransformerClassifier(fitted.model, fitted.tokenizer, self.label_map, counts, fitted.config,
                                           self.accelerator, show_progress=self.show_progress)  # fmt: skip
        return FitResult(classifier, [vars(stage) for stage in fitted.stages], decisions, fitted.config)

    def _fall_back(self, config: RunConfig, planned: dict[str, Any], splits: Splits, hooks: Sequence[Any]
                   ) -> FitResult:  # fmt: skip
        """Train the ``tfidf`` strategy's model where nothing fine-tuned fits the time budget; its cost record keeps
        the budget's decision and what the probe and the plan it replaced cost."""
        from tailtune.models.tfidf import FAMILY as TFIDF

        spent = time.perf_counter() - self.started
        told = [_WithBudget(hooks, planned["budget"])]  # the plan heard is the one that runs, with why it runs
        result = TFIDF.start(config, splits, self.label_map, show_progress=self.show_progress).fit(splits, hooks=told)
        cost = result.decisions.cost
        cost["parts"]["before"] = round(spent, 2)
        cost["estimate_s"] = round(cost["estimate_s"] + spent, 1)
        cost["budget"] = planned["budget"]
        cost["probe"] = {**cost["probe"], "replaced": planned["probe"]}
        return result


class _WithBudget(HookList):
    """Hooks that hear a plan with the time budget's decision that chose it."""

    def __init__(self, hooks: Sequence[Any], budget: dict[str, Any]) -> None:
        super().__init__(hooks)
        self.budget = budget

    def on_plan(self, plan: dict[str, Any]) -> None:
        super().on_plan({**plan, "budget": self.budget})


#: ``tune``'s learning-rate ranges by what a stage trains: the top of the model takes larger steps than the whole.
LR_RANGES = {"all": (2e-5, 5e-4), "top": (1e-4, 1e-2), "head": (1e-3, 5e-2)}
#: The step budgets of full fine-tuning ``tune`` chooses from.
MIN_STEPS = (50, 100, 200, 400)


class TransformerFamily:
    """Pretrained transformers fine-tuned through a strategy's stages; every strategy but the TF-IDF ones."""

    name = "transformer"
    uses_model = True

    def refuse_unused(self, strategy: str, given: Sequence[str]) -> None:
        """Every run setting shapes fine-tuning: none is refused."""

    def suggest(self, trial: Any, strategy: str, stages: Sequence[Any]) -> dict[str, Any]:
        """A learning rate per stage in :data:`LR_RANGES` (log scale), the step budget of full fine-tuning from
        :data:`MIN_STEPS`, and LDAM's margin where a stage uses it."""
        lrs = [trial.suggest_float(f"{strategy}.lr{i + 1}", *LR_RANGES[_scope(stage.trainable)], log=True)
               for i, stage in enumerate(stages)]  # fmt: skip
        settings: dict[str, Any] = {"lr": lrs}
        if any(stage.trainable == "all" for stage in stages):
            full = trial.suggest_categorical(f"{strategy}.min_steps", list(MIN_STEPS))
            settings["min_steps"] = [full if stage.trainable == "all" else stage.min_steps for stage in stages]
        overrides: list[dict[str, Any]] = []
        for i, stage in enumerate(stages):
            params = {}
            if stage.loss == "ldam":
                params["max_margin"] = trial.suggest_float(f"{strategy}.margin{i + 1}", 0.1, 1.0)
            overrides.append({"loss_params": params} if params else {})
        return {"settings": settings, "stages": overrides}

    def handles(self, config: RunConfig) -> bool:
        return not config.classic

    def owns(self, path: str | Path) -> bool:
        return True  # any other folder: loading says why it is no classifier where it is none

    def prepare(self, config: RunConfig, texts: Sequence[str] | None = None) -> RunConfig:
        return resolve_max_length(config, texts)

    def start(self, config: RunConfig, splits: Splits, label_map: LabelMap, *, show_progress: bool = True) -> _Session:
        return _Session(config, splits, label_map, show_progress=show_progress)

    def load(self, path: str | Path, *, trust_remote_code: bool = False, **settings: Any) -> Classifier:
        from tailtune.classifier import TailTuner

        return TailTuner._load_transformer(path, trust_remote_code=trust_remote_code, **settings)


FAMILY = TransformerFamily()


def _scope(trainable: str) -> str:
    """The learning-rate range a stage's scope takes: ``all``, ``head``, or ``top`` for the top layers."""
    return trainable if trainable in ("all", "head") else "top"


def _precision_reason(config: RunConfig) -> str:
    """Why the run trains at its precision, for ``config.json``."""
    import torch

    if config.mixed_precision != "auto":
        return f"mixed_precision {config.mixed_precision} given"
    return "auto: " + auto_decision("cuda" if torch.cuda.is_available() else "cpu")[1]  # as make_accelerator
