"""Aggregate runs over seeds and compare each strategy with a baseline.

For every (variant, strategy) pair the summary gives the mean and sample standard deviation over seeds of
the headline metrics and of every class's F1, and, against the baseline strategy of the same variant
(runs paired by seed), the per-seed wins/losses/ties on macro-F1, the mean difference and two paired
significance tests:

* ``p_ttest`` -- two-sided paired t-test (``scipy.stats.ttest_rel``) on macro-F1. This is the primary test:
  with the 3-5 seeds an experiment usually has, it is the only one that can reach small p-values.
* ``p_wilcoxon`` -- two-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) on the same pairs, which
  does not assume normal differences but is coarse with few seeds: its exact p-value cannot go below 0.25
  with 3 pairs, 0.125 with 4 and 0.0625 with 5, however large the gain.

Both are None for the baseline itself, when the variant has no baseline runs, when fewer than two seeds
pair up, or when the test is undefined (all differences zero for the t-test).

A metric a run did not measure (None in its ``metrics.json``: tail F1 on a test set without a tail class, the
F1 of a class with no test example and no prediction) is left out of the mean, never counted as 0; each row
says how many seeds measured each metric (``<metric>_n_seeds``, ``per_class_f1_n_seeds``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from tailtune.fileio import write_atomic, write_json
from tailtune.runs.records import RunRecord, check_poolable, natural_key, require_runs
from tailtune.runs.rundir import SUMMARY_CSV, SUMMARY_JSON, find_failures

logger = logging.getLogger(__name__)

#: The metrics aggregated over seeds, in display order; :data:`MULTILABEL_METRICS` where every run is multi-label
#: (balanced accuracy is a single-label score; samples-F1 scores each text's label set).
METRICS: tuple[str, ...] = ("macro_f1", "micro_f1", "balanced_accuracy", "tail_f1")
MULTILABEL_METRICS: tuple[str, ...] = ("macro_f1", "micro_f1", "samples_f1", "tail_f1")
METRIC_TITLES: dict[str, str] = {
    "macro_f1": "Macro-F1",
    "micro_f1": "Micro-F1",
    "balanced_accuracy": "Balanced acc.",
    "samples_f1": "Samples-F1",
    "tail_f1": "Tail F1",
}
#: Two macro-F1 scores closer than this count as a tie (they come from identical predictions).
TIE_TOLERANCE = 1e-9

TESTS_NOTE = (
    "p_ttest: two-sided paired t-test on macro-F1 against the baseline, runs paired by seed (primary). "
    "p_wilcoxon: two-sided Wilcoxon signed-rank test on the same pairs; with 3, 4 or 5 seeds it cannot "
    "go below p=0.25, 0.125 or 0.0625. std: sample standard deviation over seeds (ddof=1), null with one "
    "seed."
)

_COMPARISON_FIELDS = ("n_pairs", "wins", "losses", "ties", "mean_diff", "p_ttest", "p_wilcoxon")


def _float_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None, int]:
    """Mean and sample std (ddof=1) of the non-null values, and their number; std is None with fewer than two."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None, 0
    mean = float(np.mean(present))
    std = float(np.std(present, ddof=1)) if len(present) > 1 else None
    return mean, std, len(present)


def strategy_order(strategies: list[str] | set[str], baseline: str) -> list[str]:
    """Strategies in display order: the baseline first, then by name."""
    return sorted(set(strategies), key=lambda s: (s != baseline, natural_key(s)))


def variant_order(runs: list[RunRecord]) -> list[str]:
    """Variants in display order: by imbalance ratio where recorded, then by name."""
    ratios: dict[str, float] = {}
    for run in runs:
        if run.ratio is not None:
            ratios.setdefault(run.variant, run.ratio)
    names = {run.variant for run in runs}
    return sorted(names, key=lambda v: (v not in ratios, ratios.get(v, 0.0), natural_key(v)))


def _by_seed(runs: list[RunRecord]) -> dict[int, float | None]:
    # One run per seed: summarize refuses a group where two runs share a seed.
    return {run.seed: _float_or_none(run.metrics.get("macro_f1")) for run in runs}


def compare_paired(scores: list[float], baseline_scores: list[float]) -> dict[str, Any]:
    """Compare paired macro-F1 scores (same seeds, same order) with the baseline's.

    Args:
        scores: The strategy's score per seed.
        baseline_scores: The baseline's score for the same seeds.

    Returns:
        ``n_pairs``, ``wins``, ``losses``, ``ties``, ``mean_diff`` (strategy minus baseline), ``p_ttest``
        (paired t-test, primary) and ``p_wilcoxon`` (Wilcoxon signed-rank); the tests are None with fewer
        than two pairs or when undefined.
    """
    diffs = np.asarray(scores, dtype=float) - np.asarray(baseline_scores, dtype=float)
    result: dict[str, Any] = {
        "n_pairs": int(diffs.size),
        "wins": int(np.sum(diffs > TIE_TOLERANCE)),
        "losses": int(np.sum(diffs < -TIE_TOLERANCE)),
        "ties": int(np.sum(np.abs(diffs) <= TIE_TOLERANCE)),
        "mean_diff": float(diffs.mean()) if diffs.size else None,
        "p_ttest": None,
        "p_wilcoxon": None,
    }
    if diffs.size < 2:
        return result
    # Degenerate inputs (identical scores) make scipy warn and return NaN; NaN becomes None below.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if np.any(np.abs(diffs) > TIE_TOLERANCE):
            result["p_ttest"] = _float_or_none(stats.ttest_rel(scores, baseline_scores).pvalue)
        # Wilcoxon raises when no difference is usable; the field then stays None.
        with contextlib.suppress(ValueError):
            result["p_wilcoxon"] = _float_or_none(stats.wilcoxon(diffs).pvalue)
    return result


