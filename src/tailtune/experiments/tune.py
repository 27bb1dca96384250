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
(:mod:`tailtune.data.fingerprint`), the strategies, the seed and every run setting that changes results. A
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tailtune.config import DEFAULT_STRATEGY, RunConfig, TfidfStage
from tailtune.data.fingerprint import changed_roles, describe_change, split_fingerprints
from tailtune.data.types import Splits
from tailtune.errors import TailTuneError, first_line
from tailtune.fileio import atomic_path, write_json, writing
from tailtune.metrics import present_macro_f1_of
from tailtune.models.tfidf import suggest_stage
from tailtune.runs.rundir import (
    BEST_DIR,
    BEST_FILE,
    CACHE_DIR,
    NOT_LEARNED,
    STUDY_FILE,
    TRIALS_DIR,
    TRIALS_FILE,
    check_run_folder,
    config_differences,
)
from tailtune.runs.train import train_run
from tailtune.strategies import DEFAULT_TUNE_STRATEGIES, DEFAULT_TUNE_TRIALS, STRATEGIES, all_classic, build_run_config
from tailtune.training.fitting import resolve_max_length, validation_split
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
# Learning-rate ranges by what a stage trains: the top of the model takes larger steps than the whole.
LR_RANGES = {"all": (2e-5, 5e-4), "top": (1e-4, 1e-2), "head": (1e-3, 5e-2)}
MIN_STEPS = (50, 100, 200, 400)
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


def _lr_range(trainable: str) -> tuple[float, float]:
    return LR_RANGES["all" if trainable == "all" else "head" if trainable == "head" else "top"]


def suggest_settings(trial, strategies: tuple[str, ...] | list[str], model: str) -> tuple[str, dict[str, Any]]:
    """Sample a strategy and its budget: a learning rate per stage, the step budget, loss parameters (a TF-IDF
    strategy: its ``C``, :func:`tailtune.models.tfidf.suggest_stage`)."""
    strategy = trial.suggest_categorical("strategy", list(strategies))
    stages = build_run_config(model, strategy).stages
    if isinstance(stages[0], TfidfStage):
        return strategy, suggest_stage(trial, strategy)
    lrs = [
        trial.suggest_float(f"{strategy}.lr{i + 1}", *_lr_range(s.trainable), log=True) for i, s in enumerate(stages)
    ]
    settings: dict[str, Any] = {"lr": lrs}
    if any(s.trainable == "all" for s in stages):
        full = trial.suggest_categorical(f"{strategy}.min_steps", list(MIN_STEPS))
        settings["min_steps"] = [full if s.trainable == "all" else s.min_steps for s in stages]
    overrides: list[dict[str, Any]] = []
    for i, stage in enumerate(stages):
        params = {}
        if stage.loss == "ldam":
            params["max_margin"] = trial.suggest_float(f"{strategy}.margin{i + 1}", 0.1, 1.0)
        overrides.append({"loss_params": params} if params else {})
    return strategy, {"settings": settings, "stages": overrides}


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

    Raises:
        TailTuneError: Bad arguments, or a study to resume that was started on other training or validation data,
            with other strategies, another seed or another setting that changes results (unless ``fresh``).
    """
    import optuna

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise TailTuneError("tune runs in one process; start several workers on one --storage instead")
    strategies = list(strategies or DEFAULT_STRATEGIES)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise TailTuneError(f"strategies: unknown {', '.join(unknown)}; valid: {', '.join(STRATEGIES)}",
                            setting="strategies")  # fmt: skip
    if trials is None and timeout is None:
        raise TailTuneError("give trials, timeout or both: the search needs a budget", setting="trials")
    out = Path(output)
    # The final run's folder is refused now, not after the search.
    check_run_folder((final or FinalRun()).directory or out / BEST_DIR, model=model, splits=splits)
    out.mkdir(parents=True, exist_ok=True)
    shared = {"seed": seed, "cache_dir": str(out / CACHE_DIR), **(settings or {})}
    base = build_run_config(model, strategies[0], settings=shared)
    if not all_classic(strategies):
        # Read from all the training texts once (refused before any trial where impossible), so that every trial and
        # the final run read as many tokens, whatever part of the data they train on.
        base = resolve_max_length(base, splits.train.texts)
        shared["max_length"] = base.max_length
    held = validation_split(base, splits)
    if held.validation is None:
        raise TailTuneError("tuning needs validation data: give eval data, or a positive eval_fraction and classes "
                            f"of at least {base.eval_min_class_count} training examples")  # fmt: skip
    search_splits = Splits(held.train, held.validation, None)  # test data never reaches the search

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna.study._optimize").addFilter(_ENDING_FAILURES)  # once: the same filter
    storage = storage or f"sqlite:///{out / STUDY_FILE}"
    if fresh:
        _start_afresh(optuna, storage, out, final_dir=None if final is None else final.directory)
    record = {"data": split_fingerprints(splits, ("train", "eval")), "strategies": strategies, "seed": seed,
              "settings": _recorded_settings(base)}  # fmt: skip
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
        config = build_run_config(model, strategy, settings={**shared, **chosen["settings"], "refit": False},
                                  stages=chosen["stages"])  # fmt: skip
        try:
            metrics = train_run(config, search_splits, out / TRIALS_DIR / f"trial-{trial.number}", overwrite=True,
                                show_progress=show_progress, hooks=[] if config.classic else [_Pruning(trial, config)],
                                save_model=False)  # fmt: skip
        finally:
            gc.collect()  # a pruned trial leaves its model behind; free it before the next one
        trial.set_user_attr("seconds", metrics["wall_time_s"])
        if metrics.get("log_loss") is not None:
            trial.set_user_attr("log_loss", metrics["log_loss"])
        return _validation_score(metrics, config)

    def finished(study, trial) -> None:
        if on_trial is not None:
            on_trial({"number": trial.number, "state": trial.state.name, "value": trial.value,
                      "strategy": trial.params.get("strategy"),
                      "seconds": trial.user_attrs.get("seconds")})  # fmt: skip

    callbacks = [finished]
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
    metrics = train_run(config, splits, final.directory or out / BEST_DIR, overwrite=True, show_progress=show_progress,
                        variant=final.variant, variant_info=final.variant_info)  # fmt: skip
    result = TuneResult(strategy, chosen, float(best.value), len(study.trials), metrics)
    write_json(out / BEST_FILE, {
        "strategy": strategy, "settings": chosen, "validation_score": result.validation_score,
        "select_metric": config.select_metric, "trial": best.number, "kept_because": why,
        "n_trials": len(study.trials),
        "validation_split": held.info, "final": {k: metrics.get(k) for k in ("split", "macro_f1", "micro_f1")},
    })  # fmt: skip
    return result


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
    strategies, seed and settings (``record``), else it is refused, its last words ``restart``."""
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
        self.last = max(i for i, stage in enumerate(config.stages) if stage.epochs)
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
