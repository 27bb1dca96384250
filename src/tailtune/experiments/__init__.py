"""``tailtune compare``: every (data variant, strategy, seed) of a YAML experiment, resumable.

- :mod:`~tailtune.experiments.spec`: the experiment file's schema, parsed into an :class:`Experiment`;
- :mod:`~tailtune.experiments.variants`: each variant's data, made once and cached under the output folder;
- :mod:`~tailtune.experiments.plan`: the experiment prepared (data ready, complete runs checked), the dry-run text;
- :mod:`~tailtune.experiments.runner`: the resumable runner;
- :mod:`~tailtune.experiments.summary`: runs aggregated over seeds and compared with a baseline.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Re-exports resolve on first use: reading a summary must not wait for torch, which the runner imports.
_EXPORTS = {
    "Experiment": "tailtune.experiments.spec",
    "PlannedRun": "tailtune.experiments.spec",
    "Strategy": "tailtune.experiments.spec",
    "Variant": "tailtune.experiments.spec",
    "load_experiment": "tailtune.experiments.spec",
    "prepare_data": "tailtune.experiments.variants",
    "CompareInterrupted": "tailtune.experiments.runner",
    "CompareResult": "tailtune.experiments.runner",
    "PreparedExperiment": "tailtune.experiments.plan",
    "prepare_compare": "tailtune.experiments.plan",
    "run_compare": "tailtune.experiments.runner",
    "describe_plan": "tailtune.experiments.plan",
    "format_table": "tailtune.experiments.summary",
    "summarize": "tailtune.experiments.summary",
    "write_summary": "tailtune.experiments.summary",
}
__all__ = [
    "CompareInterrupted",
    "CompareResult",
    "Experiment",
    "PlannedRun",
    "PreparedExperiment",
    "Strategy",
    "Variant",
    "describe_plan",
    "format_table",
    "load_experiment",
    "prepare_compare",
    "prepare_data",
    "run_compare",
    "summarize",
    "write_summary",
]

if TYPE_CHECKING:
    from tailtune.experiments.plan import PreparedExperiment, describe_plan, prepare_compare
    from tailtune.experiments.runner import CompareInterrupted, CompareResult, run_compare
    from tailtune.experiments.spec import Experiment, PlannedRun, Strategy, Variant, load_experiment
    from tailtune.experiments.summary import format_table, summarize, write_summary
    from tailtune.experiments.variants import prepare_data


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tailtune.experiments' has no attribute {name!r}")
