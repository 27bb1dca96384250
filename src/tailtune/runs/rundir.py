"""The run directory: its file names and how each file is written; and the names in the folders that hold runs (a
tuning folder, an experiment's output). Finished runs are read back by :mod:`tailtune.runs.records`.

A run directory holds ``config.json`` (written when the run starts), ``history.jsonl`` (one line per logging
step or evaluation), ``predictions.csv``, a saved ``model/`` and ``metrics.json``, which is written last: a run
is complete exactly when it exists. Every file is replaced atomically, so a reader never sees half a file.

A run is built in a hidden staging folder beside its directory (``.NAME.partial``) and moved into place only
when complete, so an interrupted run never replaces or mixes with a finished one. What it replaces is always a
run of tailtune's (a folder holding its ``config.json``, or a failed run's ``failed.json``): any other folder that
is not empty is refused before training starts (:func:`check_run_folder`). While it trains, the process
holds an exclusive lock on ``.NAME.lock``: a second process refuses (``train``) or skips the run
(``compare``), and the operating system releases the lock of a killed process, so a stale claim never blocks.
This module never imports training code.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tailtune.errors import TailTuneError
from tailtune.fileio import (
    FolderKind,
    atomic_dir,
    atomic_path,
    check_output_folder,
    write_atomic,
    write_json,
    writing,
)
from tailtune.models.saved import MODEL_DIR, SAVED_MODEL

logger = logging.getLogger(__name__)
#: The (separator, label) pairs a predictions table has warned of in this process.
_WARNED_JOINED: set[tuple[str, str]] = set()

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
HISTORY_FILE = "history.jsonl"
TRAIN_TEXTS_FILE = "train_texts.npy"  # a 64-bit digest of each training text: evaluate tells them from new ones
FAILED_FILE = "failed.json"  # a run that stopped with an error (e.g. diverged); it has no metrics.json
DEFAULT_VARIANT = "default"
# A tuning folder (``tailtune tune``, or an experiment's run's :func:`tuning_dir`).
STUDY_FILE = "study.db"  # the Optuna study (SQLite) unless another storage is given
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.json"
BEST_DIR = "best"  # the final model's run directory
# Each trial's run directory (scores, history, predictions; no model). Hidden, so that a report of the
# tuning folder shows the final model, not every trial.
TRIALS_DIR = ".trials"
# An experiment's output folder (``tailtune compare``); CACHE_DIR is also a tuning folder's.
DATA_DIR = "data"  # OUT/<variant>/data/: a made variant's data files
DATA_INFO = "data.json"  # in DATA_DIR, written last: the settings the data was made with
CACHE_DIR = ".cache"  # feature caches shared by the runs
SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"
#: Run settings that do not change what a run learns: runs may differ in them and still be seeds of one setup.
NOT_LEARNED = ("cache_dir", "eval_batch_size", "logging_steps")


def is_complete(run_dir: str | Path) -> bool:
    """A run is complete exactly when its ``metrics.json`` exists."""
    return (Path(run_dir) / METRICS_FILE).is_file()


def tuning_dir(run_dir: str | Path) -> Path:
    """The hidden folder beside an experiment's run where the search that chose its budget lives."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.tuning"


class RunBusy(TailTuneError):
    """Another live process is writing this run directory."""


def _is_run_dir(path: Path) -> bool:
    """Whether ``path`` holds a run tailtune wrote: a run's ``config.json``, or the ``failed.json`` of a failed run."""
    if (path / CONFIG_FILE).is_file():
        return is_run_config(path / CONFIG_FILE)
    try:
        return "reason" in read_json(path / FAILED_FILE)
    except TailTuneError:
        return False


#: A run directory, as an output folder that only an earlier run is replaced in.
RUN_FOLDER = FolderKind("a tailtune run", "run", "choose another --output", _is_run_dir)


