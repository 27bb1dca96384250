"""A run directory: one model trained by :func:`tailtune.training.fitting.fit` (a TF-IDF strategy's by
:mod:`tailtune.models.tfidf`), evaluated, and written to disk.

:func:`train_run` claims the folder, then writes ``config.json``, ``history.jsonl`` (each entry as training logs
it), ``predictions.csv``, ``model/`` with its card, and last ``metrics.json``, which marks the run complete.
How each file is written is :mod:`tailtune.runs.rundir`'s business; the method itself is
:mod:`tailtune.training.fitting`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import platform
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from tailtune import __version__
from tailtune.config import RunConfig
from tailtune.data.fingerprint import split_fingerprints
from tailtune.data.types import LabelMap, Splits, check_labels
from tailtune.errors import TailTuneError
from tailtune.models import tfidf as classic
from tailtune.models.transformer import save_classifier
from tailtune.runs import rundir
from tailtune.runs.modelcard import write_model_card
from tailtune.runs.tracking import RunTracker, check_tracker, open_tracker
from tailtune.training.fitting import FitContext, evaluate_split, fit, resolve_max_length
from tailtune.training.loop import StageHooks, make_accelerator
from tailtune.training.precision import auto_decision

# Splits, check_labels and resolve_max_length are imported from here by scripts and other modules.
__all__ = ["HistoryWriter", "Splits", "check_labels", "library_versions", "resolve_max_length", "train_run"]

logger = logging.getLogger(__name__)

_LIBRARIES = ("torch", "transformers", "accelerate", "scikit-learn", "numpy", "pandas", "tokenizers")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape results."""
    versions = {"python": platform.python_version(), "tailtune": __version__}
    for name in _LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class HistoryWriter(StageHooks):
    """Appends every history entry to the run's ``history.jsonl`` and hands it to its tracker.

    Only the main process writes: the others hear the same events and keep quiet.
    """

    def __init__(self, out: Path, tracker: RunTracker | None, *, main: bool) -> None:
        self.out, self.tracker, self.main = out, tracker, main

    def on_log(self, entry: dict[str, Any]) -> None:
        if not self.main:
            return
        rundir.append_history(self.out, entry)
        if self.tracker is not None:
            self.tracker.log_history(entry)


def train_run(
    config: RunConfig,
    splits: Splits,
    output_dir: str | Path,
    *,
    variant: str | None = None,
    variant_info: dict[str, Any] | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    hooks: Sequence[StageHooks] = (),
    save_model: bool = True,
) -> dict[str, Any]:
    """Train one model and write a complete run directory.

    Args:
        config: Model, stages and shared settings.
        splits: Training data, and optional eval and test data. The final metrics come from the test split
            (else the eval split); eval scores are also logged to ``history.jsonl`` after every stage.
        output_dir: The run directory.
        variant: Name of the data variant (experiments); ``variant_info`` its parameters (e.g. the ratio).
        overwrite: Replace a complete run already in ``output_dir``.
        show_progress: Progress bars.
        hooks: Hear the stage loop's events after the history is written, every ``history.jsonl`` entry
            included (``on_log``), e.g. to prune a tuning trial.
        save_model: Write ``model/`` (tuning trials only need their scores).

    Returns:
        The content of ``metrics.json``.
    """
    started = time.perf_counter()
    final = rundir.check_run_folder(output_dir, model=config.model, splits=splits)  # only a run of ours is replaced
    if rundir.is_complete(final) and not overwrite:
        raise TailTuneError(f"{final}: already holds a complete run; choose another --output or pass --overwrite")
    label_map = check_labels(splits)
    check_tracker(config.report_to)
    if config.classic:  # a TF-IDF + linear model (tailtune.models.tfidf): no transformer, so no accelerator
        ctx, accelerator, main = None, None, int(os.environ.get("RANK", "0")) == 0
    else:
        config = resolve_max_length(config, splits.train.texts)  # what config.json, the model and every encoding use
        accelerator = make_accelerator(config)
        ctx = FitContext.of(config, splits.train, label_map, accelerator, show_progress=show_progress)
        main = accelerator.is_main_process
    # Only the main process writes; it builds the run in a staging folder and moves it into place once complete.
    with rundir.claim(final) if main else contextlib.nullcontext(final) as out:
        if rundir.is_complete(final) and not overwrite:  # finished by another process since the check above
            raise rundir.RunBusy(f"{final}: another process has just completed this run")
        name = "/".join(str(part) for part in (variant, config.strategy, f"seed-{config.seed}") if part)
        settings = classic.run_settings(config) if ctx is None else config.to_dict()  # the stages included, once
        tracker = open_tracker(config.report_to, Path(out), name, settings) if main else None
        with tracker or contextlib.nullcontext():
            history = HistoryWriter(Path(out), tracker, main=main)
            record = _record(settings, label_map, splits, variant, variant_info)
            if ctx is None:
                metrics = classic.train_into(config, splits, label_map, Path(out), record=record,
                                             hooks=[history, *hooks], save_model=save_model, main=main)  # fmt: skip
            else:
                metrics = _train_into(ctx, splits, Path(out), record=record, hooks=[history, *hooks],
                                      save_model=save_model)  # fmt: skip
            if tracker is not None:
                tracker.log_final(metrics)
        metrics["wall_time_s"] = round(time.perf_counter() - started, 2)
        if main:
            rundir.write_metrics(out, metrics)  # last: marks the run complete
            rundir.publish(out, final)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return metrics


