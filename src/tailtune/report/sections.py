"""The report's sections: each reads the runs through a :class:`ReportContext` and writes to a :class:`Document`.

:data:`SECTIONS` lists them in report order. Data strings go to the document as they are; it escapes them.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tailtune.classtable import ordered_classes, rarest, top_confusions
from tailtune.errors import TailTuneError
from tailtune.experiments.summary import (
    METRIC_TITLES,
    METRICS,
    fmt_diff,
    fmt_mean_std,
    fmt_over_seeds,
    fmt_p,
    fmt_wlt,
    strategy_order,
    summarize,
    variant_order,
)
from tailtune.report import plots
from tailtune.report.document import Cell, Document
from tailtune.runs.rundir import RunRecord

# Records carry the package name, the one users configure and see in the log format.
logger = logging.getLogger(__package__)

#: Misclassified texts are cut to about this many characters.
TEXT_LIMIT = 300
#: Misclassified tail examples shown per strategy and variant.
EXAMPLES_PER_STRATEGY = 3
#: Past this many classes a confusion figure draws only the classes of the most frequent confusions, their
#: confusions are also listed as text, and the per-class table is preceded by the rarest classes.
CONFUSION_CLASSES = 15
#: Confusions listed per strategy, and rarest classes named, for a variant of more than CONFUSION_CLASSES classes.
LISTED = 5
_STAGE_KEYS = ("name", "trainable", "loss", "weights", "lr", "epochs")
# Shown elsewhere (stages have their own tables) or differing per run by design.
_NOT_SETTINGS = ("seed", "strategy", "stages")


def _count(n: int, noun: str) -> str:
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
            f"{_count(len(self.runs), 'complete run')}{skipped} · {_count(len(self.variants), 'variant')} · "
            f"strategies: {', '.join(self.strategies)} · seeds: {', '.join(map(str, seeds))} · "
            f"baseline: {self.baseline}"
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


def _fmt_value(value: Any) -> str:
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


def summary_section(doc: Document, ctx: ReportContext) -> None:
    """The summary table (mean ± std over seeds, comparison with the baseline) and a line per variant."""
    baseline = ctx.baseline
    doc.section("Summary")
    header = ["Variant", "Strategy", "Seeds", *(METRIC_TITLES[m] for m in METRICS)]
    header += [f"Δ vs {baseline}", "W/L/T", "p (t-test)", "p (Wilcoxon)"]
    best: dict[str, float] = {}
    for row in ctx.summary["rows"]:
        if row["macro_f1_mean"] is not None:
            best[row["variant"]] = max(best.get(row["variant"], -1.0), row["macro_f1_mean"])
    rows = []
    for row in ctx.summary["rows"]:
        is_best = row["macro_f1_mean"] is not None and row["macro_f1_mean"] == best.get(row["variant"])
        cells = [Cell(row["variant"]), Cell(row["strategy"]), Cell(str(row["n_seeds"]), numeric=True)]
        for metric in METRICS:
            cells.append(Cell(fmt_over_seeds(row, metric), numeric=True, strong=metric == "macro_f1" and is_best))
        cells += [
            Cell(fmt_diff(row["mean_diff"]), numeric=True),
            Cell(fmt_wlt(row), numeric=True),
            Cell(fmt_p(row["p_ttest"]), numeric=True),
            Cell(fmt_p(row["p_wilcoxon"]), numeric=True),
        ]
        rows.append(cells)
    doc.table(header, rows)
    doc.paragraph(
        "Mean ± sample standard deviation over seeds (one seed: the value alone); the best macro-F1 of "
        "each variant is in bold. A seed whose test data held no class of a group and predicted none (e.g. no "
        "tail class) did not measure that group's F1: it is left out of the mean, a value from only some seeds "
        "says how many, and one no seed measured reads not measured. Δ is the mean per-seed difference in "
        f"macro-F1 from {baseline} on the same seeds; W/L/T counts seeds where macro-F1 is higher / lower / "
        "equal. p (t-test) is a two-sided paired t-test on macro-F1 and is the primary test; p (Wilcoxon) is the "
        "two-sided signed-rank test, which cannot go below 0.25 with 3 seeds or 0.0625 with 5, whatever the gain.",
        note=True,
    )
    if not any(s == baseline for _, s in ctx.by_group):
        doc.paragraph(
            f"No run uses the baseline strategy {baseline!r}, so there are no comparisons; build the report "
            f"with one of these as baseline: {', '.join(ctx.strategies)}.",
            note=True,
        )
    glance = []
    for variant in ctx.variants:
        rows_v = [ctx.rows[(variant, s)] for s in ctx.strategies_of(variant)]
        scored = [r for r in rows_v if r["macro_f1_mean"] is not None]
        if not scored:
            continue
        top = max(scored, key=lambda r: r["macro_f1_mean"])
        score = fmt_mean_std(top["macro_f1_mean"], top["macro_f1_std"])
        line = f"{variant}: best macro-F1 {top['strategy']} {score}"
        if top["strategy"] != baseline and top["mean_diff"] is not None:
            p_value = fmt_p(top["p_ttest"])
            p_text = f"p {p_value}" if p_value.startswith("<") else f"p = {p_value}"
            line += f", {fmt_diff(top['mean_diff'])} over {baseline} (W/L/T {fmt_wlt(top)}, "
            line += f"paired t-test {p_text})"
        glance.append(line + ".")
    if glance:
        doc.bullets(glance)


def distribution_section(doc: Document, ctx: ReportContext) -> None:
    """Training examples per class of each variant, coloured by group."""
    doc.section("Training class distribution")
    panels = []
    for variant in ctx.variants:
        counts = ctx.first(variant).train_counts
        ordered = ctx.ordered(variant)
        panels.append((variant, [n for n, _ in ordered], [counts[n] for n, _ in ordered], dict(ordered)))
    doc.figure(
        "class-distribution",
        plots.to_png(plots.class_distribution(panels)),
        "Training examples per class for each variant",
        "Training examples per class (from config.json of each variant's first run), from the most frequent to "
        "the rarest, coloured by the head / medium / tail group used for the group F1 scores.",
    )


def macro_f1_section(doc: Document, ctx: ReportContext) -> None:
    """Macro-F1 per strategy and variant, with the seeds."""
    doc.section("Macro-F1 per strategy")
    scores = {
        key: [float(r.metrics["macro_f1"]) for r in runs if r.metrics.get("macro_f1") is not None]
        for key, runs in ctx.by_group.items()
    }
    doc.figure(
        "macro-f1",
        plots.to_png(plots.macro_f1_bars(ctx.variants, ctx.strategies, scores, ctx.colors)),
        "Macro-F1 per strategy and variant",
        "Bars: mean macro-F1 over seeds; error bars: sample standard deviation; dots: individual seeds.",
    )


def ratio_section(doc: Document, ctx: ReportContext) -> None:
    """Macro-F1 against imbalance ratio; left out unless the runs have several ratios."""
    ratios = {r.ratio for r in ctx.runs if r.ratio is not None}
    if len(ratios) < 2:
        return
    profile_of = {v: (ctx.first(v).config.get("variant_info") or {}).get("profile") for v in ctx.variants}
    several_profiles = len({p for v, p in profile_of.items() if ctx.first(v).ratio is not None}) > 1
    series: dict[str, list[tuple[float, float, float | None]]] = defaultdict(list)
    for row in ctx.summary["rows"]:
        if row["ratio"] is None or row["macro_f1_mean"] is None:
            continue
        name = row["strategy"]
        if several_profiles:
            name += f" ({profile_of[row['variant']]})"
        series[name].append((float(row["ratio"]), row["macro_f1_mean"], row["macro_f1_std"]))
    doc.section("Macro-F1 against imbalance ratio")
    doc.figure(
        "ratio",
        plots.to_png(plots.ratio_curves(dict(series), ctx.colors)),
        "Macro-F1 against imbalance ratio",
        "Mean macro-F1 over seeds at each imbalance ratio (variant_info.ratio); error bars: sample "
        "standard deviation over seeds.",
    )


def per_class_section(doc: Document, ctx: ReportContext) -> None:
    """Per-class F1 against training frequency, and a folded table per variant from head to tail; past
    :data:`CONFUSION_CLASSES` classes the rarest are named above it."""
    doc.section("Per-class F1 against training frequency")
    doc.figure(
        "per-class-f1",
        ctx.per_class_png,
        "Per-class F1 against training examples of the class",
        "Each point is a class: its training examples (log scale) and its test F1, mean over seeds. The tail "
        "is on the left.",
    )
    for variant in ctx.variants:
        strategies = ctx.strategies_of(variant)
        counts = ctx.first(variant).train_counts
        ordered = ctx.ordered(variant)
        if len(ordered) > CONFUSION_CLASSES:
            doc.paragraph(f"{variant}: the {LISTED} rarest classes in training, rarest first (training examples; "
                          "F1 per strategy, mean ± std over seeds):")  # fmt: skip
            doc.bullets(_rarest_lines(ctx, variant, ordered))
        per_class = ctx.first(variant).metrics.get("per_class") or {}
        support = {name: row.get("support") for name, row in per_class.items()}
        doc.open_details(f"Per-class F1 table: {variant} ({len(counts)} classes, most frequent in training first)")
        rows = []
        for name, group in ordered:
            cells = [Cell(name), Cell(group), Cell(str(counts[name]), numeric=True),
                     Cell(_fmt_value(support.get(name)), numeric=True)]  # fmt: skip
            for strategy in strategies:
                cells.append(Cell(fmt_over_seeds(ctx.rows[(variant, strategy)], "per_class_f1", name), numeric=True))
            rows.append(cells)
        doc.table(["Class", "Group", "Train examples", "Test support", *(f"F1 {s}" for s in strategies)], rows)
        doc.close_details()


def _rarest_lines(ctx: ReportContext, variant: str, ordered: list[tuple[str, str]]) -> list[str]:
    """The rarest classes of a variant with their training examples and each strategy's mean F1 over seeds."""
    counts = ctx.first(variant).train_counts
    strategies = ctx.strategies_of(variant)
    lines = []
    for name, _ in rarest(ordered, LISTED):
        scores = ", ".join(f"{s} {fmt_over_seeds(ctx.rows[(variant, s)], 'per_class_f1', name)}" for s in strategies)
        lines.append(f"{name} ({counts[name]} train): {scores}")
    return lines


