"""The method: a classifier fine-tuned on long-tailed data, with every choice made on validation data.

:func:`fit` is what ``tailtune train`` (through :func:`tailtune.runs.train.train_run`), :class:`~tailtune.TailTuner`,
``tailtune tune`` and ``tailtune compare`` all run:

1. Validation data: the eval split, else one carved from the training data (:func:`validation_split`).
2. :func:`train_model`: the pretrained model trained through the stages; each stage keeps its best epoch on
   validation and may stop early (:class:`~tailtune.training.selection.EpochSelector`, a hook of the stage loop).
3. With ``long_texts: auto``, whether a text longer than ``max_length`` is read whole or cut is chosen on the
   validation split (:func:`choose_long_texts`).
4. With a carved split and a refit (:func:`refit_decision`), a fresh model trains on all the training data for
   the chosen epochs.
5. The decision rule (``calibrate``) is chosen on the selection model's validation logits and folded into the
   final model's bias.

:func:`evaluate_split` scores a model on labelled data. What a run directory holds is :mod:`tailtune.runs.train`'s
business; the choices themselves are :mod:`tailtune.training.selection`'s and :mod:`tailtune.training.calibration`'s.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from accelerate.utils import set_seed

from tailtune.config import DEFAULT_MAX_LENGTH, REFIT_BELOW_MEDIAN_CLASS, RunConfig, StageConfig
from tailtune.data.imbalance import class_counts
from tailtune.data.types import LabelMap, Splits, TextDataset
from tailtune.models.family import Decisions
from tailtune.models.lengths import choose_max_length, length_sample
from tailtune.models.saved import write_fit_record
from tailtune.models.scopes import check_model_takes
from tailtune.models.transformer import check_max_length, load_classifier, model_at_hand, position_limit
from tailtune.task import Task, get_task, task_of
from tailtune.training.batching import Encoded, encode, token_lengths
from tailtune.training.calibration import Calibration, fold_into_bias, prior_tau_for
from tailtune.training.cost import RunPlan, plan_fit
from tailtune.training.loop import HookList, StageHooks, StageReport, predict_logits, train_stages
from tailtune.training.selection import EpochSelector, Score, StageChoice, carve_validation, refit_config
from tailtune.training.unknown_tokens import warn_of_unreadable_texts

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitContext:
    """What every step of a fit shares.

    Attributes:
        config: The run's settings, with ``max_length`` resolved (:func:`resolve_max_length`).
        label_map: The label names and their class ids (:func:`tailtune.data.check_labels`).
        accelerator: From :func:`tailtune.training.loop.make_accelerator`.
        train_counts: Examples per class of all the run's training data, in class-id order; evaluations group
            classes by them (the selection model trains without a carved validation split).
        show_progress: Progress bars.
        task: What the labels are (:mod:`tailtune.task`): how they are encoded and the logits scored.
        label_kind: The type of every training label, recorded with the model (None: as the label names read,
            :attr:`~tailtune.data.types.LabelMap.kind`).
    """

    config: RunConfig
    label_map: LabelMap
    accelerator: Accelerator
    train_counts: list[int]
    show_progress: bool = True
    task: Task = field(default_factory=lambda: get_task(None))
    label_kind: str | None = None

    @classmethod
    def of(cls, config: RunConfig, train: TextDataset, label_map: LabelMap, accelerator: Accelerator, *,
           show_progress: bool = True) -> FitContext:  # fmt: skip
        """The context of a run on the training data ``train``."""
        return cls(config, label_map, accelerator, label_map.counts(train), show_progress, task_of(train))


@dataclass
class ValidationSplit:
    """The validation data of a run and what selection trains on beside it (:func:`validation_split`).

    Attributes:
        train: The training data, less a carved validation split.
        validation: The validation data; None where nothing would use it.
        info: Its description for ``metrics.json``: ``source`` (``given``, ``carved`` or None) and size, and for
            a carved split its fraction, smallest class, seed and class counts.
    """

    train: TextDataset
    validation: TextDataset | None
    info: dict[str, Any]

    @property
    def carved(self) -> bool:
        """Whether the validation data was carved from the training data."""
        return self.info["source"] == "carved"


@dataclass
class TrainedModel:
    """A model trained through the stages (:func:`train_model`), with what selection chose.

    Attributes:
        model: The trained model (unwrapped from ``accelerate``).
        tokenizer: Its tokenizer.
        train_counts: The examples per class it trained on, in class-id order.
        stages: What each stage that ran did.
        choices: The epoch selection chose in each stage (empty without selection).
        validation_logits: The validation logits of the chosen epoch of the last stage (None without selection).
    """

    model: Any
    tokenizer: Any
    train_counts: list[int]
    stages: list[StageReport]
    choices: list[StageChoice] = field(default_factory=list)
    validation_logits: np.ndarray | None = None


@dataclass
class Fitted:
    """The final model, with what selection, refit and calibration decided (:func:`fit`).

    Attributes:
        model: The final model, the decision rule folded into its bias.
        tokenizer: Its tokenizer.
        stages: What each stage did: the selection model's stages, then the refit's (``phase`` ``refit``).
        choices: The epoch selection chose in each stage.
        validation_split: Where the validation data came from (:attr:`ValidationSplit.info`).
        calibration: The decision rule; None where none was chosen.
        config: The run's settings as the fit decided them: ``max_length`` read from the data, ``long_texts``
            chosen on validation (``auto``). Evaluate and describe the final model with these.
        long_texts: With ``long_texts: auto``, how the final model reads a text longer than ``max_length`` and
            why (:func:`choose_long_texts`); None where the setting was given.
        refit: Whether the final model was retrained on all the training data, and why (:func:`refit_decision`).
        refit_epochs: The epochs per stage of the refit on all the training data; None without a refit.
        task, label_kind, train_counts: What the final model's labels are, their type, and the run's training
            examples per label name, a carved validation split included (:class:`~tailtune.models.family.Decisions`):
            the counts ``train`` groups classes by, so that ``evaluate`` of the saved model groups them alike.
    """

    model: Any
    tokenizer: Any
    stages: list[StageReport]
    choices: list[StageChoice]
    validation_split: dict[str, Any]
    config: RunConfig | None = None
    calibration: Calibration | None = None
    long_texts: dict[str, Any] | None = None
    refit: dict[str, Any] = field(default_factory=lambda: {"done": False, "reason": "no validation split was carved"})
    refit_epochs: list[float] | None = None
    task: str | None = None
    label_kind: str | None = None
    train_counts: dict[str, int] | None = None

    def decisions(self) -> Decisions:
        """What the fit decided, as every family records it."""
        return Decisions(
            validation_split=self.validation_split,
            selection=[vars(c) for c in self.choices],
            long_texts=self.long_texts,
            refit=self.refit,
            refit_epochs=self.refit_epochs,
            calibration=None if self.calibration is None else self.calibration.to_dict(),
            task=self.task,
            label_kind=self.label_kind,
            train_counts=self.train_counts,
            max_length=None if self.config is None else self.config.max_length,
            reading=None if self.config is None else self.config.long_texts,
        )


@dataclass
class Evaluation:
    """A model's scores on a labelled split (:func:`evaluate_split`).

    Attributes:
        metrics: :func:`tailtune.metrics.compute_metrics`' scores.
        predictions: One row per example: ``text``, ``label``, ``predicted`` and the predicted class's ``score``.
    """

    metrics: dict[str, Any]
    predictions: pd.DataFrame


def fit(ctx: FitContext, splits: Splits, *, hooks: Sequence[StageHooks] = (), plan: RunPlan | None = None) -> Fitted:
    """Train with model selection on validation data, refit on all the data, then calibrate.

    1. Validation: the eval split, else one carved from the training data (``eval_fraction``).
    2. Each stage keeps its best epoch on validation and may stop early (``select_metric``, ``patience``);
       without selection, the eval split is scored after every stage, for the history only.
    3. With ``long_texts: auto``, how a text longer than ``max_length`` is read is chosen on validation
       (:func:`choose_long_texts`).
    4. With a carved split and a refit (``refit``; ``auto``: where classes are small, :func:`refit_decision`), a
       fresh model trains on all the training data for the chosen epochs.
    5. The decision rule (``calibrate``) is chosen on the selection model's validation logits and folded into
       the final model's bias.

    Args:
        ctx: The run's settings, labels and accelerator.
        splits: The training data and the optional eval data (test data plays no part).
        hooks: Hear the stage loop's events; the refit's history entries reach them marked ``phase: refit``.
        plan: The run's priced plan (default :func:`~tailtune.training.cost.plan_fit`'s), fitted to its time budget.
    """
    plan = plan or plan_fit(ctx, splits, hooks=hooks)
    ctx = dataclasses.replace(ctx, config=plan.config)
    config = ctx.config
    held = validation_split(config, splits)
    watch, listen = splits.eval if config.select_metric == "none" else None, [*hooks, *plan.hooks("train")]
    trained = train_model(ctx, held.train, validation=held.validation, watch=watch, hooks=listen)
    fitted = Fitted(trained.model, trained.tokenizer, trained.stages, trained.choices, held.info,
                    task=ctx.task.name, label_kind=ctx.label_kind or ctx.label_map.kind)  # fmt: skip
    if config.long_texts == "auto":
        fitted.long_texts, whole_logits = choose_long_texts(ctx, trained, held.validation)
        config = config.replace(long_texts=fitted.long_texts["chosen"])
        ctx = dataclasses.replace(ctx, config=config)
        if whole_logits is not None and fitted.long_texts["chosen"] == "chunks":
            trained.validation_logits = whole_logits  # the decision rule is chosen on the logits it will act on
    fitted.config = config
    counts = trained.train_counts
    if held.validation is not None and config.calibrate != "none" and any(stage.epochs for stage in config.stages):
        fitted.calibration = _choose_calibration(ctx, trained, held.validation)
    if held.carved:
        fitted.refit = plan.refit_now()
        logger.info("refit %s: %s", "on all the training data" if fitted.refit["done"] else "skipped",
                    fitted.refit["reason"])  # fmt: skip
    if fitted.refit["done"]:
        refit = refit_config(config, trained.choices) if trained.choices else config
        fitted.refit_epochs = [stage.stop_after or stage.epochs for stage in refit.stages]
        logger.info("refit on all %d training examples, epochs per stage %s", len(splits.train), fitted.refit_epochs)
        final = train_model(dataclasses.replace(ctx, config=refit), splits.train,
                            hooks=[_RefitHistory(hooks), *plan.hooks("refit")])  # fmt: skip
        fitted.stages.extend(dataclasses.replace(stage, phase="refit") for stage in final.stages)
        fitted.refit, fitted.refit_epochs = plan.refit_kept(fitted.refit, fitted.refit_epochs)  # unless unfinished
        if fitted.refit["done"]:
            fitted.model, fitted.tokenizer, counts = final.model, final.tokenizer, final.train_counts
    if fitted.calibration is not None:
        fold_into_bias(fitted.model, fitted.calibration.offsets(counts))
    fitted.train_counts = dict(zip(ctx.label_map.labels, ctx.train_counts, strict=True))
    write_fit_record(fitted.model.config, fitted.decisions())  # the one place a fitted model's record is written
    return fitted


def choose_long_texts(
    ctx: FitContext, trained: TrainedModel, validation: TextDataset | None
) -> tuple[dict[str, Any], np.ndarray | None]:
    """``long_texts: auto``: whether the model reads a text longer than ``max_length`` whole (``chunks``) or its
    first ``max_length`` tokens (``truncate``, as it trained), decided on the validation split.

    Reading whole texts pays where the rest of a text holds evidence the beginning lacks, and costs where it
    dilutes a beginning that says it all (a news lead, a title): on R8's test set a model trained at 256 tokens
    scored 0.948 macro-F1 reading the first 256 tokens and 0.942 reading whole texts. So ``chunks`` is kept only
    where it scores better on validation by more than one validation example's worth; the cheaper reading, the
    one training used, wins ties. Without validation data, or where no validation text is longer than
    ``max_length``, the model truncates.

    Returns:
        The decision (``chosen``, ``reason``, and the validation scores where both were measured) and, where
        measured, the validation logits read whole.
    """
    if validation is None:
        return {"chosen": "truncate", "reason": "no validation data to show that reading whole texts pays"}, None
    config = ctx.config
    y_val = ctx.task.encode(ctx.label_map, validation)
    whole = encode(trained.tokenizer, validation.texts, y_val, max_length=config.max_length, long_texts="chunks")
    if len(whole) == whole.n_texts:
        return {"chosen": "truncate", "reason": f"no validation text is longer than {config.max_length} tokens"}, None
    predict = functools.partial(predict_logits, trained.model, accelerator=ctx.accelerator,
                                batch_size=config.eval_batch_size)  # fmt: skip
    whole_logits = predict(whole)
    first_logits = trained.validation_logits
    if first_logits is None:
        first_logits = predict(encode(trained.tokenizer, validation.texts, y_val, max_length=config.max_length))
    metric = config.select_metric if config.select_metric != "none" else "macro_f1"
    scores = {mode: ctx.task.select_score(metric, y_val, logits)
              for mode, logits in (("chunks", whole_logits), ("truncate", first_logits))}  # fmt: skip
    tolerance = max(0.01, 1.0 / len(validation))
    chosen = "chunks" if scores["chunks"] > scores["truncate"] + tolerance else "truncate"
    longer = int(np.sum(np.bincount(whole.owners) > 1))
    reason = (f"{longer} of {len(validation)} validation texts are longer than {config.max_length} tokens; "
              f"validation {metric} {scores['chunks']:.4f} reading them whole, {scores['truncate']:.4f} reading their "
              f"first {config.max_length} tokens (whole texts must gain more than {tolerance:.3g})")  # fmt: skip
    logger.info("long texts: %s (%s)", chosen, reason)
    return {"chosen": chosen, "reason": reason, "validation": scores}, whole_logits


def train_model(
    ctx: FitContext,
    train: TextDataset,
    *,
    validation: TextDataset | None = None,
    watch: TextDataset | None = None,
    hooks: Sequence[StageHooks] = (),
) -> TrainedModel:
    """Load the pretrained model and train it through the stages.

    With ``validation`` (and a ``select_metric``), every epoch is scored on it, each stage ends with its best
    epoch's weights, and a stage stops after ``patience`` evaluations without improvement. What the model records
    of its fit is written by :func:`fit`, once, for the final model.

    Args:
        ctx: The run's settings, labels and accelerator.
        train: The data to train on.
        validation: Data to select each stage's epoch on.
        watch: Data to evaluate after every stage, for the history only.
        hooks: Hear the stage loop's events, and the scores measured on ``validation`` and ``watch``.
    """
    config, label_map = ctx.config, ctx.label_map
    train_counts = label_map.counts(train)
    set_seed(config.seed)  # before the head is initialised
    model, tokenizer = load_classifier(
        config.model, label_map.labels, head=config.head, pooling=config.pooling,
        trust_remote_code=config.trust_remote_code, attention_dropout=config.attention_dropout,
    )  # fmt: skip
    ctx = dataclasses.replace(ctx, config=fit_max_length(config, model.config, tokenizer))
    config = ctx.config
    check_model_takes(model, [stage.trainable for stage in config.stages], config.calibrate)  # fail now, not later
    model.config.problem_type = ctx.task.problem_type  # what plain transformers scores the logits with
    encoded = encode(tokenizer, train.texts, ctx.task.encode(label_map, train), max_length=config.max_length)
    warn_of_unreadable_texts(tokenizer, encoded, train.source)
    history = HookList(hooks)
    selector = None
    listeners: list[StageHooks] = []
    if validation is not None and config.select_metric != "none":
        # One example's worth of score (at least 0.01) is a tie: see EpochSelector.
        selector = EpochSelector(
            model, _ValidationScore(ctx, model, _encode_split(ctx, tokenizer, validation)),
            patience=config.patience, tolerance=max(0.01, 1.0 / len(validation)), metric=config.select_metric,
            history=history,
        )  # fmt: skip
        listeners.append(selector)
    if watch is not None:
        listeners.append(_EvaluateAfterStage(ctx, tokenizer, watch, history))
    stages = train_stages(model, encoded, train_counts, config, ctx.accelerator, hooks=[*listeners, *hooks],
                          show_progress=ctx.show_progress, task=ctx.task)  # fmt: skip
    model = ctx.accelerator.unwrap_model(model)
    if selector is None:
        return TrainedModel(model, tokenizer, train_counts, stages)
    return TrainedModel(model, tokenizer, train_counts, stages, selector.choices, selector.best_logits)


def refit_decision(refit: bool | str, train_counts: Sequence[int]) -> dict[str, Any]:
    """Whether to retrain on all the training data after selection on a carved split, and why.

    ``refit`` true or false decides. ``auto`` refits where the typical class is small: when the median class
    has fewer than :data:`REFIT_BELOW_MEDIAN_CLASS` training examples, the tenth held out for validation is data
    the final model would miss; on larger classes it adds little and a refit doubles the run's cost. On the
    development splits of ``benchmarks/choose_defaults.py`` (training data only, 2 seeds), a refit gained 0.033
    macro-F1 on Ohsumed's (median class 81) and changed R8's (median class 183) by -0.005; the threshold lies
    between.
    """
    if refit != "auto":
        return {"done": bool(refit), "reason": f"refit is {str(bool(refit)).lower()}"}
    median = float(np.median(train_counts))
    done = median < REFIT_BELOW_MEDIAN_CLASS
    relation = "below" if done else "at or above"
    return {"done": done, "reason": f"auto: the median class has {median:g} training examples, {relation} "
                                    f"{REFIT_BELOW_MEDIAN_CLASS}"}  # fmt: skip


def validation_split(config: RunConfig, splits: Splits) -> ValidationSplit:
    """The validation data: the given eval data, or a split carved from the training data.

    Carved only when no eval data is given and ``eval_fraction`` > 0 (stratified and seeded by the run's seed:
    see :func:`tailtune.training.selection.carve_validation`), and only where selection or calibration would use it.
    """
    if splits.eval is not None:
        return ValidationSplit(splits.train, splits.eval, {"source": "given", "size": len(splits.eval)})
    if config.eval_fraction <= 0 or (config.select_metric == "none" and config.calibrate == "none"):
        return ValidationSplit(splits.train, None, {"source": None})  # nothing would use a held-out split
    train_idx, val_idx = carve_validation(task_of(splits.train).strata(splits.train), fraction=config.eval_fraction,
                                          min_class_count=config.eval_min_class_count, seed=config.seed)  # fmt: skip
    if len(val_idx) == 0:
        return ValidationSplit(splits.train, None, {"source": None})
    validation = splits.train.subset(val_idx)
    validation.source = f"{splits.train.source} (held out)"
    info = {"source": "carved", "fraction": config.eval_fraction, "min_class_count": config.eval_min_class_count,
            "seed": config.seed, "size": len(val_idx), "counts": class_counts(validation.labels)}  # fmt: skip
    return ValidationSplit(splits.train.subset(train_idx), validation, info)


def evaluate_split(
    ctx: FitContext, model: torch.nn.Module, tokenizer: Any, dataset: TextDataset, *, show_progress: bool = False
) -> Evaluation:
    """Predict a labelled split and score the predictions, classes grouped by the run's training counts."""
    encoded = _encode_split(ctx, tokenizer, dataset)
    logits = predict_logits(model, encoded, ctx.accelerator, batch_size=ctx.config.eval_batch_size,
                            show_progress=show_progress)  # fmt: skip
    metrics, predictions = ctx.task.evaluate(ctx.label_map, dataset, ctx.task.scores(logits),
                                             train_counts=ctx.train_counts)  # fmt: skip
    return Evaluation(metrics, predictions)


