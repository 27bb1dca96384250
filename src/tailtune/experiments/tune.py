"""``tailtune tune``: search strategies and their budgets on validation data with Optuna.

Every trial trains one strategy with sampled learning rates (one per stage), step budget and loss
parameters on the same validation split, and reports its per-epoch validation scores so that Optuna's
pruner can end hopeless trials early. The study lives in ``OUT/study.db`` (SQLite) unless ``storage`` names
another database, so re-running resumes it and several workers (on one machine or many) can share it.
Stage-1 feature caches are shared by all trials (``OUT/.cache``).

The first trial is the default strategy as ``tailtune train`` runs it. Trials are ranked by their validation
score, where one validation example's worth is a tie; among ties the defaults are kept, else the lowest
validation log loss (:func:`pick_best`), so a split on which every trial scores 1.0 keeps the defaults rather
than whichever trial ran first. When the search ends, the kept settings train the final model (as ``train``
does, a refit included where ``refit`` decides one) into ``OUT/best/``, a complete run directory;
``OUT/trials.csv`` and ``OUT/best.json`` (with ``kept_because``) describe the search.

A study records what its trials were scored on: the content fingerprints of the training and validation data
(:mod:`tailtune.data.fingerprint`) and of the pretrained model (:mod:`tailtune.models.fingerprint`: weights saved
again under the same path are another model), the strategies, the seed and every run setting that changes results. A
resumed search refuses to go on where any of them changed (trials scored on other data or settings are not
comparable with new ones), unless asked to start afresh (``fresh``). A study started before tailtune recorded
them is resumed with a logged warning: what its trials were scored on cannot be checked.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tailtune.config import DEFAULT_STRATEGY, RunConfig
from tailtune.data.fingerprint import changed_roles, describe_change, split_fingerprints
from tailtune.data.imbalance import class_counts
from tailtune.data.types import Splits
from tailtune.errors import TailTuneError, first_line
from tailtune.fileio import atomic_path, write_json, writing
from tailtune.metrics import present_macro_f1_of
from tailtune.models.family import family_of
from tailtune.models.fingerprint import model_changed, model_fingerprint
from tailtune.runs.records import config_differences
from tailtune.runs.rundir import (
    BEST_DIR,
    BEST_FILE,
    CACHE_DIR,
    NOT_LEARNED,
    STUDY_FILE,
    TRIALS_DIR,
    TRIALS_FILE,
    check_run_folder,
)
from tailtune.runs.train import train_run
from tailtune.settings import check_value
from tailtune.strategies import (
    DEFAULT_TUNE_STRATEGIES,
    DEFAULT_TUNE_TRIALS,
    STRATEGIES,
    build_run_config,
    setting_field,
)
from tailtune.training.fitting import refit_decision, validation_split
from tailtune.training.loop import StageHooks

logger = logging.getLogger(__name__)


class _EndingFailures(logging.Filter):
    """Drops optuna's report of a trial that raised a :class:`TailTuneError` (its traceback, then its value): the
    error ends the search, and the command prints it as its one line."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: str | None = None  # "Trial N failed with value", the report's second line, still to drop

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and isinstance(record.exc_info[1], TailTuneError):
            self.ended = message.split(" failed ", 1)[0] + " failed with value"
            return False
        if self.ended is not None and message.startswith(self.ended):
            self.ended = None
            return False
        return True


_ENDING_FAILURES = _EndingFailures()

DEFAULT_STRATEGIES = DEFAULT_TUNE_STRATEGIES  # declared with the strategies, where the command line reads it
STUDY_NAME = "tailtune"
#: How a refused resumption is told to start afresh, where ``tune`` runs from its command.
RESTART = "choose another --output (and --storage, if given), or pass --fresh to start afresh"


@dataclass
class TuneResult:
    """The outcome of a search: the best trial's settings and score, and the final run's metrics."""

    strategy: str
    settings: dict[str, Any]
    validation_score: float
    n_trials: int
    final_metrics: dict[str, Any]


