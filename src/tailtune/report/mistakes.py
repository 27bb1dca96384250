"""The report's sections on where the models err: the confusions of each strategy and misclassified tail examples."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from tailtune.classtable import top_confusions
from tailtune.data.visible import printed_label
from tailtune.errors import TailTuneError
from tailtune.report import plots
from tailtune.report.context import CONFUSION_CLASSES, LISTED, ReportContext, count
from tailtune.report.document import Cell, Document
from tailtune.runs.records import RunRecord
from tailtune.task import DEFAULT_TASK, LABEL_SET_SEPARATOR

# Records carry the package name, the one users configure and see in the log format.
logger = logging.getLogger(__package__)

#: Misclassified texts are cut to about this many characters.
TEXT_LIMIT = 300
#: Misclassified tail examples shown per strategy and variant.
EXAMPLES_PER_STRATEGY = 3


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
            titles[strategy] = f"{strategy} ({count(used, 'seed')})"
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


def _pick_errors(frame: pd.DataFrame, tail: list[str], limit: int, *, label_sets: bool = False) -> list[pd.Series]:
    """Most confident errors, taking the tail classes in turn (in the given order) so one class does not fill
    the table. With ``label_sets`` (cells of names joined by ``|``), an error on a tail label is a text that
    carries it and was not given it."""
    if label_sets:
        frame = _missed_labels(frame, tail)
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


def _missed_labels(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One row per (text, label of ``names`` it carries but was not predicted), ``label`` the missed label and
    ``predicted`` the text's predicted label set."""
    truth = frame["label"].map(lambda cell: set(cell.split(LABEL_SET_SEPARATOR)))
    given = frame["predicted"].map(lambda cell: set(cell.split(LABEL_SET_SEPARATOR)))
    parts = [frame[truth.map(lambda s, n=name: n in s) & ~given.map(lambda s, n=name: n in s)].assign(label=name)
             for name in names]  # fmt: skip
    missed = pd.concat(parts) if parts else frame.iloc[:0]
    return missed.assign(predicted=missed["predicted"].replace("", "(none)"))


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
            picked = _pick_errors(frame, tail, EXAMPLES_PER_STRATEGY, label_sets=run.task != DEFAULT_TASK)
            if not picked:
                clean.append(f"{strategy} (seed {run.seed})")
            for example in picked:
                score = example["score"]
                rows.append(
                    [
                        Cell(f"{strategy} (seed {run.seed})"),
                        Cell(example["label"], label=True),
                        Cell(example["predicted"], label=True),
                        Cell("-" if score != score else f"{score:.2f}", numeric=True),
                        Cell(_truncate(example["text"]), wide=True),
                    ]
                )
        doc.paragraph(f"Tail classes: {', '.join(map(printed_label, tail))}.", note=True)
        if rows:
            doc.table(["Strategy", "True label", "Predicted", "Score", "Text"], rows)
        if clean:
            doc.paragraph(f"No misclassified tail examples: {', '.join(clean)}.", note=True)
        for note in notes:
            doc.paragraph(note, note=True)
