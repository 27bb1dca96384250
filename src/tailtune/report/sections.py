"""The report's sections: each reads the runs through a :class:`ReportContext` and writes to a :class:`Document`.

:data:`SECTIONS` lists them in report order. Data strings go to the document as they are; it escapes them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from tailtune.classtable import rarest
from tailtune.data.visible import printed_label
from tailtune.experiments.summary import (
    METRIC_TITLES,
    METRICS,
    fmt_diff,
    fmt_mean_std,
    fmt_over_seeds,
    fmt_p,
    fmt_wlt,
)
from tailtune.report import plots
from tailtune.report.context import CONFUSION_CLASSES, LISTED, ReportContext, fmt_value
from tailtune.report.document import Cell, Document
from tailtune.report.mistakes import confusion_section, examples_section
from tailtune.runs.records import RunRecord

# Records carry the package name, the one users configure and see in the log format.
logger = logging.getLogger(__package__)

_STAGE_KEYS = ("name", "trainable", "loss", "weights", "lr", "epochs")
# Shown elsewhere (stages have their own tables) or differing per run by design.
_NOT_SETTINGS = ("seed", "strategy", "stages")


def summary_section(doc: Document, ctx: ReportContext) -> None:
    """The summary table (mean ± std over seeds, comparison with the baseline) and a line per variant."""
    baseline = ctx.baseline
    doc.section("Summary")
    metrics = ctx.summary.get("metrics", METRICS)
    header = ["Variant", "Strategy", "Seeds", *(METRIC_TITLES[m] for m in metrics)]
    header += [f"Δ vs {baseline}", "W/L/T", "p (t-test)", "p (Wilcoxon)"]
    best: dict[str, float] = {}
    for row in ctx.summary["rows"]:
        if row["macro_f1_mean"] is not None:
            best[row["variant"]] = max(best.get(row["variant"], -1.0), row["macro_f1_mean"])
    rows = []
    for row in ctx.summary["rows"]:
        is_best = row["macro_f1_mean"] is not None and row["macro_f1_mean"] == best.get(row["variant"])
        cells = [Cell(row["variant"]), Cell(row["strategy"]), Cell(str(row["n_seeds"]), numeric=True)]
        for metric in metrics:
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
            cells = [Cell(name, label=True), Cell(group), Cell(str(counts[name]), numeric=True),
                     Cell(fmt_value(support.get(name)), numeric=True)]  # fmt: skip
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
        lines.append(f"{printed_label(name)} ({counts[name]} train): {scores}")
    return lines


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
                [Cell(str(i), numeric=True), *(Cell(fmt_value(s.get(k))) for k in keys)]
                for i, s in enumerate(stages, start=1)
            ],
        )

    doc.subsection("Run settings")
    settings = {s: r.config.get("run") or {} for s, r in representative.items()}
    keys = list(dict.fromkeys(k for run in settings.values() for k in run if k not in _NOT_SETTINGS))
    doc.table(
        ["Setting", *settings],
        [[Cell(k), *(Cell(fmt_value(run.get(k))) for run in settings.values())] for k in keys],
    )

    doc.subsection("Data")
    rows = []
    for variant in ctx.variants:
        config = ctx.first(variant).config
        data = config.get("data") or {}
        rows.append(
            [
                Cell(variant),
                Cell(fmt_value(data.get("train"))),
                Cell(fmt_value(data.get("eval"))),
                Cell(fmt_value(data.get("test"))),
                Cell(fmt_value(config.get("variant_info") or {})),
            ]
        )
    doc.table(["Variant", "Train", "Eval", "Test", "Variant info"], rows)

    doc.subsection("Library versions")
    versions: dict[str, set[str]] = defaultdict(set)
    for run in ctx.runs:
        if run.config.get("tailtune_version"):
            versions["tailtune"].add(str(run.config["tailtune_version"]))
        for name, version in (run.config.get("versions") or {}).items():
            versions[str(name)].add(fmt_value(version))
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
