"""Strategies, and the one place where a run config is assembled.

Every method tailtune offers, the baselines included, is data: an ordered list of
:class:`~tailtune.config.StageConfig`. The trainer has one code path for all of them. The classic baseline,
``tfidf``, is one :class:`~tailtune.config.TfidfStage`: a TF-IDF + linear model that :mod:`tailtune.models.tfidf`
trains instead of a transformer.

:func:`build_run_config` turns a strategy name, per-stage overrides and flat settings into a validated
:class:`~tailtune.config.RunConfig`. The command line, :class:`~tailtune.classifier.TailTuner`, experiment
files and the demo all call it, so a setting is checked, coerced and broadcast over stages in one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from tailtune.config import DEFAULT_STRATEGY, RunConfig, Stage, StageConfig, TfidfStage, known_keys, stage_from_dict
from tailtune.errors import TailTuneError
from tailtune.settings import declaration

# What ``tailtune tune`` searches unless told otherwise: these strategies, until this many trials finish.
DEFAULT_TUNE_STRATEGIES = ("two-stage", "reweight", "vanilla", "probe")
DEFAULT_TUNE_TRIALS = 12

# The two-stage authors' stage-1 loss: LDAM with a 0.5 maximum margin, scale 1, effective-number weights.
_LDAM = {
    "loss": "ldam",
    "loss_params": {"max_margin": 0.5, "scale": 1.0},
    "weights": "effective",
    "beta": 0.9999,
}


# Budgets in optimiser steps: a stage runs at least this many steps (more epochs on small data), and model
# selection keeps its best epoch. The learning rates were chosen on validation data: benchmarks/README.md.
# Full fine-tuning plans one epoch (more on small data, to spend its step budget). Three epochs gained +0.016
# macro-F1 on average over development splits of R8, Ohsumed and an extreme tail made from R8 (training data only;
# within one validation example's worth on each, and level on Ohsumed once refit), at three times the cost of the
# stage that costs the most: benchmarks/README.md, "What each part of the plan buys".
FULL = {"lr": 1e-4, "min_steps": 100, "max_epochs": 10, "epochs": 1}
TOP = {"lr": 1e-3, "min_steps": 200, "max_epochs": 20}
# On label sets the second stage plans three epochs: on Reuters-21578's 90 topics (a validation split of its training
# data) each epoch of the distribution-balanced second stage gained (macro-F1 0.686, 0.730, 0.749; several validation
# examples' worth each), where one epoch learns the labels of a handful of texts poorly: benchmarks/README.md.
LABEL_SET_EPOCHS = 3
# The two-stage authors' budgets (BERT-base on tens of thousands of examples): one epoch per stage.
PAPER_FULL = {"lr": 1e-5, "min_steps": 0, "epochs": 1}
PAPER_TOP = {"lr": 1e-4, "min_steps": 0}


def _finetune(**kw) -> StageConfig:
    return StageConfig(**{"name": "finetune", "trainable": "all", "loss": "ce", **FULL, **kw})


STRATEGIES: dict[str, tuple[str, Callable[[], list[Stage]]]] = {
    "vanilla": (
        "standard fine-tuning of all parameters with cross-entropy",
        lambda: [_finetune()],
    ),
    "reweight": (
        "fine-tuning of all parameters with LDAM + effective-number weights throughout (the authors' baseline)",
        lambda: [_finetune(name="reweight", **_LDAM)],
    ),
    "two-stage": (
        "stage 1: head + pooler + top layer with LDAM + effective-number weights (lr 1e-3); "
        "stage 2: everything with cross-entropy (lr 1e-4) -- ValizadehAslani et al. 2022, with budgets in steps",
        lambda: [
            StageConfig(name="stage1", trainable="top1", **_LDAM, **TOP),
            _finetune(name="stage2", label_set_epochs=LABEL_SET_EPOCHS),
        ],
    ),
    "probe": (
        "frozen body: only the head trains, with class-balanced cross-entropy (a balanced linear probe)",
        lambda: [
            StageConfig(
                name="probe",
                trainable="head",
                loss="ce",
                weights="inverse",
                lr=1e-2,
                epochs=1,
                min_steps=400,
                max_epochs=200,
            ),
        ],  # fmt: skip
    ),
    "two-stage-paper": (
        "two-stage with the authors' exact budgets: 1 epoch per stage, lr 1e-4 then 1e-5",
        lambda: [
            StageConfig(name="stage1", trainable="top1", **_LDAM, **PAPER_TOP),
            _finetune(name="stage2", **PAPER_FULL),
        ],
    ),
    "vanilla-paper": (
        "vanilla with the authors' budget: 1 epoch, lr 1e-5",
        lambda: [_finetune(**PAPER_FULL)],
    ),
    "reweight-paper": (
        "reweight with the authors' budget: 1 epoch, lr 1e-5",
        lambda: [_finetune(name="reweight", **_LDAM, **PAPER_FULL)],
    ),
    "lp-ft": (
        "linear probe (head only, cross-entropy, lr 1e-3), then full fine-tuning with cross-entropy",
        lambda: [StageConfig(name="probe", trainable="head", loss="ce", **TOP), _finetune()],
    ),
    "drw": (
        "deferred re-weighting: cross-entropy first, then LDAM + effective-number weights",
        lambda: [_finetune(name="ce"), _finetune(name="reweighted", **_LDAM)],
    ),
    "focal": (
        "fine-tuning of all parameters with focal loss (gamma 2)",
        lambda: [_finetune(name="focal", loss="focal", loss_params={"gamma": 2.0})],
    ),
    "cb-ce": (
        "fine-tuning of all parameters with class-balanced cross-entropy (effective-number weights)",
        lambda: [_finetune(name="cb-ce", weights="effective")],
    ),
    "logit-adjusted": (
        "fine-tuning of all parameters with the logit-adjusted loss (tau 1)",
        lambda: [_finetune(name="logit-adjusted", loss="logit-adjusted", loss_params={"tau": 1.0})],
    ),
    "balanced-softmax": (
        "fine-tuning of all parameters with balanced softmax",
        lambda: [_finetune(name="balanced-softmax", loss="balanced-softmax")],
    ),
    "resample": (
        "fine-tuning of all parameters with class-balanced re-sampling and cross-entropy",
        lambda: [_finetune(name="resample", sampler="class-balanced")],
    ),
    "sqrt-resample": (
        "fine-tuning of all parameters with square-root re-sampling and cross-entropy",
        lambda: [_finetune(name="sqrt-resample", sampler="sqrt")],
    ),
    "crt": (
        "classifier re-training: full fine-tuning with cross-entropy, then the head alone re-trained on "
        "class-balanced samples (lr 1e-3)",
        lambda: [
            _finetune(),
            StageConfig(name="retrain-head", trainable="head", loss="ce", sampler="class-balanced", **TOP),
        ],
    ),
    "tfidf": (
        "the classic baseline, no transformer: TF-IDF of word 1-2 grams and a linear SVM with class-balanced "
        "weights (scikit-learn); shows what fine-tuning adds",
        lambda: [TfidfStage()],
    ),
}


# Settings that apply to stages: one value for every stage, or a list with one value per stage. The key is the
# setting's name, the value the stage field it sets (``stage_batch_size`` because ``batch_size`` is the run's).
STAGE_SHORTCUTS: dict[str, str] = {
    "epochs": "epochs",
    "lr": "lr",
    "loss": "loss",
    "weights": "weights",
    "trainable": "trainable",
    "stage_batch_size": "batch_size",
    "beta": "beta",
    "sampler": "sampler",
    "min_steps": "min_steps",
}
# Settings that belong to the run as a whole (every RunConfig field but those the function takes itself).
RUN_SETTINGS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(RunConfig) if f.name not in ("model", "strategy", "stages")
)
SETTINGS: tuple[str, ...] = (*RUN_SETTINGS, *STAGE_SHORTCUTS)


def setting_field(setting: str) -> dataclasses.Field:
    """The config field a setting sets, which declares it: a :class:`RunConfig` field, or the stage field of a stage
    shortcut."""
    if setting in STAGE_SHORTCUTS:
        return {f.name: f for f in dataclasses.fields(StageConfig)}[STAGE_SHORTCUTS[setting]]
    return {f.name: f for f in dataclasses.fields(RunConfig)}[setting]


# Settings whose None means something, as their declarations say (never stop early, no cache folder, epochs as given,
# the run's batch size, the checkpoint's attention dropout); None for any other setting means "not given".
NULLABLE_SETTINGS = frozenset(name for name in SETTINGS if declaration(setting_field(name)).null)


def build_run_config(
    model: str | None,
    strategy: str = DEFAULT_STRATEGY,
    *,
    settings: Mapping[str, Any] | None = None,
    stages: list[dict[str, Any]] | None = None,
) -> RunConfig:
    """The validated run config of a strategy with overrides: the one assembly path.

    Args:
        model: A local model folder or hub id (already resolved: see :func:`tailtune.data.builtin.resolve_model`);
            recorded but not used by a TF-IDF strategy, for which it may be None.
        strategy: A name from :data:`STRATEGIES`, or ``custom`` when ``stages`` spells out every stage.
        settings: Flat settings by name: run settings (:data:`RUN_SETTINGS`, e.g. ``max_length``, ``seed``)
            and stage shortcuts (:data:`STAGE_SHORTCUTS`, e.g. ``lr``, ``epochs``) given as one value for every
            stage or a list with one value per stage. ``None`` means "not given", except for the settings in
            :data:`NULLABLE_SETTINGS`, where it is a value (``patience: null`` never stops early).
        stages: Per-stage override mappings by position (for ``custom``: the full stage definitions), applied
            before the shortcuts.

    Raises:
        TailTuneError: An unknown strategy or setting, a bad value, a per-stage list of the wrong length, or a
            stage shortcut for a TF-IDF strategy (its run settings are taken and left unused). The message names
            the setting as spelled here (``lr``, ``beta``), never a command-line flag.
    """
    settings = {k: v for k, v in (settings or {}).items() if v is not None or k in NULLABLE_SETTINGS}
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise TailTuneError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(SETTINGS))}")
    run = {k: v for k, v in settings.items() if k in RUN_SETTINGS}
    resolved = resolve_stages(strategy, stages=stages)
    for name, value in settings.items():
        if name in STAGE_SHORTCUTS:
            if isinstance(resolved[0], TfidfStage):
                raise TailTuneError(f"{name} does not apply to strategy {strategy!r}, a TF-IDF + linear model without "
                                    "fine-tuning stages; leave it out (its own settings, such as C, go in 'stages')",
                                    setting=name)  # fmt: skip
            resolved = apply_stage_overrides(resolved, broadcast(name, value, len(resolved)), setting=name)
    return RunConfig(model=model, strategy=strategy, stages=resolved, **run)


def resolve_stages(strategy: str, *, stages: list[dict[str, Any]] | None = None) -> list[Stage]:
    """A strategy's stages with per-stage override mappings applied by position.

    Args:
        strategy: A strategy name, or ``custom`` when ``stages`` spells out every stage.
        stages: Per-stage override mappings (for ``custom``: the full stage definitions).
    """
    if strategy == "custom":
        if not stages:
            raise TailTuneError("strategy 'custom' needs a 'stages' list with one mapping per stage")
        return [stage_from_dict(s, where=f"stage {i + 1}") for i, s in enumerate(stages)]
    if stages is not None and not isinstance(stages, list):
        raise TailTuneError("stages must be a list with one mapping per stage")
    return apply_stage_overrides(get_strategy(strategy), stages or [])


def broadcast(setting: str, value: Any, n_stages: int) -> list[dict[str, Any]]:
    """One override mapping per stage from a shortcut's value: a scalar (or a one-item list) goes to every
    stage, a list must have one value per stage."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(items) == 1:
        items = items * n_stages
    if len(items) != n_stages:
        raise TailTuneError(
            f"{setting}: give one value for every stage or one per stage ({n_stages}), got {len(items)}",
            setting=setting,
        )
    return [{STAGE_SHORTCUTS[setting]: item} for item in items]