def _summed_confusion(runs: list[RunRecord]) -> tuple[list[str], np.ndarray, int]:
    """The confusion matrices of the runs summed: ``(labels, matrix, runs used)``; malformed ones are left out."""
    labels: list[str] = []
    total: np.ndarray | None = None
    used = 0
    for run in runs:
        if "confusion_matrix" not in run.metrics:
            continue  # a run without a test or eval split has no scores at all
        cm = run.metrics.get("confusion_matrix") or {}
        matrix = np.asarray(cm.get("matrix") or [], dtype=float)
        run_labels = [str(name) for name in cm.get("labels") or []]
        if matrix.ndim != 2 or matrix.shape != (len(run_labels), len(run_labels)) or not run_labels:
            logger.warning("%s: confusion_matrix missing or malformed; left out", run.path)
            continue
        if total is None:
            labels, total = run_labels, matrix.copy()
        elif run_labels != labels:
            logger.warning("%s: confusion matrix labels differ from the other seeds'; left out", run.path)
            continue
        else:
            total += matrix
        used += 1
    return labels, (total if total is not None else np.zeros((0, 0))), used


def confusion_section(doc: Document, ctx: ReportContext) -> None:
    """Row-normalised confusion matrices per variant, summed over seeds, classes from head to tail.

    Past :data:`CONFUSION_CLASSES` classes a full grid is unreadable: the figure draws only the classes of the
    most frequent confusions (summed over the strategies), and each strategy's most frequent confusions are
    listed as text.
    """
    doc.section("Confusion matrices")
    doc.paragraph(
        "Summed over all seeds of each strategy, then normalised by row: each row shows where the test "
        "examples of one true class went. Classes run from the most frequent in training to the rarest.",
        note=True,
    )
    for variant in ctx.variants:
        matrices: dict[str, np.ndarray] = {}
        titles: dict[str, str] = {}
        labels: list[str] = []
        for strategy in ctx.strategies_of(variant):
            run_labels, matrix, used = _summed_confusion(ctx.by_group[(variant, strategy)])
            if not used or (labels and run_labels != labels):
                continue
            labels = run_labels
            matrices[strategy] = matrix
            titles[strategy] = f"{strategy} ({_count(used, 'seed')})"
        doc.subsection(f"Confusion matrices: {variant}")
        if not matrices:
            doc.paragraph("No confusion matrices in metrics.json.", note=True)
            continue
        rank = {name: i for i, (name, _) in enumerate(ctx.ordered(variant))}
        order = sorted(range(len(labels)), key=lambda i: (rank.get(labels[i], len(rank)), i))
        caption = f"{variant}: rows are true classes, columns predicted classes; counts summed over seeds."
        if len(labels) > CONFUSION_CLASSES:
            shown = set(_most_confused(labels, sum(matrices.values()), CONFUSION_CLASSES))
            order = [i for i in order if labels[i] in shown]
            caption = (f"{variant}: the {len(order)} of {len(labels)} classes in the most frequent confusions (all "
                       "strategies together); rows are true classes, columns predicted classes; counts summed over "
                       "seeds. Each row is divided by all the test examples of its class, so a row's shares add up "
                       "to less than 1 where some went to classes not drawn.")  # fmt: skip
            doc.paragraph(f"Most frequent confusions of each strategy (true -> predicted: count of the true class's "
                          f"examples, summed over seeds), {LISTED} at most:", note=True)  # fmt: skip
            doc.bullets([f"{titles[s]}: " + (", ".join(str(c) for c in top_confusions(labels, m, LISTED)) or "none")
                         for s, m in matrices.items()])  # fmt: skip
        if not order:
            doc.paragraph("No test example of any class was predicted as another class.", note=True)
            continue
        shares = {s: _row_shares(m)[np.ix_(order, order)] for s, m in matrices.items()}
        doc.figure(
            f"confusion-{variant}",
            plots.to_png(plots.confusion_matrices([labels[i] for i in order], shares, titles)),
            f"Row-normalised confusion matrices for {variant}",
            caption,
        )