@dataclass(frozen=True)
class FinalRun:
    """Where and under which names the search's final model is trained.

    Attributes:
        directory: Its run directory (default ``OUT/best``).
        variant: The data variant its ``config.json`` records (experiments); ``variant_info`` its parameters.
        label: The strategy name its config records (experiments name runs so); default the strategy's own.
    """

    directory: str | Path | None = None
    variant: str | None = None
    variant_info: dict[str, Any] | None = None
    label: str | None = None


def suggest_settings(trial, strategies: tuple[str, ...] | list[str], model: str) -> tuple[str, dict[str, Any]]:
    """Sample a strategy, then its settings from its family's search space
    (:meth:`~tailtune.models.family.ModelFamily.suggest`: for a fine-tuned transformer a learning rate per stage, the
    step budget and loss parameters; for a TF-IDF strategy its ``C``)."""
    strategy = trial.suggest_categorical("strategy", list(strategies))
    config = build_run_config(model, strategy)
    return strategy, family_of(config).suggest(trial, strategy, config.stages)


def pick_best(trials: list, tolerance: float) -> tuple[Any, str]:
    """The trial to keep, and why: the best validation score, where a score within ``tolerance`` of it is a tie.

    A small validation split often scores several trials alike (every one at 1.0 on an easy split). Among tied
    trials the defaults are kept where they ran (a search then never returns less than ``tailtune train``
    would on validation), else the one with the lowest validation log loss, which tells apart models whose
    labels score alike; a trial whose scores are no probabilities (a linear SVM's) has none and ranks after
    those that have one, then by trial number.
    """
    top = max(trial.value for trial in trials)
    tied = [trial for trial in trials if trial.value >= top - tolerance]
    defaults = [trial for trial in tied if trial.user_attrs.get("defaults")]
    if defaults:
        why = "the defaults" + (f", within {tolerance:.3g} of the best validation score" if len(tied) > 1 else "")
        return defaults[0], why
    if len(tied) == 1:
        return tied[0], "the best validation score"
    best = min(tied, key=lambda trial: (trial.user_attrs.get("log_loss", float("inf")), trial.number))
    return best, f"{len(tied)} trials within {tolerance:.3g} of the best validation score; the lowest log loss"


