"""What the commands print of a run's price: the plan and its estimated time before training, the time budget's
decision, and how the estimate compared with the time taken (``metrics.json`` ``cost``; :mod:`tailtune.training.cost`).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tailtune.durations import format_duration


def plan_lines(plan: dict[str, Any], *, compact: bool = False) -> list[str]:
    """The lines that describe a run's plan and its estimated time (``compact``: one line)."""
    described = plan["plan"]
    if described.get("family") == "tfidf":
        what = f"plan: {described['strategy']} ({described['stages'][0]['describe']}) on {described['texts']} texts"
    else:
        what = _transformer_plan(described, compact)
    estimate = f"estimate: about {format_duration(plan['estimate_s'])} on this machine"
    probe = plan.get("probe") or {}
    if probe.get("device"):
        estimate += f" ({probe['device']}, {probe['mixed_precision']}"
        estimate += f"; from a {format_duration(probe['seconds'])} probe of real training steps)"
    elif probe.get("seconds") is not None:
        estimate += f" (from fitting {probe['sample_texts']} of the texts in {format_duration(probe['seconds'])})"
    lines = [*what, estimate] if isinstance(what, list) else [what, estimate]
    budget = plan.get("budget")
    if budget:
        lines.append(budget_line(budget))
    return ["; ".join(lines)] if compact else lines


def _transformer_plan(plan: dict[str, Any], compact: bool) -> list[str] | str:
    validation = plan["validation"]
    if validation["source"] == "carved":
        held = f"validation {validation['size']} texts held out of the training data"
    elif validation["source"] == "given":
        held = f"validation {validation['size']} given texts"
    else:
        held = "no validation split"
    refit = plan["refit"]
    refit_text = f"refit {'on all the training data' if refit['done'] else 'no'} ({refit['reason']})"
    reading = "chosen on validation after training" if plan["long_texts"] == "auto" else plan["long_texts"]
    head = (f"plan: {plan['strategy']}, max_length {plan['max_length']}, long texts {reading}, {held}, "
            f"{refit_text}")  # fmt: skip
    stages = [_stage_text(stage) for stage in plan["stages"] if stage["epochs"]]
    if plan.get("refit_stages"):
        seconds = sum(stage["seconds"] for stage in plan["refit_stages"])
        stages.append(f"refit: the stages again on all the training data, about {format_duration(seconds)}")
    if compact:
        return f"{head}; " + "; ".join(stages)
    return [head, *(f"  {text}" for text in stages)]


def _stage_text(stage: dict[str, Any]) -> str:
    where = ", on cached features" if stage["cached"] else ""
    seconds = stage["seconds"] + stage.get("validation_s", 0.0)
    budget = f" (its budget of at least {stage['min_steps']} steps)" if stage.get("min_steps") else ""
    return (f"{stage['name']} ({stage['trainable']}{where}): {stage['epochs']} epoch(s) x {stage['steps_per_epoch']} "
            f"steps{budget}, batch {stage['batch_size']}, about {format_duration(seconds)}")  # fmt: skip


def budget_line(budget: dict[str, Any]) -> str:
    """The time budget's decision in one line."""
    line = f"time budget {format_duration(budget['budget_s'])}: {budget['chosen']}"
    if budget["changes"]:
        line += f" ({'; '.join(budget['changes'])})"
    return f"{line}: {budget['reason']}"


def outcome_line(cost: dict[str, Any] | None) -> str | None:
    """How the estimate compared with the time the run took, and by how much it overran its time budget where it
    did (None where the time taken or both the estimate and the budget are missing)."""
    if not cost or cost.get("actual_s") is None:
        return None
    actual, estimate, budget = cost["actual_s"], cost.get("estimate_s"), cost.get("budget") or {}
    if not estimate and not budget:
        return None
    line = f"time: took {format_duration(actual)}"
    if estimate:
        line += f", estimated {format_duration(estimate)} ({(actual - estimate) / estimate:+.0%})"
    if budget.get("budget_s") is not None and actual > budget["budget_s"]:
        line += (f", over the {format_duration(budget['budget_s'])} budget by "
                 f"{format_duration(actual - budget['budget_s'])}")  # fmt: skip
    if budget.get("stopped"):
        line += f"; the time budget ended training early: {budget['stopped']['reason']}"
    return line


def plan_printer(*, compact: bool = False, prefix: str = "", stream: TextIO | None = None) -> Any:
    """A stage-loop hook that prints each run's plan and estimate before it trains (on ``stream``, default stderr)."""
    from tailtune.training.loop import StageHooks

    class PlanPrinter(StageHooks):
        def on_plan(self, plan: dict[str, Any]) -> None:
            out = stream or sys.stderr
            for line in plan_lines(plan, compact=compact):
                print(f"{prefix}{line}", file=out, flush=True)

    return PlanPrinter()
