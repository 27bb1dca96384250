"""Running an experiment: every (variant, strategy, seed) not complete yet, then the summary.

Complete runs are skipped (after checking that their recorded settings match the config), incomplete ones
are redone from scratch, and stage-1 frozen features are cached in ``OUT/.cache`` for every seed and
strategy that can share them. Nothing here prints: progress is logged, results are returned, and an
interruption is raised as :class:`CompareInterrupted`, so the caller decides what to show.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailtune.data.types import Splits
from tailtune.errors import TailTuneError, TrainingDiverged
from tailtune.experiments.plan import PreparedExperiment, prepare_compare
from tailtune.experiments.spec import Experiment, PlannedRun
from tailtune.experiments.summary import write_summary
from tailtune.runs.rundir import RunBusy, is_complete, tuning_dir, write_failure
from tailtune.runs.train import train_run
from tailtune.settings import check_value
from tailtune.strategies import setting_field
from tailtune.training.loop import StageHooks

# PreparedExperiment and prepare_compare live in plan.py, which a dry run imports without torch; they stay
# importable from here.
__all__ = ["CompareInterrupted", "CompareResult", "PreparedExperiment", "prepare_compare", "run_compare"]

logger = logging.getLogger(__name__)


@dataclass
class CompareResult:
    """What :func:`run_compare` did.

    Attributes:
        experiment: The experiment.
        trained: The run directories trained by this call.
        skipped: The run directories that were complete already.
        failed: The runs that diverged (recorded in their ``failed.json``; a later call retries them).
        busy: The runs another live worker was training (it completes them).
        summary_csv: ``OUT/summary.csv``.
        summary_json: ``OUT/summary.json``.
        summary: The content of ``summary.json``.
        unstarted: The runs a time budget left no time for (a later call trains them).
        estimates: ``(estimated, actual)`` seconds of each run trained by this call.
    """

    experiment: Experiment
    trained: list[Path]
    skipped: list[Path]
    failed: list[Path]
    busy: list[Path]
    summary_csv: Path | None
    summary_json: Path | None
    summary: dict[str, Any] | None
    unstarted: list[Path] = field(default_factory=list)
    estimates: list[tuple[float, float]] = field(default_factory=list)


class CompareInterrupted(KeyboardInterrupt):
    """The experiment was interrupted; running it again resumes where it stopped.

    Attributes:
        done: Runs complete when it stopped.
        total: Runs in the plan.
        output: The experiment's output folder.
    """

    def __init__(self, done: int, total: int, output: Path) -> None:
        super().__init__(f"{done} of {total} runs complete in {output}")
        self.done = done
        self.total = total
        self.output = output


def run_compare(
    config_path: str | Path,
    *,
    output: str | Path | None = None,
    show_progress: bool = True,
    time_budget: float | str | None = None,
    hooks: Sequence[StageHooks] = (),
) -> CompareResult:
    """Run an experiment: every (variant, strategy, seed) not complete yet, then write the summary.

    Args:
        config_path: The experiment YAML file (schema in :mod:`tailtune.experiments.spec`).
        output: Output folder; overrides the file's ``output``.
        show_progress: Per-stage progress bars.
        time_budget: Seconds (or ``"10m"``) for the whole experiment: each run left gets an equal share of the time
            left (its own ``time_budget``, where the file's ``run`` gives one, when that is less), and no run starts
            once it is spent (:attr:`CompareResult.unstarted`).
        hooks: Hear every run's stage loop (e.g. its plan, before it trains).

    Returns:
        The runs trained and skipped, and the summary.

    Raises:
        TailTuneError: For a bad config or data, before any training starts.
        CompareInterrupted: When interrupted; complete runs stay, and running again resumes.
    """
    seconds = None if time_budget is None else check_value(setting_field("time_budget"), time_budget)
    prepared = prepare_compare(config_path, output=output)
    experiment, plan = prepared.experiment, prepared.plan
    deadline = None if seconds is None else time.perf_counter() + seconds
    unstarted: list[Path] = []
    estimates: list[tuple[float, float]] = []
    trained: list[Path] = []
    skipped: list[Path] = []
    failed: list[Path] = []
    busy: list[Path] = []
    total = len(plan)
    try:
        for number, item in enumerate(plan, start=1):
            if is_complete(item.directory):
                logger.info("run %d/%d: skipping complete run %s", number, total, item.directory)
                skipped.append(item.directory)
                continue
            share = None
            if deadline is not None:
                left = [later.directory for later in plan[number - 1 :] if not is_complete(later.directory)]
                if deadline - time.perf_counter() <= 0:
                    logger.info("time budget spent: %d run(s) not started", len(left))
                    unstarted.extend(left)
                    break
                share = (deadline - time.perf_counter()) / len(left)
            logger.info("run %d/%d: %s / %s / seed %d", number, total, item.variant.name, item.strategy.label,
                        item.seed)  # fmt: skip
            started = time.perf_counter()
            try:
                metrics = _train(experiment, item, prepared.splits[item.variant.name], show_progress=show_progress,
                                 time_budget=share, hooks=hooks)  # fmt: skip
            except RunBusy:
                # Several workers may share one output (on one machine or on several sharing a filesystem):
                # each run is trained by the worker that holds its lock.
                logger.info("run %d/%d: another worker is training it; skipped", number, total)
                busy.append(item.directory)
                continue
            except TrainingDiverged as exc:
                logger.warning("run %d/%d failed: %s", number, total, exc)
                write_failure(item.directory, str(exc))
                failed.append(item.directory)
                continue
            trained.append(item.directory)
            cost = metrics.get("cost") or {}
            if cost.get("estimate_s") is not None and cost.get("actual_s") is not None:
                estimates.append((cost["estimate_s"], cost["actual_s"]))
            score = metrics.get("macro_f1")
            logger.info("run %d/%d done in %.0fs%s", number, total, time.perf_counter() - started,
                        "" if score is None else f": macro-F1 {score:.4f}")  # fmt: skip
    except KeyboardInterrupt:
        done = sum(is_complete(item.directory) for item in plan)
        raise CompareInterrupted(done, total, experiment.output) from None

    if not any(is_complete(item.directory) for item in plan):
        if busy or unstarted:  # other workers hold every run left (the last writes the summary), or no time was left
            return CompareResult(experiment, trained, skipped, failed, busy, None, None, None, unstarted, estimates)
        raise TailTuneError(f"{experiment.output}: no run completed ({len(failed)} failed: see failed.json in each)")
    csv_path, json_path = write_summary(experiment.output, baseline=experiment.baseline)
    # The summary as stored: what a later reader of summary.json sees.
    summary = json.loads(json_path.read_text(encoding="utf-8"))
    return CompareResult(experiment, trained, skipped, failed, busy, csv_path, json_path, summary, unstarted,
                         estimates)  # fmt: skip


def _train(experiment: Experiment, item: PlannedRun, splits: Splits, *, show_progress: bool,
           time_budget: float | None = None, hooks: Sequence[StageHooks] = ()) -> dict[str, Any]:  # fmt: skip
    """One planned run: trained as configured, or, with ``tune``, after a search of its strategy's budget; within
    ``time_budget`` seconds (and its own, where the file's ``run`` gives one), where given."""
    config = experiment.run_config(item.strategy, item.seed)
    limits = [limit for limit in (config.time_budget, time_budget) if limit is not None]
    budget = min(limits) if limits else None
    described = {"variant": item.variant.name, "variant_info": item.variant.info}
    if experiment.tune is None:
        config = config.replace(time_budget=budget)
        return train_run(config, splits, item.directory, show_progress=show_progress, hooks=hooks, **described)
    from tailtune.experiments.tune import FinalRun, tune

    settings = {"cache_dir": config.cache_dir, **experiment.run, **item.strategy.options}
    settings.pop("time_budget", None)  # the search's as a whole, not each trial's
    result = tune(
        experiment.model, splits, tuning_dir(item.directory),
        strategies=[item.strategy.name], trials=experiment.tune["trials"], timeout=experiment.tune["timeout"],
        settings=settings, seed=item.seed, show_progress=show_progress,
        final=FinalRun(item.directory, label=item.strategy.label, **described),
        restart=f"use another --output, or delete {tuning_dir(item.directory)} to start this search afresh",
        time_budget=budget, hooks=hooks,
    )  # fmt: skip
    return result.final_metrics