def tune(
    model: str | None,
    splits: Splits,
    output: str | Path,
    *,
    strategies: list[str] | None = None,
    trials: int | None = DEFAULT_TUNE_TRIALS,
    timeout: float | None = None,
    storage: str | None = None,
    settings: dict[str, Any] | None = None,
    seed: int = 42,
    show_progress: bool = True,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    final: FinalRun | None = None,
    fresh: bool = False,
    restart: str = RESTART,
    time_budget: float | str | None = None,
    hooks: Sequence[StageHooks] = (),
) -> TuneResult:
    """Search strategies and budgets on validation data, then train the best on all the data.

    Args:
        model: A resolved model folder or hub id (None where only TF-IDF strategies are searched).
        splits: Training data, optional eval data (else a split is carved from training) and test data (only
            reported for the final model, never used to choose).
        output: The tuning folder.
        strategies: Strategies to search over (default :data:`DEFAULT_STRATEGIES`).
        trials: Total number of finished trials the study should reach (None: until ``timeout``).
        timeout: Seconds this call may search (None: until ``trials``).
        storage: An Optuna storage URL shared by several workers (default ``sqlite:///OUT/study.db``).
        settings: Run settings shared by every trial (``max_length``, ``batch_size``, ...).
        seed: Seeds the sampler, the validation split and every trial's run.
        show_progress: Progress bars in each trial.
        on_trial: Receives one dict per finished trial (number, state, value, strategy, seconds).
        final: Where the final model's run directory goes and what it records (default ``OUT/best``).
        fresh: Delete the study already in the storage (and this folder's trials and final model) and start anew,
            rather than resume it.
        restart: The words a refused resumption ends with: how to start afresh.
        time_budget: Seconds (or ``"10m"``) for the whole search and the final run (:class:`TuneBudget`): trials
            start only while the search's share is left, each trains within what is left of it, and the final run
            gets the rest.
        hooks: Hear every trial's and the final run's stage loop (e.g. their plans, before each trains).

    Raises:
        TailTuneError: Bad arguments, or a study to resume that was started on other training or validation data,
            from other weights or ``config.json`` under the model's path, with other strategies, another seed or
            another setting that changes results (unless ``fresh``).
    """
    import optuna

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise TailTuneError("tune runs in one process; start several workers on one --storage instead")
    strategies = list(strategies or DEFAULT_STRATEGIES)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise TailTuneError(f"strategies: unknown {', '.join(unknown)}; valid: {', '.join(STRATEGIES)}",
                            setting="strategies")  # fmt: skip
    budget = None if time_budget is None else TuneBudget(check_value(setting_field("time_budget"), time_budget))
    if trials is None and timeout is None and budget is None:
        raise TailTuneError("give trials, timeout or both: the search needs a budget", setting="trials")
    out = Path(output)
    # The final run's folder is refused now, not after the search.
    check_run_folder((final or FinalRun()).directory or out / BEST_DIR, model=model, splits=splits)
    out.mkdir(parents=True, exist_ok=True)
    shared = {"seed": seed, "cache_dir": str(out / CACHE_DIR), **(settings or {})}
    # What the data decides (the token budget) is read from all the training texts once, by the first family that
    # reads a budget (refused before any trial where impossible), so that every trial and the final run read as many
    # tokens, whatever part of the data they train on.
    for strategy in strategies:
        config = build_run_config(model, strategy, settings=shared)
        resolved = family_of(config).prepare(config, splits.train.texts)
        if resolved.max_length is not None:
            shared["max_length"] = resolved.max_length
            break
    base = build_run_config(model, strategies[0], settings=shared)
    held = validation_split(base, splits)
    if held.validation is None:
        raise TailTuneError("tuning needs validation data: give eval data, or a positive eval_fraction and classes "
                            f"of at least {base.eval_min_class_count} training examples")  # fmt: skip
    search_splits = Splits(held.train, held.validation, None)  # test data never reaches the search
    if budget is not None:
        budget.scale_final(len(splits.train) / max(1, len(held.train)),
                           held.carved and refit_decision(base.refit, list(class_counts(splits.train.labels).values()))[
                               "done"])  # fmt: skip

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna.study._optimize").addFilter(_ENDING_FAILURES)  # once: the same filter
    storage = storage or f"sqlite:///{out / STUDY_FILE}"
    if fresh:
        _start_afresh(optuna, storage, out, final_dir=None if final is None else final.directory)
    record = {"data": split_fingerprints(splits, ("train", "eval")), "model_fingerprint": model_fingerprint(model),
              "strategies": strategies, "seed": seed, "settings": _recorded_settings(base)}  # fmt: skip
    with writing(out):  # the study's database: a full disk is one line naming the folder
        study = _open_study(optuna, storage, out, record, splits, restart)
    # The first trial is the default strategy as it is (else the first searched strategy's defaults).
    first = DEFAULT_STRATEGY if DEFAULT_STRATEGY in strategies else strategies[0]
    study.enqueue_trial({"strategy": first}, user_attrs={"defaults": True}, skip_if_exists=True)

    def objective(trial) -> float:
        if trial.user_attrs.get("defaults"):  # the strategy as train runs it, with the shared settings only
            strategy, chosen = trial.suggest_categorical("strategy", strategies), {"settings": {}, "stages": []}
        else:
            strategy, chosen = suggest_settings(trial, strategies, model)
        trial.set_user_attr("chosen", chosen)  # the final run reads it back, whatever the search space is then
        limit = {} if budget is None else {"time_budget": budget.for_trial()}
        config = build_run_config(model, strategy, settings={**shared, **chosen["settings"], "refit": False, **limit},
                                  stages=chosen["stages"])  # fmt: skip
        try:
            pruning = [_Pruning(trial, config)]
            metrics = train_run(config, search_splits, out / TRIALS_DIR / f"trial-{trial.number}", overwrite=True,
                                show_progress=show_progress, hooks=[*pruning, *hooks], save_model=False)  # fmt: skip
        finally:
            gc.collect()  # a pruned trial leaves its model behind; free it before the next one
        if budget is not None:
            budget.trial_done(metrics["wall_time_s"])
            if ((metrics.get("cost") or {}).get("budget") or {}).get("chosen") == "tfidf" and not config.classic:
                raise optuna.TrialPruned("the time budget left no room to fine-tune this trial's strategy")
        trial.set_user_attr("seconds", metrics["wall_time_s"])
        if (metrics.get("cost") or {}).get("estimate_s") is not None:
            trial.set_user_attr("estimate_s", metrics["cost"]["estimate_s"])
        if metrics.get("log_loss") is not None:
            trial.set_user_attr("log_loss", metrics["log_loss"])
        return _validation_score(metrics, config)

    def finished(study, trial) -> None:
        if on_trial is not None:
            on_trial({"number": trial.number, "state": trial.state.name, "value": trial.value,
                      "strategy": trial.params.get("strategy"), "seconds": trial.user_attrs.get("seconds"),
                      "estimate_s": trial.user_attrs.get("estimate_s")})  # fmt: skip

    callbacks = [finished]
    if budget is not None:
        callbacks.append(budget.stop_when_spent)
        timeout = budget.search_left() if timeout is None else min(timeout, budget.search_left())
    if trials is not None:
        # Counted over the shared study, so several workers stop together at the total.
        callbacks.insert(0, optuna.study.MaxTrialsCallback(trials, states=None))
    finished = [t for t in study.trials if t.state.is_finished()]  # the enqueued defaults trial waits
    if trials is None or len(finished) < trials:
        with writing(out):
            study.optimize(objective, timeout=timeout, callbacks=callbacks, catch=(RuntimeError,))
    write_trials(study, out / TRIALS_FILE)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
        reason = f"; the first failure: {failed[0].system_attrs.get('fail_reason', '?')}" if failed else ""
        raise TailTuneError(f"{out}: no trial completed ({len(failed)} failed{reason}); raise trials or timeout")
    # One validation example's worth of score is a tie, as in epoch selection.
    best, why = pick_best(completed, tolerance=max(0.01, 1.0 / len(held.validation)))
    logger.info("kept trial %d (%s): %s", best.number, best.params["strategy"], why)
    strategy, chosen = best.params["strategy"], best.user_attrs["chosen"]
    final = final or FinalRun()
    config = build_run_config(model, strategy, settings={**shared, **chosen["settings"]}, stages=chosen["stages"])
    if final.label is not None:
        config = dataclasses.replace(config, strategy=final.label)
    if budget is not None:
        config = config.replace(time_budget=budget.for_final())
    metrics = train_run(config, splits, final.directory or out / BEST_DIR, overwrite=True, show_progress=show_progress,
                        variant=final.variant, variant_info=final.variant_info, hooks=hooks)  # fmt: skip
    result = TuneResult(strategy, chosen, float(best.value), len(study.trials), metrics)
    write_json(out / BEST_FILE, {
        "strategy": strategy, "settings": chosen, "validation_score": result.validation_score,
        "select_metric": config.select_metric, "trial": best.number, "kept_because": why,
        "n_trials": len(study.trials),
        "validation_split": held.info, "final": {k: metrics.get(k) for k in ("split", "macro_f1", "micro_f1")},
        "time_budget": None if budget is None else budget.record(),
    })  # fmt: skip
    return result