def _record(run: dict[str, Any], label_map: LabelMap, splits: Splits, variant: str | None,
            variant_info: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """What every run's ``config.json`` holds: versions, settings, labels, training counts, data and its fingerprints,
    variant."""
    return {
        "tailtune_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "run": run,
        "labels": label_map.labels,
        "train_counts": dict(zip(label_map.labels, label_map.counts(splits.train), strict=True)),
        "data": {name: (part.source if part is not None else None)
                 for name, part in (("train", splits.train), ("eval", splits.eval), ("test", splits.test))},
        "fingerprints": split_fingerprints(splits),  # by content: tells a file edited under the same path apart
        "variant": variant,
        "variant_info": variant_info or {},
    }  # fmt: skip


def _train_into(ctx: FitContext, splits: Splits, out: Path, *, record: dict[str, Any], hooks: Sequence[StageHooks],
                save_model: bool) -> dict[str, Any]:  # fmt: skip
    """Train and write every file of the run but ``metrics.json`` into ``out``; return the metrics."""
    config, label_map, accelerator = ctx.config, ctx.label_map, ctx.accelerator
    main = accelerator.is_main_process
    if main:
        rundir.write_config(out, {
            **record,
            "accelerate": {"num_processes": accelerator.num_processes,
                           "mixed_precision": accelerator.mixed_precision, "device": str(accelerator.device),
                           "mixed_precision_reason": _precision_reason(config)},
        })  # fmt: skip
        rundir.reset_history(out)
    accelerator.wait_for_everyone()

    fitted = fit(ctx, splits, hooks=hooks)
    ctx = dataclasses.replace(ctx, config=fitted.config)  # as the fit decided: the final model is read so
    config = ctx.config
    metrics: dict[str, Any] = {"split": None}
    target = splits.test if splits.test is not None else splits.eval
    if target is not None:
        evaluation = evaluate_split(ctx, fitted.model, fitted.tokenizer, target, show_progress=ctx.show_progress)
        metrics = evaluation.metrics
        metrics["split"] = "test" if splits.test is not None else "eval"
        if main:
            rundir.write_predictions(out, evaluation.predictions)
    if splits.test is not None and splits.eval is not None:
        metrics["eval"] = evaluate_split(ctx, fitted.model, fitted.tokenizer, splits.eval).metrics
    metrics["stages"] = [vars(s) for s in fitted.stages]
    metrics.update(fitted.summary())
    if main and save_model:
        with rundir.writing_model(out) as tmp:
            save_classifier(fitted.model, fitted.tokenizer, tmp)
            write_model_card(tmp, config, label_map.labels, ctx.train_counts, metrics, data_source=splits.train.source,
                             scored_on=None if target is None else target.source)  # fmt: skip
    return metrics


def _precision_reason(config: RunConfig) -> str:
    """Why the run trains at its precision, for ``config.json``."""
    if config.mixed_precision != "auto":
        return f"mixed_precision {config.mixed_precision} given"
    return "auto: " + auto_decision("cuda" if torch.cuda.is_available() else "cpu")[1]  # as make_accelerator
