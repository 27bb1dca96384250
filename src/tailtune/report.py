"""Build a report (one self-contained HTML file plus Markdown) from run directories.

The report reads run directories only. The HTML embeds its figures as base64 PNG and its CSS inline, and a
Content-Security-Policy forbids anything else, so the file can be mailed or archived on its own. Every string
that comes from the runs (labels, texts, names, paths, configs) is escaped before it reaches HTML or Markdown.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailtune import __version__, plots
from tailtune.errors import TailTuneError
from tailtune.fileio import write_atomic
from tailtune.runs import RunRecord, no_runs_error, require_runs, scan_runs
from tailtune.summary import (
    METRIC_TITLES,
    METRICS,
    fmt_diff,
    fmt_mean_std,
    fmt_p,
    fmt_wlt,
    strategy_order,
    summarize,
    variant_order,
)

logger = logging.getLogger(__name__)

#: Misclassified texts are cut to about this many characters.
TEXT_LIMIT = 300
#: Misclassified tail examples shown per strategy and variant.
EXAMPLES_PER_STRATEGY = 3
_STAGE_KEYS = ("name", "trainable", "loss", "weights", "lr", "epochs")
# Shown elsewhere (stages have their own tables) or differing per run by design.
_NOT_SETTINGS = ("seed", "strategy", "stages")

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: #1f2328; line-height: 1.5; font-size: 15px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans",
  sans-serif; }
main { max-width: 1140px; margin: 0 auto; padding: 2rem 2rem 3rem; background: #fff; min-height: 100vh;
  box-shadow: 0 0 0 1px #eaecef; }
h1 { font-size: 1.75rem; margin: 0 0 .25rem; letter-spacing: -.01em; }
h2 { font-size: 1.3rem; margin: 2.6rem 0 .8rem; padding-bottom: .35rem; border-bottom: 1px solid #d8dee4; }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
p { margin: .5rem 0; }
ul { margin: .4rem 0; padding-left: 1.3rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em;
  background: #f2f4f7; padding: .05rem .3rem; border-radius: 4px; }
.meta, .note, figcaption { color: #59636e; font-size: .9rem; }
nav { margin: 1.2rem 0 0; padding: .7rem 1rem; background: #f6f8fa; border: 1px solid #e4e7eb;
  border-radius: 6px; font-size: .9rem; }
nav { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; }
nav a { color: #2f5d9e; text-decoration: none; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
.table-wrap { overflow-x: auto; margin: .6rem 0 1rem; }
table { border-collapse: collapse; font-size: .85rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #dfe3e8; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; white-space: nowrap; }
td.nw { white-space: nowrap; }
td.text { max-width: 34rem; overflow-wrap: anywhere; }
td strong { color: #17457c; }
details { margin: .5rem 0; }
summary { cursor: pointer; font-weight: 600; padding: .25rem 0; }
figure { margin: .8rem 0 1.4rem; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eef0f3; border-radius: 4px; }
figcaption { margin-top: .35rem; }
footer { margin-top: 3rem; padding-top: .8rem; border-top: 1px solid #eaecef; color: #8c959f;
  font-size: .82rem; }
"""

# Defence in depth: even if some string escaped escaping, the page may load no script and nothing remote.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~!{}])")


def _md(text: object) -> str:
    """Escape a data string for Markdown: one line, ``<>&`` as entities, other markup backslash-escaped.

    Entities (rather than backslashes) for ``<`` keep raw HTML out even of renderers that ignore escapes.
    """
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(str(text).split()), quote=False))


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


@dataclass
class Cell:
    """A table cell: plain text (escaped on output), optionally right-aligned as a number or in bold."""

    text: str
    numeric: bool = False
    strong: bool = False
    wide: bool = False


