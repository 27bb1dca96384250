"""A time budget kept: the plan shrunk until its estimate fits (:func:`fit_to_budget`), and the hook that ends training
in time (:class:`BudgetStop`).

The plan gives up, in order, what costs most and buys least (:func:`candidates`): the refit first, then epochs of full
fine-tuning (down to one), then a shorter ``max_length``, then full stages trained on their top layers only (``top3``,
then ``top1``, on cached features); where nothing fine-tuned fits, the ``tfidf`` strategy (a run of ``tailtune
train``), else the cheapest version, stopped in time. During training, :class:`BudgetStop` ends training at a step
boundary while there is still time to score the steps since the last evaluation, to evaluate and to save; epoch
selection keeps the best weights seen so far.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tailtune.config import RunConfig, StageConfig
from tailtune.durations import format_duration
from tailtune.models.lengths import ROUND_TO
from tailtune.training.loop import StageHooks, stage_epochs

if TYPE_CHECKING:
    from accelerate import Accelerator

    from tailtune.training.cost import Estimate, Estimator

logger = logging.getLogger(__name__)

#: A plan fits a budget when its estimate is at most this share of it: the rest absorbs what the estimate misses.
FILL = 0.9
#: What is kept back for the work after training (evaluation, saving) is its estimate times this.
RESERVE_MARGIN = 1.25
#: The top layers a full stage is narrowed to when its full version does not fit a budget, in order.
NARROW_SCOPES = ("top3", "top1")
#: The shortest ``max_length`` a budget may shrink a run to.
SHORTEST_LENGTH = 64


@dataclass
class Candidate:
    """One version of a run's plan a budget may choose: its settings, whether it refits, what changed."""

    config: RunConfig
    refit: bool
    changes: list[str]


def candidates(config: RunConfig, refit: bool, epochs_of: Callable[[StageConfig], int],
               scopes: Sequence[str] = NARROW_SCOPES) -> list[Candidate]:  # fmt: skip
    """The versions of a plan, dearest first, each giving up what costs most and buys least first: the refit,
    then epochs of full fine-tuning (down to one), then a shorter ``max_length``, then full stages trained on their
    top layers only (:data:`NARROW_SCOPES`, their epochs and length restored, then shrunk again).

    Args:
        config: The run's settings.
        refit: Whether the run refits on all the data.
        epochs_of: The epochs a stage runs (its step budget included).
        scopes: The top-layer scopes full stages may be narrowed to (those the model has layers for).
    """
    found = [Candidate(config, refit, [])]
    if refit:
        found.append(Candidate(config, False, ["refit skipped"]))
    full = [i for i, stage in enumerate(config.stages) if stage.trainable == "all" and stage.epochs]
    found += _shrunk(config, full, epochs_of, ["refit skipped"] if refit else [])
    for scope in scopes if full else ():
        narrowed = _with_stages(config, full, trainable=scope)
        changes = [*(["refit skipped"] if refit else []), f"{_names(config, full)} on the {scope} layers only"]
        found.append(Candidate(narrowed, False, changes))
        found += _shrunk(narrowed, full, epochs_of, changes)
    return found


def _shrunk(config: RunConfig, full: list[int], epochs_of: Callable[[StageConfig], int], changes: list[str]
            ) -> list[Candidate]:  # fmt: skip
    """Fewer epochs of the stages ``full`` (down to one), then shorter ``max_length`` (by :data:`ROUND_TO`)."""
    found = []
    most = max((epochs_of(config.stages[i]) for i in full), default=1)
    for epochs in range(most - 1, 0, -1):
        shrunk = _with_epochs(config, full, epochs, epochs_of)
        found.append(Candidate(shrunk, False, [*changes, f"{_names(config, full)} at most {epochs} epoch(s)"]))
    last = found[-1].config if found else config
    changes = found[-1].changes if found else changes
    length = config.max_length
    while length - ROUND_TO >= SHORTEST_LENGTH:
        length -= ROUND_TO
        found.append(Candidate(last.replace(max_length=length), False, [*changes, f"max_length {length}"]))
    return found