class TuneBudget:
    """A time budget spent across a search and its final run.

    The final run is kept its share: until a trial has finished, half the budget; then the shortest trial's time,
    scaled to all the training data (and doubled where the final run refits). Trials start while time is left
    beyond that share and more than the shortest trial took, and each trains within what is left of the search;
    the final run gets whatever is left (its plan shrinks to fit it, :mod:`tailtune.training.cost`).

    Args:
        seconds: The budget.
        clock: The clock (``time.perf_counter``).
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.seconds, self.clock = seconds, clock
        self.deadline = clock() + seconds
        self.shortest: float | None = None
        self.scale = 1.0
        self.stopped: str | None = None

    def scale_final(self, data_ratio: float, refits: bool) -> None:
        """How much dearer the final run is than a trial: more training data, and perhaps a refit."""
        self.scale = data_ratio * (2 if refits else 1)

    def final_share(self) -> float:
        """Seconds kept for the final run."""
        return self.seconds / 2 if self.shortest is None else min(self.seconds / 2, self.shortest * self.scale)

    def search_left(self) -> float:
        """Seconds left for trials."""
        return max(0.0, self.deadline - self.clock() - self.final_share())

    def for_trial(self) -> float:
        """The time budget of the trial about to start: what is left of the search."""
        return max(1.0, self.search_left())

    def trial_done(self, seconds: float) -> None:
        """A trial took ``seconds``."""
        self.shortest = seconds if self.shortest is None else min(self.shortest, seconds)

    def stop_when_spent(self, study, trial) -> None:
        """An Optuna callback: stop the search when no further trial fits what is left of it."""
        left = self.search_left()
        if self.shortest is not None and left < self.shortest:
            self.stopped = (f"the search stopped after {len(study.trials)} trial(s): {left:.0f} s were left of it, the "
                            f"shortest trial took {self.shortest:.0f} s")  # fmt: skip
            logger.info("time budget: %s", self.stopped)
            study.stop()

    def for_final(self) -> float:
        """The final run's time budget: what is left."""
        return max(1.0, self.deadline - self.clock())

    def record(self) -> dict[str, Any]:
        """For ``best.json``."""
        return {"budget_s": self.seconds, "search_stopped": self.stopped}


