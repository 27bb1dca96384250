"""The experiment file: its schema, and parsing it into an :class:`Experiment` (nothing is loaded or trained).

The file (every key is checked before anything trains; an unknown key is an error)::

    output: runs/bbc-lt          # the output folder OUT; --output overrides it
    model: builtin:minilm        # a local folder, a hub id, or builtin:minilm (the embedded all-MiniLM-L6-v2);
                                 # not needed where every strategy is a TF-IDF one (tfidf)
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
                                   # label_separator: '|' reads CSV label cells as label sets (multi-label)
    data:                                         # ... or one source made imbalanced several ways
      source: builtin:bbc-news     # a file, a hub spec, builtin:bbc-news or builtin:bbc-headlines
      text_column: text            # columns of the source (and of test/eval)
      label_column: label
      classes: null                # keep only these labels of the source (and of test/eval), e.g. a pair
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

    tune: {trials: 12, timeout: null}   # optional: every run tunes its strategy's budget first (same budget)

Paths are relative to the working directory. Strategy labels and variant names become folder names.

With ``tune``, each (variant, strategy, seed) searches that strategy's learning rates, step budget and loss
parameters on validation data (``tailtune tune`` with ``trials`` and/or ``timeout``, seeded by the run's seed)
and the run directory holds the final model of the best settings; the search itself is kept beside it in
``seed-<k>.tuning/`` (hidden from reports). Every strategy gets the same tuning budget, so the summary compares
strategies at their best rather than at someone's guessed budget.

Each run goes to ``OUT/<variant>/<strategy>/seed-<k>/``; made data goes to ``OUT/<variant>/data/`` and shared
feature caches to ``OUT/.cache``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailtune.config import RunConfig, StageConfig, load_yaml
from tailtune.data.builtin import BUILTIN_DATA, resolve_model
from tailtune.data.imbalance import PROFILES
from tailtune.data.readers import _resolve_spec
from tailtune.errors import TailTuneError
from tailtune.experiments.checks import (
    as_folder_name,
    as_list,
    as_mapping,
    as_number,
    as_text,
    at_least_one,
    check_keys,
    check_unique,
    in_context,
    optional_int,
    plain_number,
)
from tailtune.models.family import family_of
from tailtune.runs.rundir import CACHE_DIR, DATA_DIR
from tailtune.strategies import RUN_SETTINGS, STAGE_SHORTCUTS, build_run_config

_TOP_KEYS = ("output", "model", "seeds", "baseline", "run", "strategies", "data", "tune")
_TUNE_KEYS = ("trials", "timeout")
_RUN_KEYS = tuple(f for f in RUN_SETTINGS if f != "seed")
_STRATEGY_KEYS = ("name", "label", "stages", *STAGE_SHORTCUTS)
_VARIANT_KEYS = ("name", "train", "eval", "test", "text_column", "label_column", "label_separator", "ratio")
_SOURCE_KEYS = ("source", "text_column", "label_column", "classes", "test", "eval", "make")
_MAKE_KEYS = ("ratios", "profile", "max_per_class", "order", "minority", "rates", "test_per_class",
              "eval_per_class", "seed")  # fmt: skip


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
        label_separator: Splits the label cells of explicit CSV/TSV files into label sets (multi-label data).
        make: Made variants: every setting the data depends on (source, recipe, holdouts, seed); these are
            hashed into ``data.json``.
    """

    name: str
    info: dict[str, Any]
    files: dict[str, str | None] = field(default_factory=dict)
    text_column: str = "text"
    label_column: str = "label"
    label_separator: str | None = None
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
        model: The model folder or hub id (``builtin:minilm`` resolved to its folder); None where every strategy
            is a TF-IDF one, which uses no model.
        seeds: Run seeds, in config order.
        baseline: Label of the strategy the summary compares with.
        run: Shared :class:`~tailtune.config.RunConfig` settings.
        strategies: The strategies, in config order.
        variants: The data variants, in config order.
        tune: The tuning budget every run gets (``trials``, ``timeout``), or None to train as configured.
    """

    path: Path
    output: Path
    model: str | None
    seeds: list[int]
    baseline: str
    run: dict[str, Any]
    strategies: list[Strategy]
    variants: list[Variant]
    tune: dict[str, Any] | None = None

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
    with in_context(str(path)):
        return _parse(data, path, output)


def _parse(data: dict[str, Any], path: Path, output: str | Path | None) -> Experiment:
    check_keys(data, _TOP_KEYS, "")
    for key in ("seeds", "strategies", "data"):
        if data.get(key) in (None, "", []):
            raise TailTuneError(f"'{key}' is required")
    output = output if output is not None else data.get("output")
    if not output:
        raise TailTuneError("no output folder; add 'output: DIR' or pass --output")
    if Path(output).is_file():
        raise TailTuneError(f"output {output} is a file, not a folder")
    seeds = _parse_seeds(data["seeds"])
    run = as_mapping(data.get("run"), "run")
    check_keys(run, _RUN_KEYS, "run")
    with in_context("run"):
        build_run_config("model", "vanilla", settings=run)  # validates the values once, up front
    items = data["strategies"]
    if not isinstance(items, list):
        raise TailTuneError("strategies must be a list")
    strategies = [_parse_strategy(item, f"strategies[{i}]") for i, item in enumerate(items)]
    model = _parse_model(data.get("model"), strategies)
    check_unique([s.label for s in strategies], "strategy label", "give one a different 'label'")
    labels = [s.label for s in strategies]
    baseline = data.get("baseline")
    if baseline is None:
        baseline = "vanilla" if "vanilla" in labels else labels[0]
    elif baseline not in labels:
        raise TailTuneError(f"baseline {baseline!r} is not one of the strategies ({', '.join(labels)})")
    variants = _parse_data(as_mapping(data["data"], "data"))
    tune = _parse_tune(data.get("tune"))
    if tune is not None:
        # A search samples every stage's settings afresh: per-stage overrides would be dropped without a word.
        fixed = [s.label for s in strategies if s.overrides]
        if fixed:
            raise TailTuneError(f"strategies {', '.join(fixed)}: 'stages' overrides cannot be kept under 'tune', "
                                "which searches each stage's settings; drop 'tune' or the overrides")  # fmt: skip
    return Experiment(path, Path(output), model, seeds, baseline, run, strategies, variants, tune)


def _parse_model(value: Any, strategies: list[Strategy]) -> str | None:
    """The model the fine-tuned strategies start from; none is needed (None) where no strategy's family uses one
    (the TF-IDF ones, as for ``tailtune tune``), and one given then is recorded in no run."""
    if value in (None, ""):
        if not any(family_of(RunConfig(model=None, stages=strategy.stages)).uses_model for strategy in strategies):
            return None
        raise TailTuneError("'model' is required (a local model folder, a hub id or builtin:minilm)")
    return resolve_model(as_text(value, "model"))


def _parse_tune(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    tune = as_mapping(value, "tune")
    check_keys(tune, _TUNE_KEYS, "tune")
    trials = optional_int(tune.get("trials"), "tune.trials", 1)
    timeout = None if tune.get("timeout") is None else as_number(tune["timeout"], "tune.timeout")
    if trials is None and timeout is None:
        raise TailTuneError("tune needs 'trials', 'timeout' or both")
    if timeout is not None and timeout <= 0:
        raise TailTuneError(f"tune.timeout must be > 0 seconds, got {timeout}")
    return {"trials": trials, "timeout": timeout}


def _parse_seeds(value: Any) -> list[int]:
    items = value if isinstance(value, list) else [value]
    seeds = [as_number(item, f"seeds[{i}]", int) for i, item in enumerate(items)]
    for i, seed in enumerate(seeds):
        if seed < 0:
            raise TailTuneError(f"seeds[{i}] must be >= 0, got {seed}")
    check_unique([str(s) for s in seeds], "seed", "list each seed once")
    return seeds


def _parse_strategy(item: Any, where: str) -> Strategy:
    if isinstance(item, str):
        name, options = item, {}
    elif isinstance(item, dict) and "name" in item:
        options = dict(item)
        name = options.pop("name")
    elif isinstance(item, dict) and len(item) == 1:
        name, options = next(iter(item.items()))
        options = as_mapping(options, f"{where}.{name}")
    else:
        raise TailTuneError(f"{where} must be a strategy name, 'NAME: {{options}}' or a mapping with a 'name'")
    name = as_text(name, f"{where}.name")
    check_keys(options, _STRATEGY_KEYS[1:], where)
    label = as_folder_name(options.pop("label", name), f"{where}.label")
    if label == DATA_DIR:
        raise TailTuneError(f"{where}: '{DATA_DIR}' is reserved for made data; give the strategy another 'label'")
    stages = options.pop("stages", None)
    if stages is not None and not isinstance(stages, list):
        raise TailTuneError(f"{where}.stages must be a list with one mapping per stage")
    with in_context(where):
        resolved = build_run_config("model", name, settings=options, stages=stages).stages
    return Strategy(label, name, resolved, stages, options)


def _parse_data(data: dict[str, Any]) -> list[Variant]:
    if "variants" in data:
        extra = sorted(set(data) - {"variants"})
        if extra:
            raise TailTuneError(f"data: give either 'variants' or 'source' with 'make', not both ({', '.join(extra)})")
        return _parse_variants(data["variants"])
    check_keys(data, ("variants", *_SOURCE_KEYS), "data")
    if "source" not in data or "make" not in data:
        raise TailTuneError("data needs either 'variants' (explicit files) or 'source' and 'make'")
    return _parse_made(data)


def _parse_variants(items: Any) -> list[Variant]:
    if not isinstance(items, list) or not items:
        raise TailTuneError("data.variants must be a non-empty list")
    variants = []
    for i, item in enumerate(items):
        where = f"data.variants[{i}]"
        item = as_mapping(item, where)
        check_keys(item, _VARIANT_KEYS, where)
        for key in ("name", "train"):
            if not item.get(key):
                raise TailTuneError(f"{where}.{key} is required")
        if not (item.get("test") or item.get("eval")):
            raise TailTuneError(f"{where}: give a 'test' (or 'eval') file; the comparison needs scores")
        files = {role: _data_spec(item.get(role), f"{where}.{role}") for role in ("train", "eval", "test")}
        info = {}
        if item.get("ratio") is not None:
            info["ratio"] = at_least_one(item["ratio"], f"{where}.ratio")
        variants.append(Variant(
            name=as_folder_name(item["name"], f"{where}.name"), info=info, files=files,
            text_column=as_text(item.get("text_column", "text"), f"{where}.text_column"),
            label_column=as_text(item.get("label_column", "label"), f"{where}.label_column"),
            label_separator=None if item.get("label_separator") is None
            else as_text(item["label_separator"], f"{where}.label_separator"),
        ))  # fmt: skip
    check_unique([v.name for v in variants], "variant name", "give each variant its own name")
    return variants


def _parse_made(data: dict[str, Any]) -> list[Variant]:
    make = as_mapping(data["make"], "data.make")
    check_keys(make, _MAKE_KEYS, "data.make")
    base: dict[str, Any] = {
        "source": _data_spec(data["source"], "data.source"),
        "text_column": as_text(data.get("text_column", "text"), "data.text_column"),
        "label_column": as_text(data.get("label_column", "label"), "data.label_column"),
        "test": _data_spec(data.get("test"), "data.test"),
        "eval": _data_spec(data.get("eval"), "data.eval"),
        "test_per_class": optional_int(make.get("test_per_class"), "data.make.test_per_class", 1),
        "eval_per_class": optional_int(make.get("eval_per_class"), "data.make.eval_per_class", 0) or 0,
        "seed": optional_int(make.get("seed"), "data.make.seed", 0) or 0,
    }
    if data.get("classes") is not None:
        # Only when given, so that data made before this key existed keeps its fingerprint.
        base["classes"] = _classes(data["classes"])
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
            "max_per_class": optional_int(make.get("max_per_class"), "data.make.max_per_class", 1),
            "order": None if order is None else [str(x) for x in order],
        }
        values = [at_least_one(r, f"data.make.ratios[{i}]") for i, r in enumerate(as_list(make["ratios"]))]
        variants = [
            Variant(f"ratio-{r:g}", {"ratio": r, "profile": profile}, make={**base, **recipe, "ratio": r})
            for r in values
        ]
        check_unique([v.name for v in variants], "ratio in data.make.ratios", "list each ratio once")
        return variants
    for key in ("profile", "max_per_class", "order"):
        if key in make:
            raise TailTuneError(f"data.make.{key} applies to 'ratios' only, not to the binary recipe")
    if make.get("minority") is None or "rates" not in make:
        raise TailTuneError("data.make: the binary recipe needs both 'minority' and 'rates'")
    minority = str(make["minority"])
    variants = []
    for i, value in enumerate(as_list(make["rates"])):
        rate = plain_number(as_number(value, f"data.make.rates[{i}]"))
        if not 0 < rate <= 1:
            raise TailTuneError(f"data.make.rates[{i}] must be in (0, 1], got {rate}")
        # The nominal majority/minority ratio, so that reports can order and plot binary variants too.
        info = {"rate": rate, "minority": minority, "ratio": plain_number(round(1 / rate, 2))}
        variants.append(Variant(f"rate-{rate:g}", info, make={**base, "minority": minority, "rate": rate}))
    check_unique([v.name for v in variants], "rate in data.make.rates", "list each rate once")
    return variants


def _classes(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) < 2:
        raise TailTuneError("data.classes must be a list of at least two labels to keep from the source")
    names = [as_text(str(x), f"data.classes[{i}]") for i, x in enumerate(value)]
    check_unique(names, "label in data.classes", "list each label once")
    return names


def _data_spec(value: Any, where: str) -> str | None:
    if value is None:
        return None
    spec = as_text(value, where)
    if spec.startswith("builtin:"):
        if spec not in BUILTIN_DATA:
            raise TailTuneError(f"{where}: unknown built-in data {spec!r}; valid: {', '.join(BUILTIN_DATA)}")
        return spec
    try:
        _resolve_spec(spec)  # a missing local file fails here; a hub spec is only checked when loaded
    except TailTuneError:
        raise TailTuneError(f"{where}: file not found: {spec}") from None
    return spec