def apply_stage_overrides(
    stages: list[Stage], overrides: list[dict[str, Any]], *, setting: str | None = None
) -> list[Stage]:
    """Merge per-stage override mappings onto stages by position.

    Args:
        stages: The strategy's stages.
        overrides: One mapping per stage (may be shorter than ``stages``; an empty mapping changes nothing).
        setting: The setting the overrides came from, named in errors.

    Raises:
        TailTuneError: More overrides than stages, an unknown stage field or a bad value.
    """
    if len(overrides) > len(stages):
        raise TailTuneError(f"{len(overrides)} stage override(s) given but the strategy has {len(stages)} stage(s)")
    merged = []
    for i, stage in enumerate(stages):
        change = known_keys(type(stage), overrides[i] if i < len(overrides) else {}, f"stage {i + 1} override")
        if isinstance(stage, StageConfig):
            if "epochs" in change and "label_set_epochs" not in change:
                change["label_set_epochs"] = None  # epochs given hold for label sets too
            if "loss_params" in change and "loss" not in change:
                change["loss_params"] = {**stage.loss_params, **change["loss_params"]}
            elif "loss" in change and change["loss"] != stage.loss and "loss_params" not in change:
                change["loss_params"] = {}  # the old loss's parameters mean nothing to the new loss
        try:
            merged.append(stage.replace(**change))
        except TailTuneError as exc:
            raise TailTuneError(str(exc), setting=setting) from None
    return merged