def _row_shares(counts: np.ndarray) -> np.ndarray:
    """Each row of a count matrix divided by its sum (rows of no example stay 0)."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts, dtype=float), where=totals > 0)


def _most_confused(labels: list[str], counts: np.ndarray, limit: int) -> list[str]:
    """Up to ``limit`` classes, taken pair by pair from the most frequent confusions of ``counts`` down."""
    shown: list[str] = []
    for confusion in top_confusions(labels, counts, counts.size):
        new = [name for name in (confusion.true, confusion.predicted) if name not in shown]
        if len(shown) + len(new) <= limit:
            shown += new
        if len(shown) == limit:
            break
    return shown


def _pick_errors(frame: pd.DataFrame, tail: list[str], limit: int) -> list[pd.Series]:
    """Most confident errors, taking the tail classes in turn (in the given order) so one class does not fill
    the table."""
    errors = frame[frame["label"].isin(tail) & (frame["label"] != frame["predicted"])]
    errors = errors.sort_values("score", ascending=False, kind="stable")
    by_label = {label: group for label, group in errors.groupby("label", sort=False)}
    queues = [by_label[name] for name in tail if name in by_label]
    picked = []
    depth = 0
    while len(picked) < limit and any(depth < len(q) for q in queues):
        for queue in queues:
            if depth < len(queue) and len(picked) < limit:
                picked.append(queue.iloc[depth])
        depth += 1
    return picked


def _truncate(text: str, limit: int = TEXT_LIMIT) -> str:
    """The text on one line, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def examples_section(doc: Document, ctx: ReportContext) -> None:
    """The most confident errors on tail classes, from each strategy's first seed."""
    doc.section("Misclassified tail examples")
    doc.paragraph(
        f"Test examples of tail-group classes that were predicted wrongly, from predictions.csv of each "
        f"strategy's first seed: up to {EXAMPLES_PER_STRATEGY} per strategy, most confident errors first. "
        f"Texts are cut to about {TEXT_LIMIT} characters; the score is the probability of the predicted "
        "label.",
        note=True,
    )
    for variant in ctx.variants:
        doc.subsection(f"Tail examples: {variant}")
        counts = ctx.first(variant).train_counts
        tail = list(ctx.groups(variant).get("tail", []))
        tail.sort(key=lambda name: counts.get(name, 0))  # rarest class first
        if not tail:
            doc.paragraph("This variant has no tail group.", note=True)
            continue
        rows = []
        notes: list[str] = []
        clean: list[str] = []
        for strategy in ctx.strategies_of(variant):
            run = ctx.by_group[(variant, strategy)][0]
            try:
                frame = run.predictions()
            except TailTuneError as exc:
                notes.append(str(exc))
                continue
            picked = _pick_errors(frame, tail, EXAMPLES_PER_STRATEGY)
            if not picked:
                clean.append(f"{strategy} (seed {run.seed})")
            for example in picked:
                score = example["score"]
                rows.append(
                    [
                        Cell(f"{strategy} (seed {run.seed})"),
                        Cell(example["label"]),
                        Cell(example["predicted"]),
                        Cell("-" if score != score else f"{score:.2f}", numeric=True),
                        Cell(_truncate(example["text"]), wide=True),
                    ]
                )
        doc.paragraph(f"Tail classes: {', '.join(tail)}.", note=True)
        if rows:
            doc.table(["Strategy", "True label", "Predicted", "Score", "Text"], rows)
        if clean:
            doc.paragraph(f"No misclassified tail examples: {', '.join(clean)}.", note=True)
        for note in notes:
            doc.paragraph(note, note=True)


