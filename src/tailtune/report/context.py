"""The runs of a report grouped the ways its sections read them, and the small formatting the sections share."""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from typing import Any

from tailtune.classtable import ordered_classes
from tailtune.experiments.summary import (
    strategy_order,
    summarize,
    variant_order,
)
from tailtune.report import plots
from tailtune.runs.records import RunRecord

#: Past this many classes a confusion figure draws only the classes of the most frequent confusions, their
#: confusions are also listed as text, and the per-class table is preceded by the rarest classes.
CONFUSION_CLASSES = 15
#: Confusions listed per strategy, and rarest classes named, for a variant of more than CONFUSION_CLASSES classes.
LISTED = 5


def count(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless ``n`` is 1."""
    return f"{n} {noun}{'s' if n != 1 else ''}"


class ReportContext:
    """The runs of a report, grouped the ways the sections need them."""

    def __init__(self, runs: list[RunRecord], baseline: str) -> None:
        self.runs = runs
        self.baseline = baseline
        self.summary = summarize(runs, baseline=baseline)
        self.rows = {(r["variant"], r["strategy"]): r for r in self.summary["rows"]}
        self.variants = variant_order(runs)
        self.strategies = strategy_order({r.strategy for r in runs}, baseline)
        self.colors = plots.strategy_colors(self.strategies)
        self.by_group: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
        self.by_variant: dict[str, list[RunRecord]] = defaultdict(list)
        for run in sorted(runs, key=lambda r: r.seed):
            self.by_group[(run.variant, run.strategy)].append(run)
            self.by_variant[run.variant].append(run)

    def facts(self, n_incomplete: int) -> str:
        """One line about the runs: how many, variants, strategies, seeds and the baseline."""
        seeds = sorted({r.seed for r in self.runs})
        skipped = f" ({n_incomplete} incomplete skipped)" if n_incomplete else ""
        return (
            f"{count(len(self.runs), 'complete run')}{skipped} · {count(len(self.variants), 'variant')} · "
            f"strategies: {', '.join(self.strategies)} · seeds: {', '.join(map(str, seeds))} · "
            f"baseline: {self.baseline if self.baseline in self.strategies else f'none ({self.baseline} not run)'}"
        )

    def strategies_of(self, variant: str) -> list[str]:
        """The strategies run on a variant, in report order."""
        return [s for s in self.strategies if (variant, s) in self.by_group]

    def first(self, variant: str) -> RunRecord:
        """The run of a variant with the lowest seed."""
        return self.by_variant[variant][0]

    def groups(self, variant: str) -> dict[str, list[str]]:
        """Head/medium/tail class names of a variant (from the first run that was scored)."""
        for run in self.by_variant[variant]:
            if run.metrics.get("groups"):
                return {group: [str(n) for n in names or []] for group, names in run.metrics["groups"].items()}
        return {}

    def groups_of(self, variant: str) -> dict[str, str]:
        """Class name to its group."""
        return {name: group for group, names in self.groups(variant).items() for name in names}

    def ordered(self, variant: str) -> list[tuple[str, str]]:
        """``(class name, group)`` of a variant from the most frequent in training to the rarest."""
        return ordered_classes(self.first(variant).train_counts, self.groups(variant) or None)

    def per_class_panels(self) -> list[tuple[str, dict[str, int], dict[str, dict[str, float | None]]]]:
        """Per variant: its training counts per class and each strategy's mean F1 per class."""
        return [
            (
                variant,
                self.first(variant).train_counts,
                {s: self.rows[(variant, s)]["per_class_f1_mean"] for s in self.strategies_of(variant)},
            )
            for variant in self.variants
        ]

    @functools.cached_property
    def per_class_png(self) -> bytes:
        """The per-class F1 against training frequency figure, rendered once for the report and its PNG copy."""
        return plots.to_png(plots.per_class_vs_frequency(self.per_class_panels(), self.colors))


def fmt_value(value: Any) -> str:
    """A config value as table text: ``-`` for None, lower-case booleans, JSON for dicts and lists."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)