@dataclass
class _Doc:
    """Accumulates the same content as HTML and as Markdown."""

    files_dir: str
    html_parts: list[str] = field(default_factory=list)
    md_parts: list[str] = field(default_factory=list)
    toc: list[tuple[str, str]] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)

    def section(self, title: str) -> None:
        anchor = _slug(title)
        self.toc.append((anchor, title))
        self.html_parts.append(f'<h2 id="{_h(anchor)}">{_h(title)}</h2>')
        self.md_parts.append(f"## {_md(title)}\n")

    def subsection(self, title: str) -> None:
        self.html_parts.append(f"<h3>{_h(title)}</h3>")
        self.md_parts.append(f"### {_md(title)}\n")

    def open_details(self, title: str) -> None:
        """Start a block that HTML shows folded (a heading in Markdown); end it with close_details."""
        self.html_parts.append(f"<details><summary>{_h(title)}</summary>")
        self.md_parts.append(f"### {_md(title)}\n")

    def close_details(self) -> None:
        self.html_parts.append("</details>")

    def paragraph(self, text: str, *, note: bool = False) -> None:
        css = ' class="note"' if note else ""
        self.html_parts.append(f"<p{css}>{_h(text)}</p>")
        self.md_parts.append(f"{'*' if note else ''}{_md(text)}{'*' if note else ''}\n")

    def bullets(self, items: list[str]) -> None:
        self.html_parts.append("<ul>" + "".join(f"<li>{_h(item)}</li>" for item in items) + "</ul>")
        self.md_parts.append("".join(f"- {_md(item)}\n" for item in items))

    def table(self, header: list[str], rows: list[list[Cell | str]]) -> None:
        cells = [[c if isinstance(c, Cell) else Cell(str(c)) for c in row] for row in rows]
        numeric = [bool(cells) and all(row[i].numeric for row in cells) for i in range(len(header))]
        head = "".join(
            f'<th style="text-align:right">{_h(h)}</th>' if numeric[i] else f"<th>{_h(h)}</th>"
            for i, h in enumerate(header)
        )
        body = []
        for row in cells:
            tds = []
            for cell in row:
                # Short names stay on one line; long texts and paths may wrap.
                css = "num" if cell.numeric else "text" if cell.wide else "nw" if len(cell.text) <= 24 else ""
                content = f"<strong>{_h(cell.text)}</strong>" if cell.strong else _h(cell.text)
                tds.append(f'<td class="{css}">{content}</td>' if css else f"<td>{content}</td>")
            body.append("<tr>" + "".join(tds) + "</tr>")
        self.html_parts.append(
            f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
        )
        md = ["| " + " | ".join(_md(h) for h in header) + " |"]
        md.append("|" + "|".join("---:" if numeric[i] else "---" for i in range(len(header))) + "|")
        for row in cells:
            md.append("| " + " | ".join(f"**{_md(c.text)}**" if c.strong else _md(c.text) for c in row) + " |")
        self.md_parts.append("\n".join(md) + "\n")

    def figure(self, name: str, png: bytes, alt: str, caption: str) -> None:
        filename = f"{len(self.images) + 1:02d}-{_slug(name)}.png"
        self.images[filename] = png
        data = base64.b64encode(png).decode("ascii")
        self.html_parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_h(alt)}">'
            f"<figcaption>{_h(caption)}</figcaption></figure>"
        )
        self.md_parts.append(f"![{_md(alt)}]({self.files_dir}/{filename})\n\n*{_md(caption)}*\n")


class _Context:
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

    def strategies_of(self, variant: str) -> list[str]:
        return [s for s in self.strategies if (variant, s) in self.by_group]

    def first(self, variant: str) -> RunRecord:
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

    def per_class_panels(self) -> list[tuple[str, dict[str, int], dict[str, dict[str, float | None]]]]:
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
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _section_summary(doc: _Doc, ctx: _Context) -> None:
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
            text = fmt_mean_std(row[f"{metric}_mean"], row[f"{metric}_std"])
            cells.append(Cell(text, numeric=True, strong=metric == "macro_f1" and is_best))
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
        f"each variant is in bold. Δ is the mean per-seed difference in macro-F1 from {baseline} on the "
        "same seeds; W/L/T counts seeds where macro-F1 is higher / lower / equal. p (t-test) is a two-sided "
        "paired t-test on macro-F1 and is the primary test; p (Wilcoxon) is the two-sided signed-rank test, "
        "which cannot go below 0.25 with 3 seeds or 0.0625 with 5, whatever the gain.",
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


