"""A run directory: one model trained by its family (:mod:`tailtune.models.family`), evaluated, and written to disk.

:func:`train_run` claims the folder, then writes ``config.json``, ``history.jsonl`` (each entry as training logs
it), ``predictions.csv``, ``model/`` with its card, and last ``metrics.json``, which marks the run complete.
How each file is written is :mod:`tailtune.runs.rundir`'s business; the method itself is the family's (for
fine-tuned transformers :func:`tailtune.training.fitting.fit`). Nothing here asks which family it runs.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from tailtune import __version__
from tailtune.config import RunConfig
from tailtune.data.fingerprint import split_fingerprints
from tailtune.data.held_out import text_keys
from tailtune.data.types import LabelMap, Splits, TextDataset
from tailtune.errors import TailTuneError
from tailtune.models.family import Trained, evaluate, family_of
from tailtune.models.fingerprint import model_fingerprint
from tailtune.runs import rundir
from tailtune.runs.records import ConfigRecord
from tailtune.runs.tracking import RunTracker, check_tracker, open_tracker
from tailtune.task import Task, task_of
from tailtune.training.loop import StageHooks

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
    task = task_of(splits.train)  # the labels' shape: one per text, or a set
    label_map = task.label_map(splits)
    check_tracker(config.report_to)
    family = family_of(config)
    # What config.json, the model and every encoding use: the task's losses, the length the texts call for.
    config = family.prepare(task.prepare(config), splits.train.texts)
    session = family.start(config, splits, label_map, show_progress=show_progress)
    main = session.main
    # Only the main process writes; it builds the run in a staging folder and moves it into place once complete.
    with rundir.claim(final) if main else contextlib.nullcontext(final) as out:
        if rundir.is_complete(final) and not overwrite:  # finished by another process since the check above
            raise rundir.RunBusy(f"{final}: another process has just completed this run")
        name = "/".join(str(part) for part in (variant, config.strategy, f"seed-{config.seed}") if part)
        settings = session.run_settings()  # the stages included, once
        tracker = open_tracker(config.report_to, Path(out), name, settings) if main else None
        with tracker or contextlib.nullcontext():
            history = HistoryWriter(Path(out), tracker, main=main)
            if main:
                model = model_fingerprint(config.model) if family.uses_model else None
                _record(settings, task, label_map, splits, variant, variant_info, session.environment(),
                        model).write(out)  # fmt: skip
                np.save(Path(out) / rundir.TRAIN_TEXTS_FILE, np.unique(text_keys(splits.train.texts)))
                rundir.reset_history(out)
            session.wait()
            result = session.fit(splits, hooks=[history, *hooks])
            target = splits.test if splits.test is not None else splits.eval  # the split the metrics come from
            metrics = _scores(result.classifier, splits, target, Path(out) if main else None)
            metrics["stages"] = result.stages
            metrics.update(result.decisions.to_dict())
            if main and save_model:
                with rundir.writing_model(out) as tmp:
                    result.classifier.save(tmp, config=result.config, scores=metrics, data_source=splits.train.source,
                                           scored_on=None if target is None else target.source)  # fmt: skip
            if tracker is not None:
                tracker.log_final(metrics)
        metrics["wall_time_s"] = round(time.perf_counter() - started, 2)
        if metrics.get("cost"):  # the estimate made before training, beside the time the whole run took
            metrics["cost"]["actual_s"] = metrics["wall_time_s"]
        if main:
            rundir.write_metrics(out, metrics)  # last: marks the run complete
            rundir.publish(out, final)
    session.wait()
    return metrics


def _scores(classifier: Trained, splits: Splits, target: TextDataset | None, out: Path | None) -> dict[str, Any]:
    """The run's metrics: the ``target`` split's (the test split, else the eval split), whose predictions are
    written into ``out`` (None: by another process), and with both the eval split's under ``eval``."""
    metrics: dict[str, Any] = {"split": None}
    if target is not None:
        metrics, predictions = evaluate(classifier, target)
        metrics["split"] = "test" if splits.test is not None else "eval"
        if out is not None:
            rundir.write_predictions(out, predictions)
    if splits.test is not None and splits.eval is not None:
        metrics["eval"] = evaluate(classifier, splits.eval)[0]
    return metrics


def _record(run: dict[str, Any], task: Task, label_map: LabelMap, splits: Splits, variant: str | None,
            variant_info: dict[str, Any] | None, environment: dict[str, Any], model: str | None = None
            ) -> ConfigRecord:  # fmt: skip
    """What the run's ``config.json`` holds: settings, the task, labels, training counts, data and its
    fingerprints, the pretrained model's fingerprint (``model``), variant, versions and where it trains."""
    return ConfigRecord(
        run=run,
        task=task.name,
        labels=label_map.labels,
        train_counts=dict(zip(label_map.labels, label_map.counts(splits.train), strict=True)),
        data={name: (part.source if part is not None else None)
              for name, part in (("train", splits.train), ("eval", splits.eval), ("test", splits.test))},
        fingerprints=split_fingerprints(splits),  # by content: tells a file edited under the same path apart
        model_fingerprint=model,  # likewise weights saved again under the same path
        variant=variant,
        variant_info=variant_info or {},
        versions=library_versions(),
        environment=environment,
    )  # fmt: skip