def resolve_max_length(config: RunConfig, texts: Sequence[str] | None = None) -> RunConfig:
    """``config`` with a ``max_length`` its model can take, decided before anything loads weights or is written.

    Not given (None): read from the training ``texts`` by :func:`~tailtune.models.lengths.choose_max_length`
    (logged with
    its numbers), or :data:`~tailtune.config.DEFAULT_MAX_LENGTH` without texts; either way no more than the
    model's limit. Given: kept as it is, and refused with one line when the model cannot take it. The limits come
    from the checkpoint's config and tokenizer; where those cannot be read, loading the model says why.

    Args:
        config: The run's settings.
        texts: The training texts (all of them: a held-out validation split included).

    Raises:
        TailTuneError: A given ``max_length`` above the model's limit, or too short for any text.
    """
    from transformers import AutoTokenizer, PretrainedConfig

    source = os.path.expanduser(config.model)
    if not model_at_hand(config.model):  # a missing local folder: loading the model says so
        return config if config.max_length is not None else config.replace(max_length=DEFAULT_MAX_LENGTH)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, trust_remote_code=config.trust_remote_code)
        config_dict, _ = PretrainedConfig.get_config_dict(source)  # the file as it is, whatever its model type
    except (OSError, ValueError):
        return config if config.max_length is not None else config.replace(max_length=DEFAULT_MAX_LENGTH)
    return fit_max_length(config, config_dict, tokenizer, texts)


