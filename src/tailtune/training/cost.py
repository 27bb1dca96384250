"""The price of a fine-tuning run before the work, and the time budget it keeps.

Before training, :func:`plan_fit` (through :func:`plan_run`) times a short probe of the run's own work on this
machine (:mod:`tailtune.training.probe`) and adds the run up from it (:class:`Estimator`): the batches of every epoch
of every stage (their padded sizes simulated from the training texts' token lengths, batched as training batches
them), the step budget's extra epochs, the cache builds of stages on cached features, the validation passes of epoch
selection, the choice of reading long texts, the refit on all the data (which repeats the stages; it is decided up
front, from class counts), the final evaluation and the save. Early stopping can only shorten a stage, and a refit
stops at the epoch selection chose, so the estimate is of the plan as it would run in full.

With a time budget (``time_budget``), the plan is shrunk until its estimate fits and training is stopped in time
(:mod:`tailtune.training.budget`). What was decided and why goes to ``metrics.json`` under ``cost``
(:meth:`RunPlan.record`), beside the time the run took.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tailtune.config import RunConfig
from tailtune.data.types import Splits, TextDataset
from tailtune.durations import format_duration
from tailtune.errors import TailTuneError
from tailtune.models.lengths import MAX_WINDOWS
from tailtune.task import TASKS, Task
from tailtune.training.batching import BatchPlan
from tailtune.training.budget import NARROW_SCOPES, RESERVE_MARGIN, Budget, BudgetStop, fit_to_budget
from tailtune.training.loop import HookList, StageHooks, stage_epochs
from tailtune.training.probe import Probe, padded_tokens

if TYPE_CHECKING:
    from accelerate import Accelerator

    from tailtune.training.fitting import FitContext

logger = logging.getLogger(__name__)

#: A time budget shorter than this (seconds) cannot hold a probe and a fine-tuning run: where the ``tfidf`` strategy
#: may replace the run, it does at once, without probing.
MIN_PROBED_BUDGET = 60.0


@dataclass
class Sizes:
    """How much data each part of a run reads.

    Attributes:
        selection: Texts the stages train on while epochs are selected (the training data less a carved split).
        validation: Texts of the validation split (0: none).
        all: Every training text (a refit trains on them).
        evaluated: Texts scored once training ends (the test data, else the eval data; both where both are given).
        selects: Whether epochs are selected on validation.
        watched: Texts scored after each stage, for the history only, where nothing is selected (0: none).
    """

    selection: int
    validation: int
    all: int
    evaluated: list[int] = field(default_factory=list)
    selects: bool = True
    watched: int = 0


@dataclass
class Estimate:
    """The estimated seconds of a run, by part, and what each stage will do.

    Attributes:
        parts: Seconds by part: ``before`` (spent before the probe), ``probe``, ``load``, ``encode``, ``train``,
            ``validation``, ``long_texts``, ``refit``, ``evaluate`` and ``save``.
        stages: Per stage of the selection run: what it does and its seconds (``Estimator._stage``).
        refit_stages: The same for the refit's stages (empty without a refit).
    """

    parts: dict[str, float]
    stages: list[dict[str, Any]]
    refit_stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> float:
        """Seconds of the whole run."""
        return sum(self.parts.values())

    @property
    def after_training(self) -> float:
        """Seconds of the work after the stages: reading long texts, the final evaluation and the save."""
        return self.parts["long_texts"] + self.parts["evaluate"] + self.parts["save"]


class Estimator:
    """Prices a run's settings from a probe's timings and the training texts' token lengths.

    Args:
        probe: The timings (:class:`Probe`, or anything with its attributes).
        sizes: The data each part reads.
        spent: Seconds already spent by the run before the probe.
    """

    def __init__(self, probe: Probe, sizes: Sizes, spent: float) -> None:
        self.probe, self.sizes, self.spent = probe, sizes, spent

    def estimate(self, config: RunConfig, refit: bool) -> Estimate:
        """The estimate of a run of ``config``, with a refit on all the data or not."""
        probe, sizes = self.probe, self.sizes
        stages = [self._stage(config, i, sizes.selection, validate=True) for i in range(len(config.stages))]
        refit_stages = [self._stage(config, i, sizes.all, validate=False, epochs=stage.get("epochs"))
                        for i, stage in enumerate(stages)] if refit else []  # fmt: skip
        length = config.max_length
        read_whole = config.long_texts == "chunks"  # auto decides later; its cheaper reading is the estimate's
        evaluated = sum(self._predict_s(n, length, read_whole) for n in sizes.evaluated)
        long_texts = 0.0
        if config.long_texts == "auto" and sizes.validation and np.any(probe.lengths > length):
            long_texts = self._predict_s(sizes.validation, length, True) + probe.encode_per_text * sizes.validation
        watched = self._predict_s(sizes.watched, length, False)  # after each stage, where nothing is selected
        texts_encoded = sizes.selection + sizes.validation + (sizes.all if refit else 0) + sum(sizes.evaluated)
        parts = {
            "before": self.spent,
            "probe": probe.seconds,
            "load": probe.load_s * (2 if refit else 1),
            "encode": probe.encode_per_text * texts_encoded,
            "train": sum(s["seconds"] for s in stages),
            "validation": sum(s["validation_s"] for s in stages) + watched * len(stages),
            "long_texts": long_texts,
            "refit": sum(s["seconds"] for s in refit_stages),
            "evaluate": evaluated,
            "save": probe.save_s,
        }
        return Estimate(parts, stages, refit_stages)

    def _stage(self, config: RunConfig, index: int, texts: int, *, validate: bool, epochs: int | None = None
               ) -> dict[str, Any]:  # fmt: skip
        """What stage ``index`` does over ``texts`` training texts, and its seconds (its training, its cache build,
        the validation passes after its epochs)."""
        stage = config.stages[index]
        batch_size = stage.batch_size or config.batch_size
        widths, counts = self._batches(texts, batch_size, config)
        per_epoch = math.ceil(len(widths) / config.gradient_accumulation_steps)
        if epochs is None:
            epochs = stage_epochs(stage, len(widths), config.gradient_accumulation_steps)
        plan = {"name": stage.name, "trainable": stage.trainable, "batch_size": batch_size, "epochs": epochs,
                "steps_per_epoch": per_epoch, "steps": per_epoch * epochs, "cached": False, "seconds": 0.0,
                "cache_s": 0.0, "step_s": 0.0, "validation_s": 0.0,
                # the step budget, where it (not the epochs asked for) sets the epochs: small data
                "min_steps": stage.min_steps if epochs > stage.epochs and stage.min_steps else None}  # fmt: skip
        if not epochs or not texts:
            return plan
        median, widest = (int(np.median(widths)), int(np.max(widths))) if len(widths) else (1, 1)
        cost = self.probe.step(stage.trainable, batch_size, config.max_length, (median, widest))
        padded = float(np.dot(widths, counts))
        cache_s = cost.cache_per_token * padded_tokens(self._lengths(texts, config.max_length), config.eval_batch_size)
        train_s = cost.seconds(padded, len(widths)) * epochs
        evaluations = _evaluations(epochs, per_epoch, config.eval_steps) if validate and self.sizes.selects else 0
        pass_s = self._predict_s(self.sizes.validation, config.max_length, False) if validate else 0.0
        plan.update(cached=cost.cached, cache_s=cache_s, step_s=train_s / max(1, plan["steps"]),
                    validation_pass_s=pass_s, validation_s=pass_s * evaluations, seconds=train_s + cache_s)  # fmt: skip
        return plan

    def _lengths(self, texts: int, max_length: int) -> np.ndarray:
        """Token lengths of ``texts`` texts drawn like the training texts (the probe's sample), cut at
        ``max_length``."""
        lengths = self.probe.lengths
        if not len(lengths) or not texts:
            return np.zeros(0, dtype=np.int64)
        drawn = np.random.default_rng(0).choice(lengths, size=texts) if texts != len(lengths) else lengths
        return np.minimum(drawn, max_length)

    def _batches(self, texts: int, batch_size: int, config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
        """The widths (padded tokens per text) and sizes of one epoch's batches, batched as training batches."""
        lengths = self._lengths(texts, config.max_length)
        plan = BatchPlan(lengths, batch_size, seed=config.seed, shuffle=True, group_by_length=config.group_by_length)
        batches = list(plan)
        return (np.array([lengths[b].max() for b in batches], dtype=np.int64),
                np.array([len(b) for b in batches], dtype=np.int64))  # fmt: skip

    def _predict_s(self, texts: int, max_length: int, whole: bool) -> float:
        """Seconds to predict ``texts`` texts, read whole in windows (``whole``) or cut at ``max_length``."""
        if not texts:
            return 0.0
        lengths = self._lengths(texts, 1 << 30)
        if whole:
            width = max(1, max_length - self.probe.specials)
            windows = np.minimum(MAX_WINDOWS, np.maximum(1, np.ceil((lengths - self.probe.specials) / width)))
            lengths = np.where(lengths > max_length, max_length, lengths)
            lengths = np.repeat(lengths, windows.astype(np.int64))
        else:
            lengths = np.minimum(lengths, max_length)
        return self.probe.predict_per_token * padded_tokens(lengths, self.probe.config.eval_batch_size)


@dataclass
class RunPlan:
    """What :func:`plan_run` decided: the settings to train, the estimate, and the budget's decision.

    Attributes:
        config: The settings to train (shrunk to fit a budget where one is given).
        refit: The refit decision (``done``, ``reason``), known up front.
        estimate: The estimate of the plan chosen (None where nothing was probed: no estimate was asked for).
        budget: The budget's decision (None without a budget).
        fallback: Train this ``tfidf`` run instead (nothing fine-tuned fits the budget); None otherwise.
        stopper: The hook that ends training in time (None without a budget).
        probe: What the probe timed (None where nothing was probed).
        validation: The validation split (``source``, ``size``).
        started: When the run started (``time.perf_counter`` seconds).
    """

    config: RunConfig
    refit: dict[str, Any]
    estimate: Estimate | None
    budget: Budget | None
    fallback: RunConfig | None
    stopper: BudgetStop | None
    probe: dict[str, Any] | None
    validation: dict[str, Any]
    started: float

    def describe(self) -> dict[str, Any]:
        """The plan, as the command line prints it and ``metrics.json`` records it under ``cost.plan``."""
        config = self.config
        return {
            "family": "transformer", "strategy": config.strategy, "max_length": config.max_length,
            "long_texts": config.long_texts, "validation": self.validation, "refit": self.refit,
            "stages": [_rounded(stage) for stage in self.estimate.stages],
            "refit_stages": [_rounded(stage) for stage in self.estimate.refit_stages],
        }  # fmt: skip

    def record(self) -> dict[str, Any] | None:
        """``metrics.json``'s ``cost``: the estimate (``actual_s`` is filled in by whoever times the whole run); None
        where nothing was estimated."""
        budget = None if self.budget is None else self.budget.to_dict()
        if budget is not None and self.stopper is not None:
            budget["stopped"] = self.stopper.stopped
        if self.estimate is None:
            return None if budget is None else {"budget": budget, "probe": self.probe}
        return {"estimate_s": round(self.estimate.total, 1), "actual_s": None,
                "parts": {name: round(seconds, 2) for name, seconds in self.estimate.parts.items()},
                "plan": self.describe(), "probe": self.probe, "budget": budget}  # fmt: skip

    def event(self) -> dict[str, Any]:
        """What the hooks hear before training (:meth:`StageHooks.on_plan`)."""
        record = self.record()
        record.pop("actual_s")
        return record

    def hooks(self, phase: str) -> list[StageHooks]:
        """The hooks that keep the time budget while the stages of ``phase`` (``train``, ``refit``) run."""
        if self.stopper is None:
            return []
        if phase != self.stopper.phase:
            self.stopper.start_phase(phase)
        return [self.stopper]

    def refit_now(self) -> dict[str, Any]:
        """The refit decided up front, unless the time budget has no room left for it."""
        stopper = self.stopper
        if stopper is None or not self.refit["done"]:
            return self.refit
        if stopper.halted:
            return {"done": False, "reason": "skipped: the time budget ended training before the plan was done"}
        assert self.estimate is not None and self.probe is not None  # a stopper comes with a probed estimate
        fits, why = stopper.refit_fits(self.estimate.parts["refit"] + self.probe["load_s"])
        return self.refit if fits else {"done": False, "reason": why}

    def refit_kept(self, refit: dict[str, Any], epochs: list[float] | None
                   ) -> tuple[dict[str, Any], list[float] | None]:  # fmt: skip
        """The refit's decision and epochs once it ran: a refit the time budget ended early was never validated,
        and the model selected on validation is kept instead."""
        if self.stopper is None or not self.stopper.halted:
            return refit, epochs
        return {"done": False, "reason": "the time budget ended the refit before it finished; the model selected on "
                "validation is kept"}, None  # fmt: skip


def plan_run(
    config: RunConfig,
    train: TextDataset,
    label_ids: np.ndarray,
    labels: list[str],
    class_counts: list[int],
    accelerator: Accelerator,
    sizes: Sizes,
    *,
    refit: dict[str, Any],
    validation: dict[str, Any],
    started: float,
    fallback: bool = False,
    hooks: Sequence[StageHooks] = (),
    task: Task | None = None,
) -> RunPlan:
    """Probe, estimate and (with ``config.time_budget``) shrink a run's plan; tell the hooks (``on_plan``).

    Args:
        config: The run's settings, ``max_length`` resolved.
        train: All the training texts (a sample is probed), with their label ids ``label_ids``.
        labels: The label names.
        class_counts: Examples per class of the selection data (the losses' weights).
        accelerator: The run's accelerator.
        sizes: How much data each part of the run reads.
        refit: Whether the run refits, and why (decided from class counts).
        validation: The validation split's description, for the plan.
        started: When the run started (``time.perf_counter`` seconds): the budget counts from there.
        fallback: Whether the ``tfidf`` strategy may replace the run when nothing fine-tuned fits the budget.
        hooks: Hear the plan.
        task: The labels' task (default: single-label).
    """
    why = _no_room_to_probe(config, started) if fallback else None
    if why is None:
        probe = Probe(config, labels, train, label_ids, accelerator, class_counts, task)
        why = _no_room_to_probe(config, started, probe.load_s) if fallback else None
        if why is not None:
            probe.close()
    if why is not None:
        return _fall_back_unprobed(config, refit, validation, started, hooks, why, task)
    try:
        estimator = Estimator(probe, sizes, spent=time.perf_counter() - started - probe.seconds)
        estimate = estimator.estimate(config, refit["done"])
        budget = tfidf = stopper = None
        if config.time_budget is not None:
            scopes = [scope for scope in NARROW_SCOPES if probe.trains(scope)]
            chosen, estimate, budget = fit_to_budget(config, refit["done"], config.time_budget, estimator,
                                                     fallback=fallback, scopes=scopes)  # fmt: skip
            chosen, budget = _main_process_decides(chosen, budget, accelerator)
            if budget.chosen == "tfidf":
                tfidf = _tfidf_config(config, task)
            else:
                config = chosen.config
                if refit["done"] and not chosen.refit:
                    refit = {"done": False, "reason": f"skipped to fit the time budget ({refit['reason']})"}
            stopper = BudgetStop(started + budget.seconds, estimate.after_training * RESERVE_MARGIN,
                                 {"train": estimate.stages, "refit": estimate.refit_stages},
                                 accelerator=accelerator)  # fmt: skip
            logger.info("time budget %s: %s", format_duration(budget.seconds), budget.reason)
        estimate.parts["probe"] = probe.seconds  # the probes the budget's choice needed included
        record = probe.record()
    finally:
        probe.close()
    plan = RunPlan(config, refit, estimate, budget, tfidf, stopper, record, validation, started)
    logger.info("estimated time: %s (probe %s)", format_duration(estimate.total), format_duration(probe.seconds))
    if tfidf is None:  # the tfidf run that replaces this plan tells the hooks its own plan
        HookList(hooks).on_plan(plan.event())
    return plan


def _no_room_to_probe(config: RunConfig, started: float, load_s: float | None = None) -> str | None:
    """Why the run's time budget holds no probe and fine-tuning, so that the ``tfidf`` strategy trains instead
    (None: it may hold them): a budget under :data:`MIN_PROBED_BUDGET`, or, once the probe has loaded the model in
    ``load_s`` seconds, a budget that the time spent so far and the run's own load would half spend."""
    budget = config.time_budget
    if budget is None:
        return None
    if budget < MIN_PROBED_BUDGET:
        return f"a budget under {format_duration(MIN_PROBED_BUDGET)} leaves no room to probe and fine-tune"
    # The probe's load alone shows it: the run loads the model again and then trains.
    if load_s is not None and time.perf_counter() - started + load_s > budget / 2:
        return f"loading the model took {format_duration(load_s)}, too much of it to probe and fine-tune"
    return None


def _fall_back_unprobed(config: RunConfig, refit: dict[str, Any], validation: dict[str, Any], started: float,
                        hooks: Sequence[StageHooks], why: str, task: Task | None) -> RunPlan:  # fmt: skip
    """The ``tfidf`` strategy in place of a fine-tuning run that its time budget cannot hold, decided before (or
    instead of) the rest of the probe, so that the probe does not spend the budget."""
    budget_s = float(config.time_budget or 0)
    budget = Budget(budget_s, "tfidf", ["the tfidf strategy instead"],
                    f"{why} within the budget of {format_duration(budget_s)}; the tfidf strategy trains instead",
                    None, None)  # fmt: skip
    logger.info("time budget %s: %s", format_duration(budget_s), budget.reason)
    spent = time.perf_counter() - started
    probe = {"seconds": round(spent, 3), "skipped": why}
    return RunPlan(config, refit, None, budget, _tfidf_config(config, task), None, probe, validation, started)


def plan_fit(
    ctx: FitContext, splits: Splits, *, hooks: Sequence[StageHooks] = (), fallback: bool = False,
    started: float | None = None,
) -> RunPlan:  # fmt: skip
    """The plan of a fit and its estimated time, from a short timed probe (:func:`tailtune.training.cost.plan_run`),
    shrunk to fit the run's ``time_budget`` where it has one; ``hooks`` hear it (``on_plan``) before training.

    Args:
        ctx: The run's context (``max_length`` is resolved here where it is not yet).
        splits: The run's data: its validation split, refit and final evaluation are priced as :func:`fit` and
            :func:`tailtune.runs.train.train_run` will run them.
        hooks: Hear the plan.
        fallback: Whether the ``tfidf`` strategy may replace the run when nothing fine-tuned fits the budget
            (:attr:`RunPlan.fallback`; the caller trains it).
        started: When the run started (``time.perf_counter`` seconds; default now): the budget counts from there.
    """
    from tailtune.training.fitting import refit_decision, resolve_max_length, validation_split

    started = time.perf_counter() if started is None else started
    if ctx.config.max_length is None:
        ctx = dataclasses.replace(ctx, config=resolve_max_length(ctx.config, splits.train.texts))
    config = ctx.config
    held = validation_split(config, splits)
    refit = {"done": False, "reason": "no validation split was carved"}
    if held.carved:
        refit = refit_decision(config.refit, ctx.train_counts)
    target = splits.test if splits.test is not None else splits.eval
    scored = [part for part in (target, splits.eval if splits.test is not None else None) if part is not None]
    selects = held.validation is not None and config.select_metric != "none"
    watched = len(splits.eval) if config.select_metric == "none" and splits.eval is not None else 0
    sizes = Sizes(len(held.train), 0 if held.validation is None else len(held.validation), len(splits.train),
                  [len(part) for part in scored], selects=selects, watched=watched)  # fmt: skip
    validation = {"source": held.info["source"], "size": sizes.validation, "train": sizes.selection}
    if not _probes(config, ctx.accelerator, hooks):
        return RunPlan(config, refit, None, None, None, None, None, validation, started)
    label_ids = ctx.task.encode(ctx.label_map, held.train)
    return plan_run(config, held.train, label_ids, ctx.label_map.labels, ctx.label_map.counts(held.train),
                    ctx.accelerator, sizes, refit=refit, validation=validation, started=started,
                    fallback=fallback, hooks=hooks, task=ctx.task)  # fmt: skip


def asks_for_plan(hooks: Sequence[Any]) -> bool:
    """Whether any of ``hooks`` listens to the plan (overrides :meth:`StageHooks.on_plan`)."""
    for hook in hooks:
        if isinstance(hook, HookList):
            if asks_for_plan(hook.hooks):
                return True
        elif getattr(type(hook), "on_plan", StageHooks.on_plan) is not StageHooks.on_plan:
            return True
    return False


def _probes(config: RunConfig, accelerator: Accelerator | None, hooks: Sequence[Any]) -> bool:
    """Whether the run is probed and priced: only where the answer is used, by a time budget or by a hook that
    hears the plan (the command line prints it). Under several processes, which hooks listen differs between them
    (only the main process prints) and the probe's steps would not run in step, so nothing is probed there."""
    if accelerator is not None and accelerator.num_processes > 1:
        if config.time_budget is not None:
            raise TailTuneError("time_budget is not supported under several processes (torchrun, accelerate "
                                "launch): drop --time-budget or train in one process")  # fmt: skip
        return False
    return config.time_budget is not None or asks_for_plan(hooks)


def _main_process_decides(chosen: Any, budget: Budget, accelerator: Accelerator | None) -> tuple[Any, Budget]:
    """Under several processes, every one trains the plan the main process chose (timings differ between them)."""
    if accelerator is None or accelerator.num_processes == 1:
        return chosen, budget
    from accelerate.utils import broadcast_object_list

    chosen, budget = broadcast_object_list([chosen, budget])
    return chosen, budget


def _tfidf_config(config: RunConfig, task: Task | None) -> RunConfig:
    """The ``tfidf`` strategy's run in place of ``config``: its seed and tracker, as ``task`` trains it."""
    from tailtune.strategies import build_run_config

    tfidf = build_run_config(None, "tfidf", settings={"seed": config.seed, "report_to": config.report_to})
    return (task or TASKS["single-label"]).prepare(tfidf)


def _evaluations(epochs: int, per_epoch: int, eval_steps: int | None) -> int:
    """Validation passes of a stage: one per epoch end, and one every ``eval_steps`` steps between."""
    steps = epochs * per_epoch
    ends = {per_epoch * k for k in range(1, epochs + 1)}
    if eval_steps:
        ends |= set(range(eval_steps, steps + 1, eval_steps))
    return len(ends)


def _rounded(stage: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in stage.items()}
