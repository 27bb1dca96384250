"""``tailtune demo``: the method on real data, fully offline.

BBC News (de-duplicated) is split into a balanced test set (60 per topic), a balanced validation set
(40 per topic) and a long-tailed training set (exponential profile, 300 down to 6, ratio 50) made from the
rest. The classic baseline ``tfidf`` (TF-IDF and a linear SVM, no transformer: seconds) comes first; then the
embedded all-MiniLM-L6-v2 is fine-tuned with ``vanilla``, ``reweight`` and ``two-stage`` at fixed
budgets, and once more with tailtune's defaults (``default``: the two-stage strategy with budgets in steps,
mean pooling, each stage's best epoch on the validation set and a decision rule chosen there).

The fixed budgets below were chosen by hand on the validation set only (``benchmarks/demo_budget.py``), under
the constraint that the whole demo finishes within 10 minutes on a 2-core CPU; see ``benchmarks/README.md``.
They run as they were chosen: the stock [CLS] head, the last epoch and the plain argmax.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from tailtune.config import RunConfig
from tailtune.data.builtin import bbc_news, minilm_path
from tailtune.data.imbalance import class_counts, holdout_then_long_tail
from tailtune.data.types import Splits, TextDataset
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config

logger = logging.getLogger(__name__)

TEST_PER_CLASS = 60
VAL_PER_CLASS = 40
RATIO = 50
MAX_PER_CLASS = 300
SPLIT_SEED = 0
# Ranks the topics from head to tail: sports 300, business 112, entertainment 42, politics 15, tech 6.
ORDER_SEED = 8
RUN_SEED = 1

# Shared by every fixed-budget strategy; per-strategy stage settings are in DEMO_STAGES.
DEMO_RUN = {"max_length": 128, "batch_size": 16, "seed": RUN_SEED, "pooling": "cls", "select_metric": "none",
            "calibrate": "none", "attention_dropout": None}  # fmt: skip
DEMO_STAGES: dict[str, dict[str, Any]] = {
    "vanilla": {"epochs": 2, "lr": 3e-4, "min_steps": 0},
    "reweight": {"epochs": 2, "lr": 3e-4, "min_steps": 0},
    "two-stage": {"epochs": 2, "lr": [1e-3, 3e-4], "min_steps": 0},
}
# The row that shows what `tailtune train` does with no budget flags (the validation split is the demo's).
DEFAULT_ROW = "default"
# The classic baseline at its own defaults: what fine-tuning has to beat, trained in seconds and without a model.
TFIDF_ROW = "tfidf"
#: Every row, in the order the demo runs and prints them.
DEMO_ROWS = (TFIDF_ROW, *DEMO_STAGES, DEFAULT_ROW)


def demo_splits() -> tuple[TextDataset, TextDataset, TextDataset]:
    """``(train, validation, test)`` of the demo: long-tailed train, balanced validation and test."""
    split = holdout_then_long_tail(
        bbc_news(), ratio=RATIO, profile="exp", max_per_class=MAX_PER_CLASS, test_per_class=TEST_PER_CLASS,
        eval_per_class=VAL_PER_CLASS, eval_from="rest", seed=SPLIT_SEED, tail_seed=ORDER_SEED,
    )  # fmt: skip
    train, validation, test = split.train, split.eval, split.test
    train.source, validation.source, test.source = (
        "bbc-news long-tailed train",
        "bbc-news validation",
        "bbc-news test",
    )
    return train, validation, test


def demo_config(strategy: str, **changes: Any) -> RunConfig:
    """The demo's run config for one row (``changes`` override run settings or stage shortcuts)."""
    if strategy == TFIDF_ROW:  # no model, and none of the fine-tuning settings, which a TF-IDF run refuses
        return build_run_config(None, strategy, settings={"seed": RUN_SEED, **changes})
    if strategy == DEFAULT_ROW:
        config = build_run_config(minilm_path(), settings={"seed": RUN_SEED, **changes})
        # Its strategy is two-stage, as the row above with other settings and the same seed: named by its row,
        # the runs stay two strategies in `tailtune report`, which refuses to pool them as seeds of one.
        return dataclasses.replace(config, strategy=DEFAULT_ROW)
    return build_run_config(minilm_path(), strategy, settings={**DEMO_RUN, **DEMO_STAGES.get(strategy, {}), **changes})


def run_demo(output: str | Path, *, strategies: list[str] | None = None, show_progress: bool = True) -> dict:
    """Train the demo's rows into ``output/<row>/``; returns metrics by row (fixed budgets, then the default).

    Args:
        output: Folder for the run directories.
        strategies: Rows to run (``tfidf``, the fixed-budget strategies, or ``default``); all of them
            (:data:`DEMO_ROWS`) by default.
        show_progress: Progress bars.
    """
    strategies = strategies or list(DEMO_ROWS)
    train, validation, test = demo_splits()
    logger.info("demo data: %d train (%s), %d validation, %d test", len(train),
                ", ".join(f"{k} {v}" for k, v in class_counts(train.labels).items()), len(validation),
                len(test))  # fmt: skip
    results = {}
    for strategy in strategies:
        logger.info("demo: training %s", strategy)
        results[strategy] = train_run(
            demo_config(strategy), Splits(train, validation, test), Path(output) / strategy,
            overwrite=True, show_progress=show_progress,
        )  # fmt: skip
    return results


def format_demo_table(results: dict[str, dict]) -> str:
    """Validation and test macro-F1, test micro-F1 and per-class test F1 (head to tail) of each row."""
    first = results[next(iter(results))]["per_class"]
    head_to_tail = sorted(first, key=lambda name: -first[name]["train_count"])
    header = f"{'strategy':<12} {'val-F1':>7} {'macro-F1':>8} {'micro-F1':>8} {'time':>6} " + " ".join(
        f"{name[:9] + '(' + str(first[name]['train_count']) + ')':>14}" for name in head_to_tail
    )
    lines = [header, "-" * len(header)]
    for strategy, metrics in results.items():
        # A topic with no test example and no prediction has no F1: "-", not 0.
        cells = " ".join(_cell(metrics["per_class"][name]["f1"], 14) for name in head_to_tail)
        validation = (metrics.get("eval") or {}).get("macro_f1", float("nan"))
        lines.append(
            f"{strategy:<12} {validation:>7.3f} {metrics['macro_f1']:>8.3f} "
            f"{metrics['micro_f1']:>8.3f} {metrics['wall_time_s']:>5.0f}s {cells}"
        )
    return "\n".join(lines)


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"