def fit_max_length(
    config: RunConfig, model_config: Any, tokenizer: Any, texts: Sequence[str] | None = None
) -> RunConfig:
    """:func:`resolve_max_length` for a model whose config and tokenizer are at hand."""
    if config.max_length is None:
        lengths = None if texts is None else token_lengths(tokenizer, length_sample(texts))
        choice = choose_max_length(lengths, position_limit(model_config, tokenizer))
        logger.info("%s", choice.reason)
        config = config.replace(max_length=choice.max_length)
    check_max_length(config.max_length, model_config, tokenizer)
    return config


def _encode_split(ctx: FitContext, tokenizer: Any, dataset: TextDataset) -> Encoded:
    """A labelled split encoded to be scored as prediction reads texts (``long_texts``; ``auto``, not decided
    yet while training, reads as training does: see :func:`choose_long_texts`)."""
    ids = ctx.task.encode(ctx.label_map, dataset)
    long_texts = "truncate" if ctx.config.long_texts == "auto" else ctx.config.long_texts
    return encode(tokenizer, dataset.texts, ids, max_length=ctx.config.max_length, long_texts=long_texts)


def _choose_calibration(ctx: FitContext, trained: TrainedModel, validation: TextDataset) -> Calibration:
    """The decision rule, chosen on the validation logits of the epoch selection kept (else of the model)."""
    config = ctx.config
    y_val = ctx.task.encode(ctx.label_map, validation)
    logits = trained.validation_logits
    if logits is None:
        encoded = _encode_split(ctx, trained.tokenizer, validation)
        logits = predict_logits(trained.model, encoded, ctx.accelerator, batch_size=config.eval_batch_size)
    last = [stage for stage in config.stages if stage.epochs][-1]
    prior_tau = prior_tau_for(last.loss, last.weights, last.sampler)
    return ctx.task.choose_rule(config.calibrate, logits, y_val, trained.train_counts, prior_tau=prior_tau)