def _with_epochs(config: RunConfig, indices: list[int], epochs: int, epochs_of: Callable[[StageConfig], int]
                 ) -> RunConfig:  # fmt: skip
    stages = list(config.stages)
    for i in indices:
        stages[i] = stages[i].replace(epochs=min(epochs, epochs_of(stages[i])), min_steps=0)
    return config.replace(stages=stages)


def _with_stages(config: RunConfig, indices: list[int], **change: Any) -> RunConfig:
    stages = [stage.replace(**change) if i in indices else stage for i, stage in enumerate(config.stages)]
    return config.replace(stages=stages)


def _names(config: RunConfig, indices: list[int]) -> str:
    return ", ".join(config.stages[i].name for i in indices)


@dataclass
class Budget:
    """What a time budget decided before training.

    Attributes:
        seconds: The budget.
        chosen: ``as planned``, ``shrunk``, ``tfidf`` (nothing fine-tuned fits) or ``cheapest`` (nothing fits, and
            no other strategy may replace the run's).
        changes: What was given up, in order.
        reason: One line: why.
        planned_s: The estimate of the plan as given (None: the plan was not priced).
        estimate_s: The estimate of the plan chosen (None: the plan was not priced).
        stopped: Where training was ended to keep the budget (None: it was not).
    """

    seconds: float
    chosen: str
    changes: list[str]
    reason: str
    planned_s: float | None
    estimate_s: float | None
    stopped: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The decision as ``metrics.json`` records it."""
        return {"budget_s": self.seconds, "chosen": self.chosen, "changes": self.changes, "reason": self.reason,
                "planned_s": _round(self.planned_s), "estimate_s": _round(self.estimate_s),
                "stopped": self.stopped}  # fmt: skip


def fit_to_budget(
    config: RunConfig, refit: bool, budget: float, estimator: Estimator, *, fallback: bool,
    scopes: Sequence[str] = NARROW_SCOPES,
) -> tuple[Candidate, Estimate, Budget]:  # fmt: skip
    """The first of the plan's :func:`candidates` whose estimate fits ``budget`` (at most :data:`FILL` of it).

    Where none does, the ``tfidf`` strategy with ``fallback`` (``chosen`` ``tfidf``: the caller trains it), else
    the cheapest version (``chosen`` ``cheapest``), which training then stops in time.
    """
    epochs_of = epochs_on_selection(estimator, config)
    versions = candidates(config, refit, epochs_of, scopes)
    planned = estimator.estimate(config, refit)
    fits = budget * FILL
    priced: list[tuple[Candidate, Estimate]] = []
    for version in versions:
        estimate = planned if not version.changes else estimator.estimate(version.config, version.refit)
        priced.append((version, estimate))
        if estimate.total <= fits:
            chosen = "as planned" if not version.changes else "shrunk"
            reason = (f"the plan's estimate of {format_duration(planned.total)} fits the budget of "
                      f"{format_duration(budget)}") if not version.changes else (
                      f"the plan as given needs about {format_duration(planned.total)}; shrunk to about "
                      f"{format_duration(estimate.total)} to fit the budget of {format_duration(budget)}")  # fmt: skip
            return version, estimate, Budget(budget, chosen, version.changes, reason, planned.total, estimate.total)
    version, estimate = min(priced, key=lambda pair: pair[1].total)
    why = (f"nothing fine-tuned fits the budget of {format_duration(budget)}: the cheapest plan ("
           f"{'; '.join(version.changes)}) needs about {format_duration(estimate.total)}")  # fmt: skip
    if fallback:
        return version, estimate, Budget(budget, "tfidf", ["the tfidf strategy instead"], f"{why}; the tfidf "
                                         "strategy trains instead", planned.total, estimate.total)  # fmt: skip
    return version, estimate, Budget(budget, "cheapest", version.changes, f"{why}; it runs and stops in time",
                                     planned.total, estimate.total)  # fmt: skip


def epochs_on_selection(estimator: Estimator, config: RunConfig) -> Callable[[StageConfig], int]:
    """The epochs a stage of ``config`` runs on the selection data (its ``min_steps`` included)."""

    def epochs_of(stage: StageConfig) -> int:
        batches = math.ceil(estimator.sizes.selection / (stage.batch_size or config.batch_size))
        return stage_epochs(stage, max(1, batches), config.gradient_accumulation_steps)

    return epochs_of


class BudgetStop(StageHooks):
    """Ends training in time to keep a run's budget: at a step boundary, while the time left still holds the next
    step, a validation pass (to score the steps since the last one), and the work after training.

    Args:
        deadline: When the run must end (``time.perf_counter`` seconds).
        reserve: Seconds kept for the work after training.
        stages: Per phase (``train``, ``refit``), per stage index: the estimate's stage plans (``cache_s``,
            ``step_s``, ``validation_pass_s``).
        clock: The clock (``time.perf_counter``).
        accelerator: Under several processes, the main process decides and the others follow.

    Attributes:
        phase: ``train`` (selection) or ``refit``.
        halted: Whether training of the current phase was ended.
        stopped: Where, and why (for ``metrics.json``).
    """

    def __init__(self, deadline: float, reserve: float, stages: dict[str, list[dict[str, Any]]], *,
                 clock: Callable[[], float] = time.perf_counter,
                 accelerator: Accelerator | None = None) -> None:  # fmt: skip
        self.deadline, self.reserve, self.stages, self.clock = deadline, reserve, stages, clock
        self.accelerator = accelerator
        self.phase, self.halted, self.stopped = "train", False, None
        self._last: float | None = None
        self._intervals: list[float] = []

    def time_left(self) -> float:
        """Seconds until the deadline."""
        return self.deadline - self.clock()

    def start_phase(self, phase: str) -> None:
        """Training starts again (the refit): what ended the last phase no longer holds."""
        self.phase, self.halted, self._last, self._intervals = phase, False, None, []

    def on_step(self, stage_index: int, stage: StageConfig, step: int) -> bool:
        if self.halted:
            return True
        plans = self.stages.get(self.phase) or []
        plan = plans[stage_index] if stage_index < len(plans) else {}
        now = self.clock()
        if step == 0:
            self._last, self._intervals = now, []
            need = plan.get("cache_s", 0.0) + plan.get("step_s", 0.0)
        else:
            self._intervals = [*self._intervals[-4:], now - (self._last or now)]
            self._last = now
            need = float(np.median(self._intervals)) if self._intervals else plan.get("step_s", 0.0)
        need += plan.get("validation_pass_s", 0.0)
        left = self.deadline - now - self.reserve
        halt = _agree(left < need, self.accelerator)
        if halt:
            self.halted = True
            where = "before it started" if step == 0 else f"after step {step}"
            self.stopped = {"phase": self.phase, "stage": stage.name, "step": step,
                            "left_s": round(self.deadline - now, 1),
                            "reason": f"{stage.name} ended {where}: {max(0.0, left):.1f} s were left before the work "
                            f"after training, the next step and a validation pass need about {need:.1f} s"}  # fmt: skip
            logger.info("time budget: %s", self.stopped["reason"])
        return halt

    def refit_fits(self, refit_s: float) -> tuple[bool, str]:
        """Whether a refit of about ``refit_s`` seconds still fits, and why not."""
        left = self.time_left() - self.reserve
        if left >= refit_s:
            return True, ""
        return False, (f"skipped to keep the time budget: {max(0.0, left):.0f} s were left before the work after "
                       f"training, the refit needs about {refit_s:.0f} s")  # fmt: skip


def _agree(flag: bool, accelerator: Accelerator | None) -> bool:
    """Every process takes the main process's decision (one that stopped alone would leave the others waiting)."""
    if accelerator is None or accelerator.num_processes == 1:
        return flag
    from accelerate.utils import broadcast_object_list

    return bool(broadcast_object_list([flag])[0])


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