def check_run_folder(run_dir: str | Path, *, model: str | None = None, splits: Any = None) -> Path:
    """Refuse a run directory a run must not replace; call it before training.

    Fine: a missing or empty folder, or a run tailtune wrote (complete or not: :func:`tailtune.runs.train.train_run`
    decides whether a complete one may be replaced).

    Args:
        run_dir: The run directory.
        model: The model the run starts from, and ``splits`` (:class:`tailtune.data.Splits`) the data it reads:
            a local one inside ``run_dir`` would be deleted with it.

    Raises:
        TailTuneError: ``run_dir`` is a file, the current folder or one holding it, a folder holding the model
            or the data, or a folder holding anything but a run.
    """
    inputs: dict[str, str | None] = {"the model": model}
    for role in ("train", "eval", "test"):
        inputs[f"the {role} data"] = getattr(getattr(splits, role, None), "source", None)
    return check_output_folder(run_dir, RUN_FOLDER, inputs=inputs)


# ------------------------------------------------------------------------------------ claiming and staging


def staging_dir(run_dir: str | Path) -> Path:
    """The hidden folder where a run is built before it replaces ``run_dir``."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.partial"


def _once_in_place(path: Path) -> Path:
    """Where a file written into a run's staging folder will be once the run is moved into place."""
    folder = path.parent
    if folder.name.startswith(".") and folder.name.endswith(".partial"):
        return folder.parent / folder.name[1 : -len(".partial")] / path.name
    return path


def _aside_dir(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.old"


@contextlib.contextmanager
def claim(run_dir: str | Path) -> Iterator[Path]:
    """Hold the run's lock and yield a fresh staging folder to build it in.

    On entry, a run left half-published by a killed process is put back, and a killed process's staging
    folder is removed (holding the lock proves no live process uses it).

    Raises:
        RunBusy: Another live process holds the lock.
        TailTuneError: ``run_dir`` is not a folder a run may replace (:func:`check_run_folder`), or its parent
            folder cannot be written.
    """
    run_dir = check_run_folder(run_dir)
    lock_path = run_dir.parent / f".{run_dir.name}.lock"
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        handle = _lock(lock_path)
    except BlockingIOError:
        raise RunBusy(f"{run_dir}: another tailtune process is writing this run; wait for it or choose "
                      "another --output") from None  # fmt: skip
    except OSError as exc:
        raise TailTuneError(f"{run_dir}: cannot write there ({exc.strerror}); choose another --output") from None
    try:
        aside, staging = _aside_dir(run_dir), staging_dir(run_dir)
        if aside.is_dir() and not run_dir.exists():
            os.replace(aside, run_dir)  # killed between the two renames of publish()
        shutil.rmtree(aside, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            with writing(run_dir, staging=staging):  # a full disk, a read-only folder: one line naming the run
                yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # nothing, once published
    finally:
        lock_path.unlink(missing_ok=True)  # before unlocking: a waiting process then sees a new file
        handle.close()


def _lock(path: Path):
    """Open ``path`` and take an exclusive lock on it without waiting (BlockingIOError if taken).

    A holder deletes the file before it unlocks, so a lock taken on a file that is no longer at ``path`` is
    stale: try again on the new file.
    """
    while True:
        handle = open(path, "a+")  # noqa: SIM115 -- held open for the whole run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if path.exists() and os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except BaseException:
            handle.close()
            raise
        handle.close()


def publish(staging: str | Path, run_dir: str | Path) -> None:
    """Move a complete staged run into ``run_dir``, replacing the run there.

    Two renames: the old directory goes aside, the new one takes its place. A process killed between them
    leaves the old run aside, and :func:`claim` puts it back. ``run_dir`` is checked again first
    (:func:`check_run_folder`): files put there during training are not deleted either.
    """
    run_dir, aside = check_run_folder(run_dir), _aside_dir(Path(run_dir))
    if run_dir.exists():
        os.replace(run_dir, aside)
    os.replace(staging, run_dir)
    shutil.rmtree(aside, ignore_errors=True)


# --------------------------------------------------------------------------------------------- writing


def write_config(run_dir: str | Path, data: dict[str, Any]) -> Path:
    """Start a run: mark it incomplete and write its ``config.json``.

    A ``metrics.json`` left by an earlier run in the same folder is removed first, so the folder never
    looks complete while the new run is in progress.

    Args:
        run_dir: The run directory (created if needed).
        data: The run's record: resolved settings, stages, labels, training counts, data sources, versions.

    Returns:
        The path of ``config.json``.
    """
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).unlink(missing_ok=True)
    write_json(out / CONFIG_FILE, data)
    return out / CONFIG_FILE


def reset_history(run_dir: str | Path) -> None:
    """Empty ``history.jsonl`` (or create it empty)."""
    write_atomic(Path(run_dir) / HISTORY_FILE, "")


def append_history(run_dir: str | Path, entry: dict[str, Any]) -> None:
    """Append one JSON line to ``history.jsonl``.

    The line goes out in a single write in append mode: readers see whole lines, and the file is not
    rewritten at every logging step, which would cost time quadratic in the length of training.
    """
    with open(Path(run_dir) / HISTORY_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, allow_nan=False) + "\n")


