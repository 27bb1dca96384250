"""``tailtune compare``: every (data variant, strategy, seed) of a YAML experiment, resumable.

The experiment file (every key is checked before anything trains; an unknown key is an error)::

    output: runs/bbc-lt          # the output folder OUT; --output overrides it
    model: builtin:minilm        # a local folder, a hub id, or builtin:minilm (the embedded all-MiniLM-L6-v2)
    seeds: [1, 2, 3]             # one run per seed and (variant, strategy)
    baseline: vanilla            # strategy the summary compares with (default vanilla, else the first listed)
    run: {max_length: 128, batch_size: 16}   # shared RunConfig fields (all but model, strategy, stages, seed)
    strategies:
      - vanilla                                   # a strategy with its default stages
      - two-stage: {epochs: 2, lr: [1e-3, 1e-4]}  # stage shortcuts: one value, or one per stage
      - name: lp-ft                               # the explicit form
        label: lp-ft-fast                         # optional: the run folder and summary name (default: name)
        stages: [{lr: 1e-3}, {}]                  # per-stage overrides by position ('custom': full stages)
    data:                                         # either explicit files, one variant each ...
      variants:
        - {name: my-data, train: train.csv, eval: val.csv, test: test.csv,
           text_column: text, label_column: label, ratio: 20}   # eval or test needed; ratio is optional
    data:                                         # ... or one source made imbalanced several ways
      source: builtin:bbc-news     # a file, a hub spec, builtin:bbc-news or builtin:bbc-headlines
      text_column: text            # columns of the source (and of test/eval)
      label_column: label
      test: null                   # a fixed test set, instead of make.test_per_class
      eval: null                   # a fixed validation set, instead of make.eval_per_class
      make:                        # a long tail over all classes: variants ratio-10, ratio-50, ...
        ratios: [10, 50, 100]
        profile: exp               # exp or step
        max_per_class: 300         # size of the head class (default: the smallest class)
        order: null                # classes head first (default: ranked by seed)
        test_per_class: 60         # balanced test set held out before downsampling
        eval_per_class: 0          # balanced validation set held out before downsampling
        seed: 0
      # or the binary recipe, variants rate-0.1, ...: make: {minority: negative, rates: [0.1, 0.3], seed: 0}

Paths are relative to the working directory. Strategy labels and variant names become folder names.

Each run goes to ``OUT/<variant>/<strategy>/seed-<k>/`` (see :mod:`tailtune.run`). Made data is written once
to ``OUT/<variant>/data/`` (Parquet files, ``counts.json`` and ``data.json``, which records the settings and
their hash) and read back on later calls; changed settings under an existing OUT are an error, as is a
complete run whose recorded settings differ from the config. Complete runs are skipped, incomplete ones are
redone, and stage-1 frozen features are cached in ``OUT/.cache`` for every seed and strategy that can share
them. At the end ``OUT/summary.csv`` and ``OUT/summary.json`` are written and a table is printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailtune.builtin import BUILTIN_DATA, load_data, resolve_model
from tailtune.config import RunConfig, StageConfig, load_yaml
from tailtune.data import TextDataset, _resolve_spec, load_dataset, save_dataset
from tailtune.errors import TailTuneError
from tailtune.fileio import write_json
from tailtune.imbalance import (
    PROFILES,
    ImbalancedSplit,
    balanced_holdout,
    class_counts,
    make_imbalanced,
    write_imbalanced,
)
from tailtune.run import Splits, check_labels, is_complete, train_run
from tailtune.rundir import load_run
from tailtune.strategies import RUN_SETTINGS, STAGE_SHORTCUTS, build_run_config
from tailtune.summary import format_table, write_summary

logger = logging.getLogger(__name__)

DATA_DIR = "data"
DATA_INFO = "data.json"
CACHE_DIR = ".cache"
INTERRUPTED = 130

_TOP_KEYS = ("output", "model", "seeds", "baseline", "run", "strategies", "data")
_RUN_KEYS = tuple(f for f in RUN_SETTINGS if f != "seed")
_STRATEGY_KEYS = ("name", "label", "stages", *STAGE_SHORTCUTS)
_VARIANT_KEYS = ("name", "train", "eval", "test", "text_column", "label_column", "ratio")
_SOURCE_KEYS = ("source", "text_column", "label_column", "test", "eval", "make")
_MAKE_KEYS = ("ratios", "profile", "max_per_class", "order", "minority", "rates", "test_per_class",
              "eval_per_class", "seed")  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
# Run settings that do not change what a run learns; a complete run may differ in them and still count.
_NOT_COMPARED = ("cache_dir", "eval_batch_size", "logging_steps")


@dataclass
class Strategy:
    """One strategy of an experiment.

    Attributes:
        label: Folder and summary name (the strategy name unless the config gives a ``label``).
        name: The strategy the stages start from.
        stages: The resolved stages.
        overrides: The entry's per-stage override mappings, if any.
        options: The entry's stage shortcuts (``lr``, ``epochs``, ...).
    """

    label: str
    name: str
    stages: list[StageConfig]
    overrides: list[dict[str, Any]] | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Variant:
    """One data variant of an experiment.

    Attributes:
        name: Folder name, e.g. ``ratio-50``.
        info: Recorded as ``variant_info`` in every run (e.g. ``{"ratio": 50, "profile": "exp"}``).
        files: Explicit variants: data specs by role (``train``, ``eval``, ``test``).
        text_column: Text column of the explicit files.
        label_column: Label column of the explicit files.
        make: Made variants: every setting the data depends on (source, recipe, holdouts, seed); these are
            hashed into ``data.json``.
    """

    name: str
    info: dict[str, Any]
    files: dict[str, str | None] = field(default_factory=dict)
    text_column: str = "text"
    label_column: str = "label"
    make: dict[str, Any] | None = None


@dataclass
class PlannedRun:
    """One (variant, strategy, seed) of the plan and its run directory."""

    variant: Variant
    strategy: Strategy
    seed: int
    directory: Path


@dataclass
class Experiment:
    """A validated experiment config.

    Attributes:
        path: The YAML file.
        output: The output folder OUT.
        model: The model folder or hub id (``builtin:minilm`` resolved to its folder).
        seeds: Run seeds, in config order.
        baseline: Label of the strategy the summary compares with.
        run: Shared :class:`~tailtune.config.RunConfig` settings.
        strategies: The strategies, in config order.
        variants: The data variants, in config order.
    """

    path: Path
    output: Path
    model: str
    seeds: list[int]
    baseline: str
    run: dict[str, Any]
    strategies: list[Strategy]
    variants: list[Variant]

    def run_config(self, strategy: Strategy, seed: int) -> RunConfig:
        """The run config of one strategy and seed (feature caches shared under ``OUT/.cache``)."""
        settings = {"cache_dir": str(self.output / CACHE_DIR), **self.run, **strategy.options, "seed": seed}
        config = build_run_config(self.model, strategy.name, settings=settings, stages=strategy.overrides)
        # Runs of an experiment are named by the entry's label, which may differ from the strategy's name.
        return dataclasses.replace(config, strategy=strategy.label)

    def plan(self) -> list[PlannedRun]:
        """Every (variant, strategy, seed), variant by variant, in config order."""
        return [
            PlannedRun(variant, strategy, seed, self.output / variant.name / strategy.label / f"seed-{seed}")
            for variant in self.variants
            for strategy in self.strategies
            for seed in self.seeds
        ]


# ------------------------------------------------------------------------------------------- parsing


def load_experiment(path: str | Path, *, output: str | Path | None = None) -> Experiment:
    """Read and validate an experiment YAML file; nothing is loaded or trained.

    Args:
        path: The experiment file.
        output: Output folder; overrides the file's ``output``.

    Raises:
        TailTuneError: For any bad key or value, naming the file and the key.
    """
    path = Path(path)
    data = load_yaml(path)
    with _context(str(path)):
        return _parse(data, path, output)


def _parse(data: dict[str, Any], path: Path, output: str | Path | None) -> Experiment:
    _check_keys(data, _TOP_KEYS, "")
    for key in ("model", "seeds", "strategies", "data"):
        if data.get(key) in (None, "", []):
            raise TailTuneError(f"'{key}' is required")
    output = output if output is not None else data.get("output")
    if not output:
        raise TailTuneError("no output folder; add 'output: DIR' or pass --output")
    if Path(output).is_file():
        raise TailTuneError(f"output {output} is a file, not a folder")
    model = resolve_model(_text(data["model"], "model"))
    seeds = _parse_seeds(data["seeds"])
    run = _mapping(data.get("run"), "run")
    _check_keys(run, _RUN_KEYS, "run")
    with _context("run"):
        build_run_config(model, "vanilla", settings=run)  # validates the values once, up front
    items = data["strategies"]
    if not isinstance(items, list):
        raise TailTuneError("strategies must be a list")
    strategies = [_parse_strategy(item, f"strategies[{i}]") for i, item in enumerate(items)]
    _unique([s.label for s in strategies], "strategy label", "give one a different 'label'")
    labels = [s.label for s in strategies]
    baseline = data.get("baseline")
    if baseline is None:
        baseline = "vanilla" if "vanilla" in labels else labels[0]
    elif baseline not in labels:
        raise TailTuneError(f"baseline {baseline!r} is not one of the strategies ({', '.join(labels)})")
    variants = _parse_data(_mapping(data["data"], "data"))
    return Experiment(path, Path(output), model, seeds, baseline, run, strategies, variants)


def _parse_seeds(value: Any) -> list[int]:
    items = value if isinstance(value, list) else [value]
    seeds = [_number(item, f"seeds[{i}]", int) for i, item in enumerate(items)]
    for i, seed in enumerate(seeds):
        if seed < 0:
            raise TailTuneError(f"seeds[{i}] must be >= 0, got {seed}")
    _unique([str(s) for s in seeds], "seed", "list each seed once")
    return seeds


def _parse_strategy(item: Any, where: str) -> Strategy:
    if isinstance(item, str):
        name, options = item, {}
    elif isinstance(item, dict) and "name" in item:
        options = dict(item)
        name = options.pop("name")
    elif isinstance(item, dict) and len(item) == 1:
        name, options = next(iter(item.items()))
        options = _mapping(options, f"{where}.{name}")
    else:
        raise TailTuneError(f"{where} must be a strategy name, 'NAME: {{options}}' or a mapping with a 'name'")
    name = _text(name, f"{where}.name")
    _check_keys(options, _STRATEGY_KEYS[1:], where)
    label = _folder_name(options.pop("label", name), f"{where}.label")
    if label == DATA_DIR:
        raise TailTuneError(f"{where}: '{DATA_DIR}' is reserved for made data; give the strategy another 'label'")
    stages = options.pop("stages", None)
    if stages is not None and not isinstance(stages, list):
        raise TailTuneError(f"{where}.stages must be a list with one mapping per stage")
    with _context(where):
        resolved = build_run_config("model", name, settings=options, stages=stages).stages
    return Strategy(label, name, resolved, stages, options)


def _parse_data(data: dict[str, Any]) -> list[Variant]:
    if "variants" in data:
        extra = sorted(set(data) - {"variants"})
        if extra:
            raise TailTuneError(f"data: give either 'variants' or 'source' with 'make', not both ({', '.join(extra)})")
        return _parse_variants(data["variants"])
    _check_keys(data, ("variants", *_SOURCE_KEYS), "data")
    if "source" not in data or "make" not in data:
        raise TailTuneError("data needs either 'variants' (explicit files) or 'source' and 'make'")
    return _parse_made(data)


def _parse_variants(items: Any) -> list[Variant]:
    if not isinstance(items, list) or not items:
        raise TailTuneError("data.variants must be a non-empty list")
    variants = []
    for i, item in enumerate(items):
        where = f"data.variants[{i}]"
        item = _mapping(item, where)
        _check_keys(item, _VARIANT_KEYS, where)
        for key in ("name", "train"):
            if not item.get(key):
                raise TailTuneError(f"{where}.{key} is required")
        if not (item.get("test") or item.get("eval")):
            raise TailTuneError(f"{where}: give a 'test' (or 'eval') file; the comparison needs scores")
        files = {role: _data_spec(item.get(role), f"{where}.{role}") for role in ("train", "eval", "test")}
        info = {}
        if item.get("ratio") is not None:
            info["ratio"] = _at_least_one(item["ratio"], f"{where}.ratio")
        variants.append(Variant(
            name=_folder_name(item["name"], f"{where}.name"), info=info, files=files,
            text_column=_text(item.get("text_column", "text"), f"{where}.text_column"),
            label_column=_text(item.get("label_column", "label"), f"{where}.label_column"),
        ))  # fmt: skip
    _unique([v.name for v in variants], "variant name", "give each variant its own name")
    return variants


def _parse_made(data: dict[str, Any]) -> list[Variant]:
    make = _mapping(data["make"], "data.make")
    _check_keys(make, _MAKE_KEYS, "data.make")
    base: dict[str, Any] = {
        "source": _data_spec(data["source"], "data.source"),
        "text_column": _text(data.get("text_column", "text"), "data.text_column"),
        "label_column": _text(data.get("label_column", "label"), "data.label_column"),
        "test": _data_spec(data.get("test"), "data.test"),
        "eval": _data_spec(data.get("eval"), "data.eval"),
        "test_per_class": _optional_int(make.get("test_per_class"), "data.make.test_per_class", 1),
        "eval_per_class": _optional_int(make.get("eval_per_class"), "data.make.eval_per_class", 0) or 0,
        "seed": _optional_int(make.get("seed"), "data.make.seed", 0) or 0,
    }
    if base["test"] and base["test_per_class"]:
        raise TailTuneError("data.test and data.make.test_per_class both give a test set; keep one")
    if not (base["test"] or base["test_per_class"]):
        raise TailTuneError("no test set; set data.make.test_per_class (held out from the source) or data.test")
    if base["eval"] and base["eval_per_class"]:
        raise TailTuneError("data.eval and data.make.eval_per_class both give a validation set; keep one")

    if ("ratios" in make) == ("rates" in make or "minority" in make):
        raise TailTuneError("data.make needs either 'ratios' (long tail) or 'minority' with 'rates' (binary)")
    if "ratios" in make:
        profile = make.get("profile", "exp")
        if profile not in PROFILES:
            raise TailTuneError(f"data.make.profile: unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        order = make.get("order")
        if order is not None and not (isinstance(order, list) and order):
            raise TailTuneError("data.make.order must be a list of labels, head class first")
        recipe = {
            "profile": profile,
            "max_per_class": _optional_int(make.get("max_per_class"), "data.make.max_per_class", 1),
            "order": None if order is None else [str(x) for x in order],
        }
        values = [_at_least_one(r, f"data.make.ratios[{i}]") for i, r in enumerate(_listed(make["ratios"]))]
        variants = [
            Variant(f"ratio-{r:g}", {"ratio": r, "profile": profile}, make={**base, **recipe, "ratio": r})
            for r in values
        ]
        _unique([v.name for v in variants], "ratio in data.make.ratios", "list each ratio once")
        return variants
    for key in ("profile", "max_per_class", "order"):
        if key in make:
            raise TailTuneError(f"data.make.{key} applies to 'ratios' only, not to the binary recipe")
    if make.get("minority") is None or "rates" not in make:
        raise TailTuneError("data.make: the binary recipe needs both 'minority' and 'rates'")
    minority = str(make["minority"])
    variants = []
    for i, value in enumerate(_listed(make["rates"])):
        rate = _plain(_number(value, f"data.make.rates[{i}]"))
        if not 0 < rate <= 1:
            raise TailTuneError(f"data.make.rates[{i}] must be in (0, 1], got {rate}")
        # The nominal majority/minority ratio, so that reports can order and plot binary variants too.
        info = {"rate": rate, "minority": minority, "ratio": _plain(round(1 / rate, 2))}
        variants.append(Variant(f"rate-{rate:g}", info, make={**base, "minority": minority, "rate": rate}))
    _unique([v.name for v in variants], "rate in data.make.rates", "list each rate once")
    return variants


def _data_spec(value: Any, where: str) -> str | None:
    if value is None:
        return None
    spec = _text(value, where)
    if spec.startswith("builtin:"):
        if spec not in BUILTIN_DATA:
            raise TailTuneError(f"{where}: unknown built-in data {spec!r}; valid: {', '.join(BUILTIN_DATA)}")
        return spec
    try:
        _resolve_spec(spec)  # a missing local file fails here; a hub spec is only checked when loaded
    except TailTuneError:
        raise TailTuneError(f"{where}: file not found: {spec}") from None
    return spec


# Small value checkers; each names the key in its message.


def _check_keys(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [str(k) for k in data if k not in allowed]
    if unknown:
        names = ", ".join(f"{where}.{k}" if where else k for k in unknown)
        raise TailTuneError(f"unknown key{'s' if len(unknown) > 1 else ''} {names}; valid: {', '.join(allowed)}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TailTuneError(f"{where} must be a mapping, got {type(value).__name__}")
    return dict(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TailTuneError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _folder_name(value: Any, where: str) -> str:
    name = _text(value, where)
    if not _NAME.match(name):
        raise TailTuneError(f"{where} {name!r} must be usable as a folder name (letters, digits, . _ + -)")
    return name


def _number(value: Any, where: str, kind: type = float) -> Any:
    # YAML reads 1e-3 as a string, so numeric strings are accepted.
    try:
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number) or (kind is int and not number.is_integer()):
        raise TailTuneError(f"{where} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    return int(number) if kind is int else number


def _optional_int(value: Any, where: str, minimum: int) -> int | None:
    if value is None:
        return None
    number = _number(value, where, int)
    if number < minimum:
        raise TailTuneError(f"{where} must be >= {minimum}, got {number}")
    return number


def _at_least_one(value: Any, where: str) -> int | float:
    number = _plain(_number(value, where))
    if number < 1:
        raise TailTuneError(f"{where} must be >= 1, got {number}")
    return number


def _plain(number: float) -> int | float:
    """``10.0`` -> ``10``, so that names, JSON and hashes show whole numbers as integers."""
    return int(number) if float(number).is_integer() else number


def _listed(value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise TailTuneError("data.make: the list of ratios or rates is empty")
    return items


def _unique(names: list[str], what: str, hint: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise TailTuneError(f"{what} {name!r} appears twice; {hint}")
        seen.add(name)


@contextlib.contextmanager
def _context(where: str) -> Iterator[None]:
    """Prefix the message of a TailTuneError raised inside with ``where``."""
    try:
        yield
    except TailTuneError as exc:
        raise TailTuneError(f"{where}: {exc}") from None


# ---------------------------------------------------------------------------------------------- data


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
    loaded: dict[tuple[str, str, str], TextDataset] = {}

    def load(spec: str, text_column: str, label_column: str) -> TextDataset:
        # The source is shared by every made variant: read it once.
        key = (spec, text_column, label_column)
        if key not in loaded:
            loaded[key] = load_data(spec, text_column=text_column, label_column=label_column)
        return loaded[key]

    result = {}
    for variant in experiment.variants:
        with _context(f"data variant {variant.name}"):
            if variant.make is None:
                files = variant.files
                splits = Splits(*(
                    None if files.get(role) is None else load(files[role], variant.text_column, variant.label_column)
                    for role in ("train", "eval", "test")
                ))  # fmt: skip
            else:
                splits = _made_splits(experiment.output / variant.name / DATA_DIR, variant.make, load, write=write)
            check_labels(splits)
        result[variant.name] = splits
    return result


def _made_splits(folder: Path, settings: dict[str, Any], load: Callable, *, write: bool) -> Splits:
    fingerprint = _fingerprint(settings)
    info_path = folder / DATA_INFO
    if info_path.is_file():
        try:
            stored = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        if stored.get("fingerprint") != fingerprint:
            old = stored.get("settings")
            if isinstance(old, dict):
                changed = "; ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in settings.items() if old.get(k) != v)
            else:
                changed = f"{DATA_INFO} unreadable"
            raise TailTuneError(
                f"{folder} was made with other settings ({changed}); use another --output, or delete that "
                "variant's folder to start it afresh"
            )
        return _read_made(folder)
    split, evaluation = _make(settings, load)
    if not write:
        return Splits(split.train, evaluation, split.test)
    if folder.exists():
        shutil.rmtree(folder)  # left by an interrupted write: data.json is written last
    write_imbalanced(split, folder, fmt_suffix=".parquet")
    if evaluation is not None:
        save_dataset(evaluation, folder / "eval.parquet")
    write_json(info_path, {"fingerprint": fingerprint, "settings": settings})
    logger.info("data written to %s (train %s)", folder, _counts_text(split.train))
    return _read_made(folder)


def _make(settings: dict[str, Any], load: Callable) -> tuple[ImbalancedSplit, TextDataset | None]:
    """Make one variant: a balanced holdout (test, then validation) and the imbalanced rest."""
    columns = (settings["text_column"], settings["label_column"])
    source = load(settings["source"], *columns)
    minority = settings.get("minority")
    if minority is not None and minority not in set(source.labels or []):
        labels = ", ".join(repr(x) for x in class_counts(source.labels or []))
        raise TailTuneError(f"data.make.minority {minority!r} is not a label of {settings['source']} ({labels})")
    per_test, per_eval, seed = settings["test_per_class"] or 0, settings["eval_per_class"], settings["seed"]
    if "ratio" in settings:
        recipe = {k: settings[k] for k in ("ratio", "profile", "max_per_class", "order")}
    else:
        recipe = {"minority": minority, "rate": settings["rate"]}
    # One balanced holdout of test + validation examples per class, split in two below, keeps both out of
    # the training pool and de-duplicated against it.
    split = make_imbalanced(source, test_per_class=(per_test + per_eval) or None, seed=seed, **recipe)
    evaluation = None
    if per_eval and per_test:
        eval_idx, test_idx = balanced_holdout(split.test.labels, per_class=per_eval, seed=seed + 1)
        evaluation, split.test = split.test.subset(eval_idx), split.test.subset(test_idx)
    elif per_eval:
        evaluation, split.test = split.test, None
    if settings["test"]:
        split.test = load(settings["test"], *columns)
    if settings["eval"]:
        evaluation = load(settings["eval"], *columns)
    split.counts.update({
        "test": class_counts(split.test.labels) if split.test is not None else None,
        "eval": class_counts(evaluation.labels) if evaluation is not None else None,
        "test_per_class": per_test or None,
        "eval_per_class": per_eval or None,
        "test_source": settings["test"],
        "eval_source": settings["eval"],
    })  # fmt: skip
    return split, evaluation


def _read_made(folder: Path) -> Splits:
    def read(role: str) -> TextDataset | None:
        path = folder / f"{role}.parquet"
        return load_dataset(path) if path.is_file() else None

    train = read("train")
    if train is None:
        raise TailTuneError(f"{folder}: train.parquet is missing; delete {folder} to make the data again")
    return Splits(train, read("eval"), read("test"))


def _fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _counts_text(dataset: TextDataset) -> str:
    return ", ".join(f"{name} {n}" for name, n in class_counts(dataset.labels or []).items())


# ------------------------------------------------------------------------------------------- running


def run_compare(
    config_path: str | Path,
    *,
    output: str | Path | None = None,
    dry_run: bool = False,
    show_progress: bool = True,
) -> int:
    """Run an experiment: every (variant, strategy, seed) not complete yet, then the summary.

    Args:
        config_path: The experiment YAML file (schema in this module's docstring).
        output: Output folder; overrides the file's ``output``.
        dry_run: Print the plan and the resolved stages, train nothing and write nothing.
        show_progress: Per-stage progress bars.

    Returns:
        The exit status: 0, or 130 when interrupted (re-running the same command resumes).

    Raises:
        TailTuneError: For a bad config or data, before any training starts.
    """
    experiment = load_experiment(config_path, output=output)
    with _context(str(config_path)):
        splits = prepare_data(experiment, write=not dry_run)
        plan = experiment.plan()
        for item in plan:
            if is_complete(item.directory):
                _check_complete(item, experiment.run_config(item.strategy, item.seed))
    if dry_run:
        print(describe_plan(experiment, plan, splits))
        return 0

    total = len(plan)
    try:
        for number, item in enumerate(plan, start=1):
            if is_complete(item.directory):
                logger.info("run %d/%d: skipping complete run %s", number, total, item.directory)
                continue
            if item.directory.exists():
                shutil.rmtree(item.directory)  # an interrupted run's leftovers; it has no metrics.json
            logger.info("run %d/%d: %s / %s / seed %d", number, total, item.variant.name, item.strategy.label,
                        item.seed)  # fmt: skip
            started = time.perf_counter()
            metrics = train_run(
                experiment.run_config(item.strategy, item.seed), splits[item.variant.name], item.directory,
                variant=item.variant.name, variant_info=item.variant.info, show_progress=show_progress,
            )  # fmt: skip
            score = metrics.get("macro_f1")
            logger.info("run %d/%d done in %.0fs%s", number, total, time.perf_counter() - started,
                        "" if score is None else f": macro-F1 {score:.4f}")  # fmt: skip
    except KeyboardInterrupt:
        done = sum(is_complete(item.directory) for item in plan)
        print(f"\ninterrupted: {done} of {total} runs complete in {experiment.output}; run the same command "
              "again to resume", file=sys.stderr)  # fmt: skip
        return INTERRUPTED

    csv_path, json_path = write_summary(experiment.output, baseline=experiment.baseline)
    print(format_table(json.loads(json_path.read_text(encoding="utf-8"))))
    print(f"summary: {csv_path}, {json_path} ('tailtune report {experiment.output}' makes an HTML report)")
    return 0


def _check_complete(item: PlannedRun, config: RunConfig) -> None:
    """Refuse to count a complete run whose recorded settings differ from the config's."""
    stored = load_run(item.directory).config.get("run") or {}
    planned = {k: v for k, v in json.loads(json.dumps(config.to_dict())).items() if k not in _NOT_COMPARED}
    differences = _differences(planned, stored, "")
    if differences:
        raise TailTuneError(
            f"{item.directory} is a complete run with other settings ({'; '.join(differences[:3])}); "
            "use another --output, give the strategy a new 'label', or delete that run"
        )


def _differences(planned: Any, stored: Any, where: str) -> list[str]:
    # Keys missing on either side are not compared: runs written by another tailtune version stay valid.
    if isinstance(planned, dict) and isinstance(stored, dict):
        return [
            line
            for key in planned
            if key in stored
            for line in _differences(planned[key], stored[key], f"{where}.{key}" if where else key)
        ]
    if isinstance(planned, list) and isinstance(stored, list) and len(planned) == len(stored):
        return [
            line
            for i, (a, b) in enumerate(zip(planned, stored, strict=True))
            for line in _differences(a, b, f"{where}[{i}]")
        ]
    if where == "model" and isinstance(planned, str) and isinstance(stored, str):
        # A model folder may move (a new virtualenv for builtin:minilm); its last two path parts identify it
        # well enough.
        same = Path(planned).parts[-2:] == Path(stored).parts[-2:]
        return [] if same else [f"model {stored!r} -> {planned!r}"]
    return [] if planned == stored else [f"{where} {stored!r} -> {planned!r}"]


def describe_plan(experiment: Experiment, plan: list[PlannedRun], splits: dict[str, Splits] | None = None) -> str:
    """The dry-run text: data variants, shared settings, resolved stages, and every run with done / todo.

    Args:
        experiment: The experiment.
        plan: Its :meth:`Experiment.plan`.
        splits: The variants' data, to show class counts; optional.
    """
    done = sum(is_complete(item.directory) for item in plan)
    settings = ", ".join(f"{k}={v}" for k, v in experiment.run.items()) or "defaults"
    lines = [
        f"experiment {experiment.path}: {len(experiment.variants)} data variant(s) x {len(experiment.strategies)} "
        f"strateg{'y' if len(experiment.strategies) == 1 else 'ies'} x {len(experiment.seeds)} seed(s) = "
        f"{len(plan)} runs ({done} done, {len(plan) - done} to do) in {experiment.output}",
        f"model: {experiment.model}",
        f"run settings: {settings}",
        "data variants:",
    ]  # fmt: skip
    for variant in experiment.variants:
        where = ", ".join(f"{k} {v}" for k, v in variant.info.items()) or "explicit files"
        lines.append(f"  {variant.name}: {where}")
        if splits and variant.name in splits:
            parts = splits[variant.name]
            lines.append(f"    train {len(parts.train)} ({_counts_text(parts.train)})")
            for role in ("eval", "test"):
                if getattr(parts, role) is not None:
                    lines.append(f"    {role} {len(getattr(parts, role))}")
    lines.append(f"strategies (baseline: {experiment.baseline}):")
    for strategy in experiment.strategies:
        origin = "" if strategy.label == strategy.name else f" (from {strategy.name})"
        lines.append(f"  {strategy.label}{origin}")
        lines.extend(f"    {i}. {describe_stage(stage)}" for i, stage in enumerate(strategy.stages, start=1))
    lines.append("runs:")
    lines.extend(f"  {'done' if is_complete(item.directory) else 'todo'}  {item.directory}" for item in plan)
    return "\n".join(lines)


def describe_stage(stage: StageConfig) -> str:
    """One line per stage: name, scope, loss, weights, sampler, learning rate, epochs and batch size."""
    params = ", ".join(f"{k}={v}" for k, v in stage.loss_params.items())
    text = f"{stage.name}: trainable={stage.trainable}, loss={stage.loss}" + (f"({params})" if params else "")
    if stage.weights != "none":
        text += f", weights={stage.weights}"
    if stage.sampler != "random":
        text += f", sampler={stage.sampler}"
    text += f", lr={stage.lr:g}, epochs={stage.epochs}"
    return text + (f", batch_size={stage.batch_size}" if stage.batch_size else "")