def _section_distribution(doc: _Doc, ctx: _Context) -> None:
    doc.section("Training class distribution")
    panels = []
    for variant in ctx.variants:
        counts = ctx.first(variant).train_counts
        panels.append((variant, list(counts), list(counts.values()), ctx.groups_of(variant)))
    doc.figure(
        "class-distribution",
        plots.to_png(plots.class_distribution(panels)),
        "Training examples per class for each variant",
        "Training examples per class (from config.json of each variant's first run), coloured by the "
        "head / medium / tail group used for the group F1 scores.",
    )


def _section_macro_f1(doc: _Doc, ctx: _Context) -> None:
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


def _section_ratio(doc: _Doc, ctx: _Context) -> None:
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


def _section_per_class(doc: _Doc, ctx: _Context) -> None:
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
        groups = ctx.groups_of(variant)
        counts = ctx.first(variant).train_counts
        doc.open_details(f"Per-class F1 table: {variant} ({len(counts)} classes)")
        rows = []
        for name, count in counts.items():
            cells = [Cell(name), Cell(groups.get(name, "-")), Cell(str(count), numeric=True)]
            for strategy in strategies:
                row = ctx.rows[(variant, strategy)]
                mean = row["per_class_f1_mean"].get(name)
                cells.append(Cell(fmt_mean_std(mean, row["per_class_f1_std"].get(name)), numeric=True))
            rows.append(cells)
        doc.table(["Class", "Group", "Train examples", *(f"F1 {s}" for s in strategies)], rows)
        doc.close_details()


def _summed_confusion(runs: list[RunRecord]) -> tuple[list[str], np.ndarray, int]:
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


def _section_confusion(doc: _Doc, ctx: _Context) -> None:
    doc.section("Confusion matrices")
    doc.paragraph(
        "Summed over all seeds of each strategy, then normalised by row: each row shows where the test "
        "examples of one true class went.",
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
            titles[strategy] = f"{strategy} ({used} seed{'s' if used != 1 else ''})"
        doc.subsection(f"Confusion matrices: {variant}")
        if not matrices:
            doc.paragraph("No confusion matrices in metrics.json.", note=True)
            continue
        doc.figure(
            f"confusion-{variant}",
            plots.to_png(plots.confusion_matrices(labels, matrices, titles)),
            f"Row-normalised confusion matrices for {variant}",
            f"{variant}: rows are true classes, columns predicted classes; counts summed over seeds.",
        )


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
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _section_examples(doc: _Doc, ctx: _Context) -> None:
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


def _section_config(doc: _Doc, ctx: _Context) -> None:
    doc.section("Configuration")
    representative: dict[str, RunRecord] = {}
    for variant in ctx.variants:
        for strategy in ctx.strategies_of(variant):
            representative.setdefault(strategy, ctx.by_group[(variant, strategy)][0])
    doc.paragraph("Stages and settings as recorded in config.json of each strategy's first run.", note=True)
    for strategy, run in representative.items():
        stages = [s for s in run.config.get("stages") or [] if isinstance(s, dict)]
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


def _output_paths(root: Path, output: str | Path | None) -> tuple[Path, Path, Path]:
    if output is None:
        html_path = root / "report.html"
    else:
        html_path = Path(output)
        if html_path.is_dir():
            html_path = html_path / "report.html"
        elif html_path.suffix.lower() not in (".html", ".htm"):
            html_path = html_path.with_suffix(".html")
    md_path = html_path.with_suffix(".md")
    return html_path, md_path, html_path.with_name(f"{html_path.stem}_files")


def _page(doc: _Doc, root: Path, runs: list[RunRecord], n_incomplete: int, ctx: _Context) -> tuple[str, str]:
    seeds = sorted({r.seed for r in runs})
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    skipped = f" ({n_incomplete} incomplete skipped)" if n_incomplete else ""
    facts = (
        f"{len(runs)} complete run{'s' if len(runs) != 1 else ''}{skipped} · "
        f"{len(ctx.variants)} variant{'s' if len(ctx.variants) != 1 else ''} · "
        f"strategies: {', '.join(ctx.strategies)} · seeds: {', '.join(map(str, seeds))} · "
        f"baseline: {ctx.baseline}"
    )
    nav = "".join(f'<a href="#{_h(anchor)}">{_h(title)}</a>' for anchor, title in doc.toc)
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>tailtune report: {_h(root.name or root)}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        "<header><h1>tailtune report</h1>\n"
        f'<p class="meta"><code>{_h(root)}</code> · generated {generated}</p>\n'
        f'<p class="meta">{_h(facts)}</p></header>\n<nav>{nav}</nav>\n'
        + "\n".join(doc.html_parts)
        + f"\n<footer>tailtune {_h(__version__)}. Everything above was read from the run directories under "
        f"<code>{_h(root)}</code>.</footer>\n</main>\n</body>\n</html>\n"
    )
    markdown = (
        f"# tailtune report\n\n`{str(root).replace('`', '')}` · generated {generated}\n\n{_md(facts)}\n\n"
        + "\n".join(doc.md_parts)
    )
    return page, markdown