def _recorded_settings(config: RunConfig) -> dict[str, Any]:
    """What a study records of the settings its trials share: every run setting that changes results (the model
    and the first strategy's stages included), as JSON reads it back; the seed and strategies go on their own."""
    settings = json.loads(json.dumps(config.to_dict()))
    return {k: v for k, v in settings.items() if k not in ("seed", "strategy", *NOT_LEARNED)}


def _start_afresh(optuna, storage: str, out: Path, *, final_dir: str | Path | None) -> None:
    """Delete the study in ``storage`` with the trials, ``trials.csv``, ``best.json`` and final model of ``out``
    (the final model only where it is ``OUT/best``: one given elsewhere is replaced when the search ends)."""
    try:
        optuna.delete_study(study_name=STUDY_NAME, storage=storage)
    except KeyError:
        pass  # no study there yet
    except (ImportError, ValueError, RuntimeError) as exc:
        raise TailTuneError(f"storage: cannot open {storage} ({first_line(exc)})", setting="storage") from None
    shutil.rmtree(out / TRIALS_DIR, ignore_errors=True)
    for name in (TRIALS_FILE, BEST_FILE):
        (out / name).unlink(missing_ok=True)
    if final_dir is None:
        shutil.rmtree(out / BEST_DIR, ignore_errors=True)  # a run of ours: check_run_folder allowed no other