def config_section(doc: Document, ctx: ReportContext) -> None:
    """Stages, run settings, data and library versions as recorded in config.json."""
    doc.section("Configuration")
    representative: dict[str, RunRecord] = {}
    for variant in ctx.variants:
        for strategy in ctx.strategies_of(variant):
            representative.setdefault(strategy, ctx.by_group[(variant, strategy)][0])
    doc.paragraph("Stages and settings as recorded in config.json of each strategy's first run.", note=True)
    for strategy, run in representative.items():
        stages = run.stages
        doc.subsection(f"Stages: {strategy}")
        if not stages:
            doc.paragraph("No stages recorded.", note=True)
            continue
        keys = [k for k in _STAGE_KEYS if any(k in s for s in stages)]
        keys += [k for s in stages for k in s if k not in keys and k not in _STAGE_KEYS]
        keys = list(dict.fromkeys(keys))
        doc.table(
            ["#", *keys],
            [
                [Cell(str(i), numeric=True), *(Cell(_fmt_value(s.get(k))) for k in keys)]
                for i, s in enumerate(stages, start=1)
            ],
        )

    doc.subsection("Run settings")
    settings = {s: r.config.get("run") or {} for s, r in representative.items()}
    keys = list(dict.fromkeys(k for run in settings.values() for k in run if k not in _NOT_SETTINGS))
    doc.table(
        ["Setting", *settings],
        [[Cell(k), *(Cell(_fmt_value(run.get(k))) for run in settings.values())] for k in keys],
    )

    doc.subsection("Data")
    rows = []
    for variant in ctx.variants:
        config = ctx.first(variant).config
        data = config.get("data") or {}
        rows.append(
            [
                Cell(variant),
                Cell(_fmt_value(data.get("train"))),
                Cell(_fmt_value(data.get("eval"))),
                Cell(_fmt_value(data.get("test"))),
                Cell(_fmt_value(config.get("variant_info") or {})),
            ]
        )
    doc.table(["Variant", "Train", "Eval", "Test", "Variant info"], rows)

    doc.subsection("Library versions")
    versions: dict[str, set[str]] = defaultdict(set)
    for run in ctx.runs:
        if run.config.get("tailtune_version"):
            versions["tailtune"].add(str(run.config["tailtune_version"]))
        for name, version in (run.config.get("versions") or {}).items():
            versions[str(name)].add(_fmt_value(version))
    if versions:
        doc.table(
            ["Package", "Version"],
            [[Cell(name), Cell(", ".join(sorted(found)))] for name, found in sorted(versions.items())],
        )
        if any(len(found) > 1 for found in versions.values()):
            doc.paragraph("Some packages differ between runs; all versions seen are listed.", note=True)
    else:
        doc.paragraph("No versions recorded.", note=True)


#: The sections, in report order.
SECTIONS: tuple[Callable[[Document, ReportContext], None], ...] = (
    summary_section,
    distribution_section,
    macro_f1_section,
    ratio_section,
    per_class_section,
    confusion_section,
    examples_section,
    config_section,
)