def get_strategy(name: str) -> list[Stage]:
    """Fresh stage list of a strategy.

    Raises:
        TailTuneError: Unknown name (the message lists the valid ones).
    """
    if name not in STRATEGIES:
        raise TailTuneError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    return STRATEGIES[name][1]()


def describe_strategies() -> str:
    """Human-readable listing of every strategy and its stages (``tailtune strategies``)."""
    lines = []
    for name, (summary, build) in STRATEGIES.items():
        lines.append(f"{name}: {summary}")
        lines.extend(f"  {i}. {describe_stage(stage)}" for i, stage in enumerate(build(), start=1))
    return "\n".join(lines)


def describe_stage(stage: Stage) -> str:
    """One line per stage: name, scope, loss, weights, sampler, learning rate, epochs (and on label sets, where
    they differ), step budget, batch size.

    Weights, sampler, step budget and batch size are left out at their defaults (none, random, no minimum,
    the run's batch size). A TF-IDF stage describes its features and classifier instead.
    """
    if isinstance(stage, TfidfStage):
        return stage.describe()
    params = ", ".join(f"{k}={v}" for k, v in stage.loss_params.items())
    text = f"{stage.name}: trainable={stage.trainable}, loss={stage.loss}" + (f"({params})" if params else "")
    if stage.weights != "none":
        text += f", weights={stage.weights}"
    if stage.sampler != "random":
        text += f", sampler={stage.sampler}"
    text += f", lr={stage.lr:g}, epochs={stage.epochs}"
    if stage.label_set_epochs and stage.label_set_epochs != stage.epochs:
        text += f" ({stage.label_set_epochs} on label sets)"
    if stage.min_steps:
        text += f", min_steps={stage.min_steps}"
    return text + (f", batch_size={stage.batch_size}" if stage.batch_size else "")
