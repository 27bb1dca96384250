"""The run directory: its file names, how each file is written, and how finished runs are read back; and the names
in the folders that hold runs (a tuning folder, an experiment's output).

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
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tailtune.data.fingerprint import short
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

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
HISTORY_FILE = "history.jsonl"
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
# What runs on the same data share in config.json; "fingerprints" (by content, tailtune.data.fingerprint) is
# missing from runs written before tailtune recorded it, and then not compared.
_DATA_KEYS = ("data", "labels", "train_counts", "fingerprints", "variant_info")

# Directories that never hold runs but can be large (a saved model) or hold a Hugging Face config.json
# that must not be mistaken for a run's.
_SKIP_DIRS = frozenset({MODEL_DIR, "checkpoints", "__pycache__", "report_files"})


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
        return _is_run_config(path / CONFIG_FILE)
    try:
        return "reason" in _read_json(path / FAILED_FILE)
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
    """Write ``predictions.csv`` (columns ``text``, ``label``, ``predicted``, ``score``) atomically."""
    path = Path(run_dir) / PREDICTIONS_FILE
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


# --------------------------------------------------------------------------------------------- reading


@dataclass
class RunRecord:
    """One complete run, as read from its directory.

    Attributes:
        path: The run directory.
        config: The parsed ``config.json``.
        metrics: The parsed ``metrics.json``.
        variant: The data variant (``config["variant"]``, or ``"default"`` when null).
        strategy: The fine-tuning strategy (``config["run"]["strategy"]``).
        seed: The random seed (``config["run"]["seed"]``).

    ``config["run"]`` is the run's :class:`~tailtune.config.RunConfig` as a dict, its stages included. Runs
    written before tailtune stored the stages once also repeat them as ``config["stages"]``, which is not read.
    """

    path: Path
    config: dict
    metrics: dict
    variant: str
    strategy: str
    seed: int
    _predictions: pd.DataFrame | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def labels(self) -> list[str]:
        """Label names in id order."""
        return [str(name) for name in self.config.get("labels") or []]

    @property
    def stages(self) -> list[dict[str, Any]]:
        """The run's stages as recorded (``config["run"]["stages"]``)."""
        return [s for s in (self.config.get("run") or {}).get("stages") or [] if isinstance(s, dict)]

    @property
    def ratio(self) -> int | float | None:
        """The imbalance ratio of the run's variant, when the variant records one."""
        value = (self.config.get("variant_info") or {}).get("ratio")
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def fingerprinted(self) -> bool:
        """Whether the run recorded its data's content fingerprints (runs written before tailtune did have none)."""
        return isinstance(self.config.get("fingerprints"), dict)

    @property
    def tuned(self) -> bool:
        """Whether a search chose the run's stage budgets (an experiment with ``tune``), so seeds differ in them."""
        return tuning_dir(self.path).is_dir()

    def setup(self) -> dict[str, Any]:
        """What seeds of one strategy share: everything recorded in ``config.json`` that shapes the result.

        The data sources, labels, training counts, the data's content fingerprints (where recorded: see
        :attr:`fingerprinted`) and variant parameters, and the resolved run settings and stages but the seed and
        the settings in :data:`NOT_LEARNED`; a tuned run's stages are left out too.
        """
        config = self.config
        run = {k: v for k, v in (config.get("run") or {}).items() if k not in ("seed", "stages", *NOT_LEARNED)}
        setup = {key: config.get(key) for key in _DATA_KEYS if key != "fingerprints" or self.fingerprinted}
        setup["run"] = run
        if not self.tuned:
            setup["stages"] = self.stages
        return setup

    @property
    def train_counts(self) -> dict[str, int]:
        """Training examples per class, in label-id order."""
        counts = self.config.get("train_counts") or {}
        if counts:
            return {name: int(counts.get(name, 0)) for name in self.labels} if self.labels else dict(counts)
        # Older or hand-written configs may lack train_counts; metrics.json repeats them per class.
        per_class = self.metrics.get("per_class") or {}
        return {name: int(row.get("train_count") or 0) for name, row in per_class.items()}

    def predictions(self) -> pd.DataFrame:
        """Read ``predictions.csv`` (once; later calls reuse the frame).

        Returns:
            A frame with columns ``text``, ``label``, ``predicted`` (strings) and ``score`` (float).

        Raises:
            TailTuneError: If the file is missing or lacks one of those columns.
        """
        if self._predictions is None:
            path = self.path / PREDICTIONS_FILE
            if not path.is_file():
                raise TailTuneError(f"{path}: missing (the run wrote no predictions)")
            # Labels and texts stay strings: a label called "NA" or "1" must not turn into NaN or an int.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            missing = [col for col in ("text", "label", "predicted", "score") if col not in frame.columns]
            if missing:
                raise TailTuneError(f"{path}: missing column(s) {', '.join(missing)}")
            frame["score"] = pd.to_numeric(frame["score"], errors="coerce")
            self._predictions = frame
        return self._predictions


