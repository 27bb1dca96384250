"""Runs recorded and read back: :class:`ConfigRecord`, the typed ``config.json`` a run writes when it starts (and
the tests' run factory writes as it does); :class:`RunRecord`, the one typed view of a finished run directory's
``config.json`` and ``metrics.json`` that ``report``, ``compare``'s summary and ``tune`` read; how runs are found
under a folder, and which runs may be pooled as seeds of one setup (:func:`check_poolable`).

The files and how they are written are :mod:`tailtune.runs.rundir`'s.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailtune import __version__
from tailtune.data.fingerprint import short
from tailtune.errors import TailTuneError
from tailtune.models.family import Decisions
from tailtune.models.saved import MODEL_DIR
from tailtune.runs.rundir import (
    CONFIG_FILE,
    DEFAULT_VARIANT,
    METRICS_FILE,
    NOT_LEARNED,
    PREDICTIONS_FILE,
    TRAIN_TEXTS_FILE,
    is_run_config,
    read_json,
    tuning_dir,
    write_config,
)
from tailtune.task import DEFAULT_TASK

logger = logging.getLogger(__name__)

# Directories that never hold runs but can be large (a saved model) or hold a Hugging Face config.json
# that must not be mistaken for a run's.
_SKIP_DIRS = frozenset({MODEL_DIR, "checkpoints", "__pycache__", "report_files"})

# What runs on the same data share in config.json; "fingerprints" (by content, tailtune.data.fingerprint) is
# missing from runs written before tailtune recorded it, and then not compared.
_DATA_KEYS = ("data", "labels", "train_counts", "fingerprints", "variant_info")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class ConfigRecord:
    """A run's ``config.json``: what it trains on and with, written once when the run starts (:meth:`write`).

    Attributes:
        run: The run's settings as its family records them (for a fine-tuned model, the resolved
            :class:`~tailtune.config.RunConfig` as a dict, its stages included).
        task: What the labels are (:mod:`tailtune.task`).
        labels: Label names in class-id order.
        train_counts: Training examples per label name, of all the run's training data.
        data: Where each split came from (``train``, ``eval``, ``test``; None for a split not given).
        fingerprints: The splits' content fingerprints (:func:`tailtune.data.fingerprint.split_fingerprints`),
            which tell a file edited under the same path apart; None where not recorded (left out of the file, as
            by runs written before tailtune recorded them).
        model_fingerprint: The pretrained model's content fingerprint
            (:func:`tailtune.models.fingerprint.model_fingerprint`), which tells weights saved again under the same
            path apart; None for a run that starts from no pretrained model, or written before tailtune recorded it.
        variant: The data variant's name (experiments); None for none.
        variant_info: The variant's parameters (e.g. its imbalance ratio).
        versions: Versions of Python and the libraries that shape results.
        environment: Further keys: where and how the run trains (e.g. ``accelerate``), as its family says.
        tailtune_version: The tailtune that wrote the run.
        created: When the run started (UTC, ISO 8601).
    """

    run: dict[str, Any]
    task: str
    labels: list[str]
    train_counts: dict[str, int]
    data: dict[str, str | None]
    fingerprints: dict[str, Any] | None = None
    model_fingerprint: str | None = None
    variant: str | None = None
    variant_info: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    tailtune_version: str = __version__
    created: str = field(default_factory=_now)

    def to_json(self) -> dict[str, Any]:
        """The ``config.json`` object, its keys in the order runs have always written them."""
        record = {"tailtune_version": self.tailtune_version, "created": self.created, "versions": self.versions,
                  "run": self.run, "task": self.task, "labels": self.labels, "train_counts": self.train_counts,
                  "data": self.data, "fingerprints": self.fingerprints, "model_fingerprint": self.model_fingerprint,
                  "variant": self.variant, "variant_info": self.variant_info}  # fmt: skip
        for key in ("fingerprints", "model_fingerprint"):
            if record[key] is None:
                del record[key]
        return {**record, **self.environment}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConfigRecord:
        """The record of a ``config.json`` object; keys it does not name go to :attr:`environment`."""
        names = [name for name in cls.__dataclass_fields__ if name != "environment"]
        known = {name: data[name] for name in names if name in data}
        return cls(**known, environment={key: value for key, value in data.items() if key not in known})

    def write(self, run_dir: str | Path) -> Path:
        """Start the run in ``run_dir``: mark it incomplete and write ``config.json``
        (:func:`tailtune.runs.rundir.write_config`)."""
        return write_config(run_dir, self.to_json())


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
    ``config`` is what :meth:`ConfigRecord.to_json` wrote; it stays a dict, so that runs written by other tailtune
    versions, with keys missing or added, read back.
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
    def task(self) -> str:
        """What the run's labels are (:mod:`tailtune.task`); runs written before tasks were named are single-label."""
        return str(self.config.get("task") or DEFAULT_TASK)

    @property
    def decisions(self) -> Decisions:
        """What the run's fit decided on its data (the validation split, the epochs kept, a refit, the decision
        rule), as its family recorded them."""
        return Decisions.from_dict(self.metrics)

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
            A frame with columns ``text``, ``label``, ``predicted`` (strings) and ``score`` (float; NaN where the run
            wrote none: a multi-label run's cells hold label sets, whose one score there is none).

        Raises:
            TailTuneError: If the file is missing or lacks one of those columns.
        """
        if self._predictions is None:
            path = self.path / PREDICTIONS_FILE
            if not path.is_file():
                raise TailTuneError(f"{path}: missing (the run wrote no predictions)")
            # Labels and texts stay strings: a label called "NA" or "1" must not turn into NaN or an int.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            required = (
                ("text", "label", "predicted", "score") if self.task == DEFAULT_TASK else ("text", "label", "predicted")
            )
            missing = [col for col in required if col not in frame.columns]
            if missing:
                raise TailTuneError(f"{path}: missing column(s) {', '.join(missing)}")
            frame["score"] = pd.to_numeric(frame.get("score", pd.Series(float("nan"), index=frame.index)),
                                           errors="coerce")  # fmt: skip
            self._predictions = frame
        return self._predictions


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
    config = read_json(config_path)
    metrics = read_json(metrics_path)
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


def data_of_model(model_dir: str | Path) -> dict[str, Any] | None:
    """What the run that saved ``model_dir`` (``RUN/model``) trained and selected on: its ``config.json``'s ``data``
    (paths by role) and ``fingerprints`` (content, by role), whether it chose anything on given eval data
    (``selected_on_eval``: epochs or a decision rule), and the digests of its training texts (``train_texts``,
    :func:`tailtune.data.held_out.text_keys`; None where not recorded). None for a model outside a run directory
    or a run written before data was fingerprinted."""
    path = Path(model_dir)
    run = path.parent
    if path.name != MODEL_DIR or not (run / CONFIG_FILE).is_file() or not is_run_config(run / CONFIG_FILE):
        return None
    try:
        record = read_json(run / CONFIG_FILE)
        metrics = read_json(run / METRICS_FILE) if (run / METRICS_FILE).is_file() else {}
        texts = np.load(run / TRAIN_TEXTS_FILE) if (run / TRAIN_TEXTS_FILE).is_file() else None
    except (TailTuneError, OSError, ValueError):
        return None
    fingerprints = record.get("fingerprints")
    if not isinstance(fingerprints, dict):
        return None
    given = (metrics.get("validation_split") or {}).get("source") == "given"
    chose = bool(metrics.get("selection") or metrics.get("calibration"))
    return {"data": record.get("data") or {}, "fingerprints": fingerprints, "selected_on_eval": given and chose,
            "train_texts": texts}  # fmt: skip


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
        if CONFIG_FILE in filenames and is_run_config(current / CONFIG_FILE):
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