def summarize(runs: list[RunRecord], *, baseline: str = "vanilla") -> dict:
    """Aggregate runs per (variant, strategy) and compare each strategy with the baseline.

    Args:
        runs: Complete runs, e.g. from :func:`tailtune.runs.records.find_runs`.
        baseline: The strategy every other strategy of the same variant is compared with.

    Returns:
        ``{"baseline", "metrics", "tests", "rows"}``. Each row holds ``variant``, ``strategy``, ``ratio``,
        ``n_seeds``, ``seeds``, ``<metric>_mean`` / ``<metric>_std`` / ``<metric>_n_seeds`` (the seeds that
        measured it) for each metric of ``metrics`` (:func:`metrics_of`), ``per_class_f1_mean`` / ``per_class_f1_std`` /
        ``per_class_f1_n_seeds`` (class name to value, in label order), and the
        baseline comparison ``n_pairs``, ``wins``, ``losses``, ``ties`` (per seed, on macro-F1),
        ``mean_diff`` (strategy minus baseline), ``p_ttest`` (paired t-test, the primary test) and
        ``p_wilcoxon`` (Wilcoxon signed-rank; with 3/4/5 seeds it cannot go below 0.25/0.125/0.0625).
        Standard deviations are sample ones (ddof=1) and None with a single seed. Comparison fields are
        None for the baseline row and for variants without baseline runs; the tests are also None with
        fewer than two seed pairs. Means and stds skip the seeds that did not measure a metric (None).
        Rows are ordered by variant (imbalance ratio, then name) and strategy (baseline first).

    Raises:
        TailTuneError: If the runs of one variant differ in their data, or those of one (variant, strategy)
            in a setting or stage, or two of them share a seed (:func:`tailtune.runs.records.check_poolable`): a
            mean or comparison of unrelated runs would look like a result.
    """
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for run in runs:
        groups[(run.variant, run.strategy)].append(run)
    check_poolable(runs)

    metrics = metrics_of(runs)
    rows: list[dict[str, Any]] = []
    for variant in variant_order(runs):
        strategies = strategy_order({s for v, s in groups if v == variant}, baseline)
        baseline_scores = _by_seed(groups.get((variant, baseline), []))
        for strategy in strategies:
            members = sorted(groups[(variant, strategy)], key=lambda r: r.seed)
            row: dict[str, Any] = {
                "variant": variant,
                "strategy": strategy,
                "ratio": members[0].ratio,
                "n_seeds": len(members),
                "seeds": [r.seed for r in members],
            }
            for metric in metrics:
                values = [_float_or_none(r.metrics.get(metric)) for r in members]
                row[f"{metric}_mean"], row[f"{metric}_std"], row[f"{metric}_n_seeds"] = _mean_std(values)
            row["per_class_f1_mean"], row["per_class_f1_std"], row["per_class_f1_n_seeds"] = _per_class(members)
            row["baseline"] = baseline
            row.update(dict.fromkeys(_COMPARISON_FIELDS))
            if strategy != baseline and baseline_scores:
                scores = _by_seed(members)
                seeds = sorted(
                    s for s in scores if s in baseline_scores and None not in (scores[s], baseline_scores[s])
                )
                if seeds:
                    row.update(compare_paired([scores[s] for s in seeds], [baseline_scores[s] for s in seeds]))
            rows.append(row)
    return {"baseline": baseline, "metrics": list(metrics), "tests": TESTS_NOTE, "rows": rows}


def metrics_of(runs: list[RunRecord]) -> tuple[str, ...]:
    """The metrics a summary of ``runs`` shows: :data:`MULTILABEL_METRICS` where every run is multi-label."""
    return MULTILABEL_METRICS if runs and all(run.task == "multi-label" for run in runs) else METRICS


def _per_class(
    members: list[RunRecord],
) -> tuple[dict[str, float | None], dict[str, float | None], dict[str, int]]:
    # Class order follows the labels of the first run; classes only some seeds report are appended.
    names: list[str] = list(members[0].labels)
    values: dict[str, list[float | None]] = defaultdict(list)
    for run in members:
        for name, row in (run.metrics.get("per_class") or {}).items():
            if name not in names:
                names.append(name)
            values[name].append(_float_or_none((row or {}).get("f1")))
    means: dict[str, float | None] = {}
    stds: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    for name in names:
        means[name], stds[name], counts[name] = _mean_std(values.get(name, []))
    return means, stds, counts