def _read_json(path: Path) -> dict:
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


def _is_run_config(path: Path) -> bool:
    """Whether ``path`` is a tailtune config.json rather than, say, a Hugging Face model config."""
    try:
        data = _read_json(path)
    except TailTuneError:
        # A broken file in a run's place is reported by load_run; anything else is not ours to judge.
        return path.parent.joinpath(METRICS_FILE).is_file()
    return "tailtune_version" in data or isinstance(data.get("run"), dict)


def load_run(path: str | Path) -> RunRecord:
    """Load one complete run directory.

    Args:
        path: The run directory (the folder holding ``config.json`` and ``metrics.json``).

    Returns:
        The run's record.

    Raises:
        TailTuneError: If a file is missing or malformed, or the run is incomplete (no ``metrics.json``).
    """
    run_dir = Path(path)
    config_path = run_dir / CONFIG_FILE
    metrics_path = run_dir / METRICS_FILE
    if not config_path.is_file():
        raise TailTuneError(f"{run_dir}: not a run directory (no {CONFIG_FILE})")
    if not metrics_path.is_file():
        raise TailTuneError(f"{run_dir}: incomplete run (no {METRICS_FILE}; it is written when the run ends)")
    config = _read_json(config_path)
    metrics = _read_json(metrics_path)
    run = config.get("run")
    if not isinstance(run, dict) or "strategy" not in run or "seed" not in run:
        raise TailTuneError(f"{config_path}: missing run.strategy or run.seed")
    try:
        seed = int(run["seed"])
    except (TypeError, ValueError) as exc:
        raise TailTuneError(f"{config_path}: run.seed must be an integer, got {run['seed']!r}") from exc
    variant = config.get("variant")
    return RunRecord(
        path=run_dir,
        config=config,
        metrics=metrics,
        variant=DEFAULT_VARIANT if variant in (None, "") else str(variant),
        strategy=str(run["strategy"]),
        seed=seed,
    )


