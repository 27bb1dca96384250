"""The dry-run text of an experiment: what it would train, and what is done already."""

from __future__ import annotations

from tailtune.experiments.spec import Experiment, PlannedRun
from tailtune.experiments.variants import counts_text
from tailtune.run import Splits
from tailtune.rundir import is_complete
from tailtune.strategies import describe_stage


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