def csv_columns(metrics: Sequence[str] = METRICS) -> list[str]:
    """The columns of ``summary.csv`` showing ``metrics``, in order."""
    columns = ["variant", "strategy", "ratio", "n_seeds", "seeds"]
    for metric in metrics:
        columns += [f"{metric}_mean", f"{metric}_std", f"{metric}_n_seeds"]
    return columns + ["baseline", *_COMPARISON_FIELDS]


def _csv_text(summary: dict) -> str:
    buffer = io.StringIO()
    columns = csv_columns(summary.get("metrics", METRICS))
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in summary["rows"]:
        flat = {key: ("" if value is None else value) for key, value in row.items()}
        flat["seeds"] = ";".join(str(s) for s in row["seeds"])
        writer.writerow(flat)
    return buffer.getvalue()


def write_summary(root: str | Path, *, baseline: str = "vanilla") -> tuple[Path, Path]:
    """Summarise the runs under ``root`` into ``root/summary.csv`` and ``root/summary.json``.

    ``summary.json`` also lists the runs that failed (``failed``: run folder and reason), which the averages
    leave out.

    Args:
        root: An experiment folder (or a single run directory).
        baseline: The strategy the others are compared with.

    Returns:
        The paths of the CSV and JSON files.

    Raises:
        TailTuneError: If ``root`` is not a directory or holds no complete run.
    """
    root_path = Path(root)
    summary = summarize(require_runs(root_path), baseline=baseline)
    summary["failed"] = find_failures(root_path)
    csv_path = root_path / SUMMARY_CSV
    json_path = root_path / SUMMARY_JSON
    write_atomic(csv_path, _csv_text(summary))
    write_json(json_path, summary)
    logger.info("Wrote %s and %s", csv_path, json_path)
    return csv_path, json_path


def fmt_mean_std(mean: float | None, std: float | None, digits: int = 3) -> str:
    """``0.812 ± 0.014``; the mean alone with one seed; ``-`` when missing."""
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def fmt_over_seeds(row: dict, key: str, name: str | None = None, digits: int = 3) -> str:
    """A summary row's mean ± std of ``key`` (a metric, or ``per_class_f1`` with a class ``name``).

    ``not measured`` when no seed measured it; ``(2 of 3 seeds)`` after the value when only some did.
    """
    values = [row.get(f"{key}_{part}") for part in ("mean", "std", "n_seeds")]
    if name is not None:
        values = [(value or {}).get(name) for value in values]
    mean, std, measured = values
    if mean is None:
        return "not measured"
    text = fmt_mean_std(mean, std, digits)
    if measured is not None and measured < row["n_seeds"]:
        text += f" ({measured} of {row['n_seeds']} seeds)"
    return text


def fmt_p(p: float | None) -> str:
    """A p-value with three decimals, ``<0.001`` below that, ``-`` when missing."""
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_diff(diff: float | None) -> str:
    """A signed difference, ``+0.021``; ``-`` when missing."""
    return "-" if diff is None else f"{diff:+.3f}"


def fmt_wlt(row: dict) -> str:
    """Wins/losses/ties as ``3/0/0``; ``-`` for rows without a comparison."""
    return "-" if row.get("wins") is None else f"{row['wins']}/{row['losses']}/{row['ties']}"


def format_table(summary: dict) -> str:
    """Render a summary as a plain-text table for the terminal (mean ± std over seeds).

    Args:
        summary: The result of :func:`summarize`.

    Returns:
        The table, followed by a note on the baseline comparison columns.
    """
    baseline = summary.get("baseline", "vanilla")
    metrics = summary.get("metrics", METRICS)
    header = ["variant", "strategy", "seeds", *(METRIC_TITLES[m] for m in metrics)]
    header += [f"Δ macro-F1 vs {baseline}", "W/L/T", "p (t-test)", "p (Wilcoxon)"]
    body = [
        [
            row["variant"],
            row["strategy"],
            str(row["n_seeds"]),
            *(fmt_over_seeds(row, m) for m in metrics),
            fmt_diff(row["mean_diff"]),
            fmt_wlt(row),
            fmt_p(row["p_ttest"]),
            fmt_p(row["p_wilcoxon"]),
        ]
        for row in summary["rows"]
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    left = 2  # variant and strategy are text; numbers align right

    def render(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [render(header), "  ".join("-" * w for w in widths), *(render(line) for line in body)]
    lines.append(
        "mean ± sample std over the seeds that measured the metric (not measured: e.g. tail F1 of a test set "
        f"without a tail class). W/L/T: seeds where macro-F1 beats/trails/ties {baseline}; "
        "p (t-test): paired t-test (primary); p (Wilcoxon): signed-rank, cannot go below 0.25 with 3 seeds "
        "or 0.0625 with 5."
    )
    return "\n".join(lines)