def scan_runs(root: str | Path) -> tuple[list[RunRecord], list[Path]]:
    """Walk ``root`` for run directories.

    Args:
        root: A run directory, or any folder above run directories.

    Returns:
        The complete runs sorted by (variant, strategy, seed), and the incomplete run directories (those
        with a ``config.json`` but no ``metrics.json`` yet), sorted.

    Raises:
        TailTuneError: If ``root`` is not a directory, or a complete run's files are malformed.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise TailTuneError(f"{root_path}: no such directory")
    complete: list[RunRecord] = []
    incomplete: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root_path):
        current = Path(dirpath)
        if CONFIG_FILE in filenames and _is_run_config(current / CONFIG_FILE):
            # A run directory never contains other runs; not descending also skips the saved model.
            dirnames[:] = []
            if METRICS_FILE in filenames:
                complete.append(load_run(current))
            else:
                incomplete.append(current)
            continue
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
    complete.sort(key=lambda r: (r.variant, r.strategy, r.seed, str(r.path)))
    return complete, sorted(incomplete)


def find_runs(root: str | Path) -> list[RunRecord]:
    """Find the complete runs under ``root``; incomplete ones are skipped with a logged warning.

    Args:
        root: A run directory, or any folder above run directories (an experiment, a demo folder).

    Returns:
        The complete runs, sorted by (variant, strategy, seed). Empty when there are none.

    Raises:
        TailTuneError: If ``root`` is not a directory, or a complete run's files are malformed.
    """
    runs, incomplete = scan_runs(root)
    if incomplete:
        logger.warning(
            "Skipped %d incomplete run(s) under %s (no %s yet), e.g. %s",
            len(incomplete),
            root,
            METRICS_FILE,
            incomplete[0],
        )
    return runs


def no_runs_error(root: str | Path) -> TailTuneError:
    """The error for a root without complete runs (shared so every command words it the same)."""
    return TailTuneError(f"{root}: no complete runs (a run is complete once its {METRICS_FILE} exists)")


def require_runs(root: str | Path) -> list[RunRecord]:
    """Like :func:`find_runs`, but an empty result is a user error.

    Raises:
        TailTuneError: If ``root`` holds no complete run.
    """
    runs = find_runs(root)
    if not runs:
        raise no_runs_error(root)
    return runs


def config_differences(a: Any, b: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """Where two recorded configs (or parts of them) differ: ``(key path, value in a, value in b)`` each.

    A key missing on either side is not compared, so that a run written by another tailtune version stays
    comparable. Folders move, and runs trained after a move record the new place, so two paths compare by
    their last parts, which identify them well enough: a key named ``model`` by two (a new virtualenv for
    builtin:minilm), a data source (``data.train``, ``data.eval``, ``data.test``) by three when both are
    absolute paths (an experiment's made data, ``OUT/<variant>/data/train.parquet``, when OUT moves).
    """
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            difference
            for key in a
            if key in b
            for difference in config_differences(a[key], b[key], f"{where}.{key}" if where else str(key))
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            difference
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for difference in config_differences(x, y, f"{where}[{i}]")
        ]
    if where.rsplit(".", 1)[-1] == "model" and isinstance(a, str) and isinstance(b, str):
        return [] if Path(a).parts[-2:] == Path(b).parts[-2:] else [(where, a, b)]
    if where.startswith("data.") and all(isinstance(p, str) and os.path.isabs(p) for p in (a, b)):
        return [] if Path(a).parts[-3:] == Path(b).parts[-3:] else [(where, a, b)]
    return [] if a == b else [(where, a, b)]


def check_poolable(runs: list[RunRecord]) -> None:
    """Refuse runs that a summary or report would pool as if they were related.

    A summary compares the strategies of one variant, so the runs of a variant must share their data: data
    sources, labels, training counts, the data's content (its fingerprints, which tell apart a file edited in
    place, even reshuffled with the same labels and counts) and variant parameters. It averages the runs of one
    (variant, strategy) as seeds of one setup, so those must also share every setting and stage
    (:meth:`RunRecord.setup`), each with its own seed.

    A run written before tailtune recorded fingerprints is pooled by the rest (sources, labels, counts) with a
    logged warning: whether its data's content matches cannot be known.

    Args:
        runs: Complete runs, e.g. from :func:`find_runs`.

    Raises:
        TailTuneError: Naming two of the runs, the first key that differs between them (or the seed they
            share), and what to do.
    """
    unknown = [run for run in runs if not run.fingerprinted]
    if unknown and len(runs) > 1:
        logger.warning("%d run(s) predate data fingerprints (e.g. %s): pooled where their data sources, labels and "
                       "training counts match, but whether their data's content changed cannot be checked",
                       len(unknown), unknown[0].path)  # fmt: skip
    groups: dict[str, list[RunRecord]] = {}
    for run in sorted(runs, key=lambda r: (r.seed, str(r.path))):
        groups.setdefault(run.variant, []).append(run)
    hint = ("put unrelated runs in separate folders and report each, or run them as one experiment with distinct "
            "variant names or strategy labels")  # fmt: skip
    for variant, members in groups.items():
        for run in members[1:]:
            _refuse_differences(members[0], run, _DATA_KEYS, f"runs of variant {variant}", hint)
        first: dict[str, RunRecord] = {}
        seen: dict[tuple[str, int], RunRecord] = {}
        for run in members:
            if (run.strategy, run.seed) in seen:
                raise TailTuneError(f"{seen[(run.strategy, run.seed)].path} and {run.path} are both seed {run.seed} "
                                    f"of {variant}/{run.strategy}; a seed counts once, so {hint}")  # fmt: skip
            seen[(run.strategy, run.seed)] = run
            base = first.setdefault(run.strategy, run)
            _refuse_differences(base, run, None, f"seeds of {variant}/{run.strategy}", hint)


def _refuse_differences(a: RunRecord, b: RunRecord, keys: tuple[str, ...] | None, what: str, hint: str) -> None:
    """Raise when the setups of ``a`` and ``b`` (only ``keys`` of them, if given) differ."""
    ours, theirs = a.setup(), b.setup()
    if keys is not None:
        ours, theirs = {k: ours[k] for k in keys if k in ours}, {k: theirs[k] for k in keys if k in theirs}
    differences = config_differences(ours, theirs)
    if differences:
        key, x, y = differences[0]
        if key.startswith("fingerprints."):
            role = key.split(".", 1)[1]
            raise TailTuneError(f"{a.path} and {b.path} cannot be pooled as {what}: they were trained on different "
                                f"{role} data ({_source(a, role)}, content {short(x)} vs {short(y)}); "
                                f"{hint}")  # fmt: skip
        raise TailTuneError(f"{a.path} and {b.path} cannot be pooled as {what}: they differ in {key} "
                            f"({_short(x)} vs {_short(y)}); {hint}")  # fmt: skip


def _source(run: RunRecord, role: str) -> str:
    """Where a run's ``role`` data came from, as recorded."""
    source = (run.config.get("data") or {}).get(role)
    return str(source) if source else f"no {role} data"


def _short(value: Any, limit: int = 80) -> str:
    """JSON text of a value, its middle cut out when long (the ends of a path tell two apart)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit // 2 - 1] + "…" + text[-(limit // 2) :]


def natural_key(text: str) -> list[Any]:
    """Sort key that orders embedded numbers by value, so ``exp-10`` comes before ``exp-100``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]
