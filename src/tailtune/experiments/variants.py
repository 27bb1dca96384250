"""The data of an experiment's variants: explicit files, or made from one source and cached under OUT.

A made variant is written once to ``OUT/<variant>/data/`` (Parquet files, ``counts.json``, and ``data.json``,
which records the settings and their hash, written last) and read back on later calls; changed settings
under an existing OUT are an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tailtune.data.builtin import load_data
from tailtune.data.fingerprint import changed_roles, fingerprint
from tailtune.data.held_out import warn_of_held_out
from tailtune.data.imbalance import ImbalancedSplit, class_counts, holdout_then_long_tail
from tailtune.data.readers import read_dataset
from tailtune.data.split_folder import write_imbalanced
from tailtune.data.types import Splits, TextDataset
from tailtune.errors import TailTuneError
from tailtune.experiments.checks import in_context
from tailtune.experiments.spec import Experiment
from tailtune.fileio import waiting_lock, write_json
from tailtune.runs.rundir import DATA_DIR, DATA_INFO
from tailtune.task import task_of

logger = logging.getLogger(__name__)


def prepare_data(experiment: Experiment, *, write: bool = True) -> dict[str, Splits]:
    """Load or make every variant's data and check its labels.

    Made variants are read from ``OUT/<variant>/data/`` when written before with the same settings; otherwise
    they are made from the source and, with ``write``, written there.

    Returns:
        The splits by variant name.

    Raises:
        TailTuneError: For unreadable data, impossible make settings, an unknown minority label, or data
            under OUT made with other settings.
    """
    loaded: dict[tuple[str, str, str, str | None], TextDataset] = {}

    def load(spec: str, text_column: str, label_column: str, label_separator: str | None = None) -> TextDataset:
        # The source is shared by every made variant: read it once.
        key = (spec, text_column, label_column, label_separator)
        if key not in loaded:
            loaded[key] = load_data(spec, text_column=text_column, label_column=label_column,
                                    label_separator=label_separator)  # fmt: skip
        return loaded[key]

    result = {}
    for variant in experiment.variants:
        with in_context(f"data variant {variant.name}"):
            if variant.make is None:
                files = variant.files
                splits = Splits(*(
                    None if files.get(role) is None
                    else load(files[role], variant.text_column, variant.label_column, variant.label_separator)
                    for role in ("train", "eval", "test")
                ))  # fmt: skip
                warn_of_held_out(splits)
            else:
                splits = _made_splits(experiment.output / variant.name / DATA_DIR, variant.make, load, write=write)
            task_of(splits.train).label_map(splits)  # labels every split agrees on, before anything trains
        result[variant.name] = splits
    return result


def _made_splits(folder: Path, settings: dict[str, Any], load: Callable, *, write: bool) -> Splits:
    """A made variant's data: read back from ``folder`` when made before with these settings, else made.

    The data is made in memory first (bad settings fail before anything is written), then written under a
    lock beside ``folder``: compare workers sharing an output write it once, and a worker that finds it
    written meanwhile reads it instead. ``data.json`` records the content fingerprints of the files it was made
    from, so data made from a source edited since is refused rather than silently reused.
    """
    sources = _source_fingerprints(settings, load)
    stored = _stored_splits(folder, settings, sources)
    if stored is not None:
        return stored
    split = _make(settings, load)
    if not write:
        return Splits(split.train, split.eval, split.test)
    with waiting_lock(folder.parent / f".{folder.name}.lock"):
        stored = _stored_splits(folder, settings, sources)
        if stored is not None:
            return stored
        # A split left by an interrupted write (data.json is written last) is replaced by write_imbalanced, which
        # refuses a folder holding anything else.
        write_imbalanced(split, folder, fmt_suffix=".parquet")
        write_json(folder / DATA_INFO, {"fingerprint": _fingerprint(settings), "settings": settings,
                                        "sources": sources})  # fmt: skip
    logger.info("data written to %s (train %s)", folder, counts_text(split.train))
    return _read_made(folder)


def _stored_splits(folder: Path, settings: dict[str, Any], sources: dict[str, str | None]) -> Splits | None:
    """The data written to ``folder`` before, None if there is none yet; an error if other settings made it, or
    files whose content has changed since (``sources``: their fingerprints now; data written before tailtune
    recorded them is not checked)."""
    info_path = folder / DATA_INFO
    if not info_path.is_file():
        return None
    try:
        stored = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    if stored.get("fingerprint") != _fingerprint(settings):
        old = stored.get("settings")
        if isinstance(old, dict):
            changed = "; ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in settings.items() if old.get(k) != v)
        else:
            changed = f"{DATA_INFO} unreadable"
        raise TailTuneError(
            f"{folder} was made with other settings ({changed}); use another --output, or delete that "
            "variant's folder to start it afresh"
        )
    changed_sources = changed_roles(stored.get("sources"), sources)
    if changed_sources:
        role = changed_sources[0]
        raise TailTuneError(
            f"{folder} was made from other data: the {role} data ({settings[role]}) has changed since; use another "
            "--output, or delete that variant's folder to start it afresh"
        )
    return _read_made(folder)


def _source_fingerprints(settings: dict[str, Any], load: Callable) -> dict[str, str | None]:
    """The content fingerprints of the files a made variant is made from: its source, and fixed test/eval data.

    Only local data (files, folders, ``builtin:``) is read for it: a hub dataset is not fetched again just to
    check that data made from it is current (None, as for a role not given).
    """
    columns = (settings["text_column"], settings["label_column"])
    return {role: fingerprint(load(settings[role], *columns)) if _is_local(settings.get(role)) else None
            for role in ("source", "test", "eval")}  # fmt: skip


def _is_local(spec: str | None) -> bool:
    """Whether a data spec names data on this machine (a file, a ``save_to_disk`` folder with its split, or
    built-in data) rather than a hub dataset."""
    if not spec:
        return False
    folder, colon, _ = spec.rpartition(":")
    return (
        spec.startswith("builtin:")
        or Path(spec).expanduser().exists()
        or bool(colon and folder and Path(folder).expanduser().is_dir())
    )


def _make(settings: dict[str, Any], load: Callable) -> ImbalancedSplit:
    """Make one variant: balanced test and validation sets held out from the source, and the imbalanced rest."""
    columns = (settings["text_column"], settings["label_column"])
    classes = settings.get("classes")
    source = _keep(load(settings["source"], *columns), classes, settings["source"])
    minority = settings.get("minority")
    if minority is not None and minority not in set(source.labels or []):
        labels = ", ".join(repr(x) for x in class_counts(source.labels or []))
        raise TailTuneError(f"data.make.minority {minority!r} is not a label of {settings['source']} ({labels})")
    if "ratio" in settings:
        recipe = {k: settings[k] for k in ("ratio", "profile", "max_per_class", "order")}
    else:
        recipe = {"minority": minority, "rate": settings["rate"]}
    split = holdout_then_long_tail(
        source, test_per_class=settings["test_per_class"], eval_per_class=settings["eval_per_class"],
        seed=settings["seed"], **recipe,
    )  # fmt: skip
    if settings["test"]:
        split.test = _keep(load(settings["test"], *columns), classes, settings["test"])
    if settings["eval"]:
        split.eval = _keep(load(settings["eval"], *columns), classes, settings["eval"])
    split.counts.update({
        "test": class_counts(split.test.labels) if split.test is not None else None,
        "eval": class_counts(split.eval.labels) if split.eval is not None else None,
        "test_per_class": settings["test_per_class"] or None,
        "eval_per_class": settings["eval_per_class"] or None,
        "test_source": settings["test"],
        "eval_source": settings["eval"],
    })  # fmt: skip
    return split


def _keep(dataset: TextDataset, classes: list[str] | None, spec: str) -> TextDataset:
    """The examples of ``dataset`` labelled with one of ``classes`` (all of them when ``classes`` is None)."""
    if classes is None:
        return dataset
    labels = dataset.labels or []
    counts = class_counts(labels)
    missing = [name for name in classes if name not in counts]
    if missing:
        found = ", ".join(repr(x) for x in counts)
        raise TailTuneError(f"data.classes: {', '.join(map(repr, missing))} not a label of {spec} ({found})")
    wanted = set(classes)
    return dataset.subset(np.flatnonzero([label in wanted for label in labels]))


def _read_made(folder: Path) -> Splits:
    def read(role: str) -> TextDataset | None:
        path = folder / f"{role}.parquet"
        return read_dataset(path) if path.is_file() else None

    train = read("train")
    if train is None:
        raise TailTuneError(f"{folder}: train.parquet is missing; delete {folder} to make the data again")
    return Splits(train, read("eval"), read("test"))


def _fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def counts_text(dataset: TextDataset) -> str:
    """Examples per class, largest first: ``tech 8, money 5, sport 4``."""
    return ", ".join(f"{name} {n}" for name, n in class_counts(dataset.labels or []).items())