class _ValidationScore:
    """The model's validation score by ``select_metric``, with the logits it came from."""

    def __init__(self, ctx: FitContext, model: torch.nn.Module, encoded: Encoded) -> None:
        self.ctx, self.model, self.encoded = ctx, model, encoded

    def __call__(self) -> Score:
        config = self.ctx.config
        logits = predict_logits(self.model, self.encoded, self.ctx.accelerator, batch_size=config.eval_batch_size)
        return Score(self.ctx.task.select_score(config.select_metric, self.encoded.labels, logits), logits)


class _EvaluateAfterStage(StageHooks):
    """Scores data after every stage, for the history (selection, where it runs, scores every epoch instead)."""

    def __init__(self, ctx: FitContext, tokenizer: Any, dataset: TextDataset, history: StageHooks) -> None:
        self.ctx, self.tokenizer, self.dataset, self.history = ctx, tokenizer, dataset, history

    def on_stage_end(self, stage_index: int, stage: StageConfig, model: torch.nn.Module) -> None:
        metrics = evaluate_split(self.ctx, model, self.tokenizer, self.dataset).metrics
        logger.info("after stage %d: eval macro-F1 %.4f", stage_index + 1, metrics["macro_f1"])
        self.history.on_log({"stage": stage_index, "stage_name": stage.name, "eval_macro_f1": metrics["macro_f1"],
                             "eval_accuracy": metrics.get("accuracy"), "eval_tail_f1": metrics["tail_f1"]})  # fmt: skip


class _RefitHistory(StageHooks):
    """Hands the refit's history entries on, marked ``phase: refit``; its other events concern no one."""

    def __init__(self, hooks: Sequence[StageHooks]) -> None:
        self.hooks = HookList(hooks)

    def on_log(self, entry: dict[str, Any]) -> None:
        self.hooks.on_log({**entry, "phase": "refit"})
