"""An experiment before it trains: validated, its data ready, its complete runs checked, and the dry-run text.

Nothing here trains or imports torch, so ``tailtune compare --dry-run`` stays quick.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tailtune.config import RunConfig
from tailtune.data.fingerprint import changed_roles, describe_change, split_fingerprints
from tailtune.data.types import Splits
from tailtune.errors import TailTuneError
from tailtune.experiments.checks import in_context
from tailtune.experiments.spec import Experiment, PlannedRun, load_experiment
from tailtune.experiments.variants import counts_text, prepare_data
from tailtune.models.fingerprint import model_changed, model_fingerprint
from tailtune.runs.records import config_differences, load_run
from tailtune.runs.rundir import NOT_LEARNED, is_complete
from tailtune.strategies import describe_stage
from tailtune.task import task_of

logger = logging.getLogger(__name__)


@dataclass
class PreparedExperiment:
    """An experiment ready to run: its validated config, every variant's data and the plan.

    Attributes:
        experiment: The validated experiment.
        splits: The data by variant name.
        plan: Every (variant, strategy, seed), in the order they run.
    """

    experiment: Experiment
    splits: dict[str, Splits]
    plan: list[PlannedRun]


def prepare_compare(
    config_path: str | Path, *, output: str | Path | None = None, write_data: bool = True
) -> PreparedExperiment:
    """Validate an experiment, load or make its data, and check the complete runs already under OUT.

    Args:
        config_path: The experiment YAML file (schema in :mod:`tailtune.experiments.spec`).
        output: Output folder; overrides the file's ``output``.
        write_data: Write made data under OUT; without it (a dry run) nothing is written.

    Raises:
        TailTuneError: For a bad config or data, or a complete run whose settings differ from the config's or that
            was trained on other data (:func:`_check_data`) or from other weights (:func:`_check_model`).
    """
    experiment = load_experiment(config_path, output=output)
    with in_context(str(config_path)):
        splits = prepare_data(experiment, write=write_data)
        plan = experiment.plan()
        lengths: dict[tuple[str, str, bool], int] = {}  # read from each variant's training texts once
        fingerprints: dict[str, dict[str, str | None]] = {}  # each variant's, once
        predating: list[Path] = []
        unweighed: list[Path] = []  # complete runs from a pretrained model that recorded no fingerprint of it
        model: str | None = None  # the model's fingerprint, taken once where a complete run needs it
        for item in plan:
            if is_complete(item.directory):
                name = item.variant.name
                if name not in fingerprints:
                    fingerprints[name] = split_fingerprints(splits[name])
                if not _check_data(item, splits[name], fingerprints[name], experiment.output / name):
                    predating.append(item.directory)
                # As the run recorded it: what its task decides (losses, TF-IDF terms) and the length it trained at.
                config = task_of(splits[name].train).prepare(experiment.run_config(item.strategy, item.seed))
                config = _with_length(config, name, splits[name].train.texts, lengths)
                _check_complete(item, config, tuned=bool(experiment.tune))
                if not config.classic:  # a TF-IDF run starts from no pretrained model
                    model = model or model_fingerprint(experiment.model)
                    if not _check_model(item, experiment, model):
                        unweighed.append(item.directory)
        if predating:
            logger.warning("%d complete run(s) predate data fingerprints (e.g. %s): counted as they are, but whether "
                           "their data changed since cannot be checked", len(predating), predating[0])  # fmt: skip
        if unweighed:
            logger.warning("%d complete run(s) predate model fingerprints (e.g. %s): counted as they are, but whether "
                           "the weights in %s changed since they trained cannot be checked", len(unweighed),
                           unweighed[0], experiment.model)  # fmt: skip
    return PreparedExperiment(experiment, splits, plan)


def _check_data(item: PlannedRun, splits: Splits, current: dict[str, str | None], variant_dir: Path) -> bool:
    """Refuse to count a complete run trained on other data than the variant's now.

    The data is compared by content (:mod:`tailtune.data.fingerprint`): a file edited in place, even reshuffled
    with the same labels and counts, is other data, and its runs are no seeds of one setup with new ones.

    Returns:
        Whether the run's data could be checked: False for a run written before tailtune fingerprinted data.
    """
    recorded = load_run(item.directory).config.get("fingerprints")
    changed = changed_roles(recorded, current)
    if changed is None:
        return False
    if changed:
        what = describe_change(changed[0], splits, recorded)
        raise TailTuneError(f"{item.directory} is a complete run trained on other data: {what}; use another --output, "
                            f"or delete {variant_dir} to start this variant afresh")  # fmt: skip
    return True


def _check_model(item: PlannedRun, experiment: Experiment, current: str | None) -> bool:
    """Refuse to count a complete run trained from other weights than the experiment's model now holds.

    The model is compared by content (:mod:`tailtune.models.fingerprint`): weights saved again under the same path,
    even with the same sizes and file times, are another model, and its runs are no seeds of one setup with new ones.

    Returns:
        Whether the run's model could be checked: False for a run written before tailtune fingerprinted models.
    """
    changed = model_changed(load_run(item.directory).config.get("model_fingerprint"), current)
    if changed:
        raise TailTuneError(f"{item.directory} is a complete run trained from another model: the weights or "
                            f"config.json now in {experiment.model} differ from those it trained from; use another "
                            f"--output, or delete {experiment.output} to start afresh")  # fmt: skip
    return changed is not None or current == experiment.model  # a hub id is checked by name, with the settings


def _check_complete(item: PlannedRun, config: RunConfig, *, tuned: bool = False) -> None:
    """Refuse to count a complete run whose recorded settings differ from the config's.

    A tuned run's stages hold the budget its search chose, so only its run settings are compared.
    """
    stored = load_run(item.directory).config.get("run") or {}
    # A complete run may differ in the settings that do not change what it learns, and still count.
    skip = (*NOT_LEARNED, "stages") if tuned else NOT_LEARNED
    planned = {k: v for k, v in json.loads(json.dumps(config.to_dict())).items() if k not in skip}
    differences = [f"{key} {old!r} -> {new!r}" for key, new, old in config_differences(planned, stored)]
    if differences:
        raise TailTuneError(
            f"{item.directory} is a complete run with other settings ({'; '.join(differences[:3])}); "
            "use another --output, give the strategy a new 'label', or delete that run"
        )


def _with_length(config: RunConfig, variant: str, texts: Sequence[str], known: dict[tuple[str, str, bool], int]
                 ) -> RunConfig:  # fmt: skip
    """``config`` with the ``max_length`` a run of it trains at: as given, else as
    :func:`~tailtune.training.fitting.resolve_max_length` reads it from the variant's training texts (once per
    variant and
    model, kept in ``known``)."""
    if config.max_length is not None:
        return config
    key = (variant, config.model, config.trust_remote_code)
    if key not in known:
        from tailtune.training.fitting import resolve_max_length

        known[key] = resolve_max_length(config, texts).max_length
    return config.replace(max_length=known[key])


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
        f"model: {experiment.model or 'none (TF-IDF strategies only)'}",
        f"run settings: {settings}",
        "data variants:",
    ]  # fmt: skip
    if experiment.tune is not None:
        budget = ", ".join(f"{k} {v}" for k, v in experiment.tune.items() if v is not None)
        lines.insert(3, f"tuning: every run searches its strategy's budget first ({budget})")
    for variant in experiment.variants:
        where = ", ".join(f"{k} {v}" for k, v in variant.info.items()) or "explicit files"
        lines.append(f"  {variant.name}: {where}")
        if splits and variant.name in splits:
            parts = splits[variant.name]
            lines.append(f"    train {len(parts.train)} ({counts_text(parts.train)})")
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