def write_predictions(run_dir: str | Path, frame: pd.DataFrame) -> Path:
    """Write ``predictions.csv`` (columns ``text``, ``label``, ``predicted``, ``score``) atomically, warning once
    of a label that holds the separator its label-set cells are joined by (``frame.attrs["joined_by"]``)."""
    path = Path(run_dir) / PREDICTIONS_FILE
    separator, joined = frame.attrs.get("joined_by", (None, []))
    if joined and (separator, joined[0]) not in _WARNED_JOINED:  # once a process: tune writes one per trial
        _WARNED_JOINED.add((separator, joined[0]))
        logger.warning("%s: the label %r holds %r, which joins a text's labels in its cells, so they cannot be split "
                       "back into labels (rename the label to read them; the metrics and the model are not "
                       "affected, and predict writes lists to JSON lines and Parquet)", _once_in_place(path), joined[0],
                       separator)  # fmt: skip
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


@contextlib.contextmanager
def writing_model(run_dir: str | Path) -> Iterator[Path]:
    """Yield a temporary folder to save the model in; on success it becomes ``model/`` in one step."""
    with atomic_dir(Path(run_dir) / MODEL_DIR, SAVED_MODEL) as tmp:
        yield tmp


def write_metrics(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``metrics.json``: the last file of a run, whose existence marks the run complete."""
    path = Path(run_dir) / METRICS_FILE
    write_json(path, metrics)
    return path


def write_failure(run_dir: str | Path, reason: str) -> Path:
    """Record why a run failed (``failed.json``), so that summaries and reports can show it.

    The run stays incomplete: running the experiment again retries it, and a success replaces the record.
    """
    path = Path(run_dir) / FAILED_FILE
    write_json(path, {"reason": reason})
    return path


def find_failures(root: str | Path) -> list[dict[str, str]]:
    """The failed, still incomplete runs under ``root``: ``{"run": path relative to root, "reason": ...}``."""
    root = Path(root)
    failures = []
    for path in sorted(root.rglob(FAILED_FILE)):
        parts = path.relative_to(root).parts
        if is_complete(path.parent) or any(part.startswith(".") for part in parts):
            continue
        reason = json.loads(path.read_text(encoding="utf-8")).get("reason", "")
        failures.append({"run": str(path.parent.relative_to(root)), "reason": reason})
    return failures


def read_json(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise TailTuneError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except OSError as exc:
        raise TailTuneError(f"{path}: cannot read ({exc.strerror})") from exc
    if not isinstance(data, dict):
        raise TailTuneError(f"{path}: expected a JSON object")
    return data


def is_run_config(path: Path) -> bool:
    """Whether ``path`` is a tailtune config.json rather than, say, a Hugging Face model config."""
    try:
        data = read_json(path)
    except TailTuneError:
        # A broken file in a run's place is reported by load_run; anything else is not ours to judge.
        return path.parent.joinpath(METRICS_FILE).is_file()
    return "tailtune_version" in data or isinstance(data.get("run"), dict)


#: Names that moved to :mod:`tailtune.runs.records` (reading finished runs); ``from tailtune.runs.rundir import
#: load_run`` and the like keep working.
_MOVED_TO_RECORDS = ("RunRecord", "check_poolable", "config_differences", "find_runs", "load_run", "natural_key",
                     "no_runs_error", "require_runs", "scan_runs")  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_RECORDS:
        from tailtune.runs import records

        return getattr(records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