def _open_study(optuna, storage: str, out: Path, record: dict[str, Any], splits: Splits, restart: str):
    """Create or resume the study; a resumed one must have been started on the same training and validation data,
    model content, strategies, seed and settings (``record``), else it is refused, its last words ``restart``."""
    try:
        study = optuna.create_study(
            study_name=STUDY_NAME, storage=storage, load_if_exists=True, direction="maximize",
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        )  # fmt: skip
    except (ImportError, ValueError, RuntimeError) as exc:
        raise TailTuneError(f"storage: cannot open {storage} ({first_line(exc)})", setting="storage") from None
    started = f"{out}: this search was started"
    stored = study.user_attrs.get("data")
    changed = changed_roles(stored, record["data"])
    if changed:
        raise TailTuneError(f"{started} on other data: {describe_change(changed[0], splits, stored)}; {restart}")
    if changed is None and study.trials:
        logger.warning("%s before tailtune recorded its data: whether its %d trial(s) were scored on the same data "
                       "cannot be checked", started, len(study.trials))  # fmt: skip
    model = record["settings"].get("model")
    if model_changed(study.user_attrs.get("model_fingerprint"), record["model_fingerprint"]):
        raise TailTuneError(f"{started} from another model: the weights or config.json now in {model} differ from "
                            f"those its trials were trained from; {restart}")  # fmt: skip
    if "model_fingerprint" not in study.user_attrs and study.trials and record["model_fingerprint"] != model:
        logger.warning("%s before tailtune recorded its model's content: whether its %d trial(s) were trained from the "
                       "weights now in %s cannot be checked", started, len(study.trials), model)  # fmt: skip
    for name in ("strategies", "seed"):
        if name in study.user_attrs and study.user_attrs[name] != record[name]:
            raise TailTuneError(f"{started} with {name} {study.user_attrs[name]}; give the same {name}, or {restart}",
                                setting=name)  # fmt: skip
    differences = config_differences(record["settings"], study.user_attrs.get("settings") or {})
    if differences:
        key, new, old = differences[0]
        raise TailTuneError(f"{started} with other settings ({key} {old!r}, now {new!r}); give the same, or {restart}")
    for name, value in record.items():
        if name not in study.user_attrs:
            study.set_user_attr(name, value)
    # Seeded by the trials already there: a resumed search or a second worker does not repeat the first's
    # draws; constant_liar keeps parallel workers from sampling the same point.
    study.sampler = optuna.samplers.TPESampler(seed=record["seed"] + len(study.trials), constant_liar=True)
    return study


class _Pruning(StageHooks):
    """Reports a trial's validation scores to Optuna as they are logged, and prunes a hopeless trial.

    Trials are compared on their last stage, evaluation by evaluation: earlier stages train other parts of the
    model and their scores are not comparable across strategies.
    """

    def __init__(self, trial, config: RunConfig) -> None:
        import optuna

        self.trial = trial
        self.pruned = optuna.TrialPruned
        # The last stage that trains in epochs (none for a model fitted in one go: nothing to report).
        self.last = max((i for i, stage in enumerate(config.stages) if getattr(stage, "epochs", 0)), default=None)
        self.key = f"validation_{config.select_metric}"
        self.evaluations = 0  # Optuna's steps are whole numbers; evaluations may fall within epochs

    def on_log(self, entry: dict[str, Any]) -> None:
        if self.key in entry and entry["stage"] == self.last and "phase" not in entry:
            self.evaluations += 1
            self.trial.report(entry[self.key], self.evaluations)
            if self.trial.should_prune():
                raise self.pruned()


def _validation_score(metrics: dict[str, Any], config: RunConfig) -> float:
    """The trial's validation score, as epoch selection measures it (macro-F1 over the classes validation holds:
    see :func:`tailtune.metrics.present_macro_f1`)."""
    evaluated = metrics.get("eval") or metrics
    metric = config.select_metric if config.select_metric != "none" else "macro_f1"
    if metric != "macro_f1":
        return float(evaluated[metric])
    return present_macro_f1_of(evaluated)


def write_trials(study, path: Path) -> None:
    """``trials.csv``: one row per trial with its state, score, strategy, parameters and time."""
    rows = [
        {"number": t.number, "state": t.state.name, "value": t.value, "seconds": t.user_attrs.get("seconds"),
         **{f"param.{k}": v for k, v in sorted(t.params.items())}}
        for t in study.trials
    ]  # fmt: skip
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