def build_report(
    root: str | Path,
    *,
    output: str | Path | None = None,
    baseline: str = "vanilla",
    per_class_png: str | Path | None = None,
) -> tuple[Path, Path]:
    """Build the report for the runs under ``root``.

    Sections: summary table (mean ± std over seeds, baseline comparison), training class distribution,
    macro-F1 per strategy, macro-F1 against imbalance ratio (when variants record several ratios), per-class
    F1 against training frequency, confusion matrices (summed over seeds, row-normalised), misclassified
    tail examples (first seed), configuration and library versions.

    Args:
        root: An experiment folder, a demo folder or a single run directory.
        output: Path of the HTML file (an existing directory gets ``report.html`` inside it; another suffix
            is replaced by ``.html``). The Markdown goes next to it with suffix ``.md``, and its images in a
            ``<name>_files/`` folder. Default: ``root/report.html``.
        baseline: The strategy the others are compared with.
        per_class_png: Also write the per-class F1 against training frequency figure to this PNG file.

    Returns:
        The paths of the HTML and Markdown files.

    Raises:
        TailTuneError: If ``root`` is not a directory or holds no complete run.
    """
    root_path = Path(root)
    runs, incomplete = scan_runs(root_path)
    if incomplete:
        logger.warning("Skipped %d incomplete run(s) under %s", len(incomplete), root_path)
    if not runs:
        raise no_runs_error(root_path)
    html_path, md_path, files_dir = _output_paths(root_path, output)
    ctx = _Context(runs, baseline)
    doc = _Doc(files_dir=files_dir.name)
    for section in (
        _section_summary,
        _section_distribution,
        _section_macro_f1,
        _section_ratio,
        _section_per_class,
        _section_confusion,
        _section_examples,
        _section_config,
    ):
        section(doc, ctx)
    page, markdown = _page(doc, root_path, runs, len(incomplete), ctx)

    files_dir.mkdir(parents=True, exist_ok=True)
    # Figures from an earlier report of other variants would otherwise linger next to the new ones.
    for stale in files_dir.glob("*.png"):
        if stale.name not in doc.images:
            stale.unlink()
    for name, png in doc.images.items():
        write_atomic(files_dir / name, png)
    write_atomic(md_path, markdown)
    write_atomic(html_path, page)
    if per_class_png is not None:
        write_atomic(per_class_png, ctx.per_class_png)
    logger.info("Wrote %s and %s", html_path, md_path)
    return html_path, md_path


def save_per_class_plot(root: str | Path, path: str | Path, *, baseline: str = "vanilla") -> Path:
    """Write only the per-class F1 against training frequency figure, as PNG.

    Args:
        root: An experiment folder, a demo folder or a single run directory.
        path: The PNG file to write.
        baseline: Listed first in the legend.

    Returns:
        The path written.

    Raises:
        TailTuneError: If ``root`` is not a directory or holds no complete run.
    """
    out = Path(path)
    write_atomic(out, _Context(require_runs(root), baseline).per_class_png)
    return out
