"""Multi-label long tail on reuters90 (Reuters-21578 ModApte, 90 topics): tailtune's rows, one metric code path.

Two modes:

- ``--dev``: settings are compared on a development split of ``train.jsonl`` only: ``--dev-fraction`` of it (20%)
  held out per ``--dev-seeds`` (0 and 1), every row trained on the rest and scored on the held-out texts (a label
  with no text left in the rest is dropped from the held-out texts' sets). ``test.jsonl`` is not read.
- default: every row trained on ``train.jsonl`` and scored on ``test.jsonl``, once per ``--seeds``.

A row (:data:`ROWS`) is one of two kinds:

- ``fit``: the TF-IDF multi-label model fitted in this process through the library
  (:func:`tailtune.models.tfidf_multilabel.fit_label_sets`) with the row's stage, folds, class weights and
  threshold rule, then scored by :func:`tailtune.models.family.evaluate`: the rows that choose the settings;
- ``run``: a strategy trained as ``tailtune train`` trains it (:func:`tailtune.runs.train.train_run`, a run
  directory under ``--out``): the product as a user gets it. A transformer strategy is one more ``run`` row
  (``Row("run", strategy=..., model="builtin:minilm")``).

Every row is scored by its task's metrics (:mod:`tailtune.multilabel_metrics`): micro-F1, macro-F1 over the labels
measured (on the test set all 90: the same as ``macro_f1_all_labels``, Huang et al.'s), samples-F1, Huang et al.'s
tail (<= 8 training texts) and head (>= 35) macro-F1. Wall and CPU seconds (this process's) are recorded beside
the CPU's name; a ``fit`` row's time covers fitting and scoring, a ``run`` row's the whole run.

    python benchmarks/multilabel.py --dev --rows tfidf tfidf-1gram ... --json benchmarks/results/multilabel_dev.json
    python benchmarks/multilabel.py --rows tfidf-strategy --seeds 1 2 3 --json benchmarks/results/multilabel.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tailtune.config import TfidfStage
from tailtune.data.readers import read_dataset
from tailtune.data.types import LabelMap, Splits, TextDataset
from tailtune.models.family import evaluate
from tailtune.models.tfidf_multilabel import LabelSetSettings, fit_label_sets, task_rule
from tailtune.models.tfidf_terms import analyzer_decision
from tailtune.training.thresholds import choose_thresholds, sigmoid

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "reuters90"
#: The figures each row reports (``metrics.json`` keys).
METRICS = ("micro_f1", "macro_f1", "macro_f1_all_labels", "samples_f1", "huang_tail_f1", "huang_head_f1")
#: Huang et al. (EMNLP 2021), Table 2, on the test set: micro-F1, macro-F1 (x 100).
PAPER = {"TF-IDF + one-vs-rest SVM": (87.60, 51.63), "BCE": (89.14, 47.32), "focal": (89.97, 56.83),
         "CB": (89.23, 52.96), "CB-NTR": (90.74, 63.31), "DB": (90.62, 64.47)}  # fmt: skip


def shrunk(min_positives: int, shrinkage: float) -> Callable:
    """The threshold rule of :func:`~tailtune.training.thresholds.choose_thresholds` with these settings."""

    def choose(margins: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        chosen = choose_thresholds(sigmoid(margins), targets, min_positives=min_positives, shrinkage=shrinkage)
        how = {"rule": f"choose_thresholds(min_positives={min_positives}, shrinkage={shrinkage:g})",
               "global_threshold": chosen.global_threshold}  # fmt: skip
        return np.asarray(chosen.thresholds), how

    return choose


def one_threshold(margins: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """One threshold for every label: the one of best out-of-fold micro-F1."""
    chosen = choose_thresholds(sigmoid(margins), targets)
    return np.full(margins.shape[1], chosen.global_threshold), {"rule": "the global threshold for every label"}


def half(margins: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """No thresholds chosen: 0.5 on the sigmoid of the margin, the SVM's own sign."""
    return np.full(margins.shape[1], 0.5), {"rule": "0.5 for every label"}


@dataclass(frozen=True)
class Row:
    """One way to train: ``fit`` (the TF-IDF multi-label model in process, with ``stage``, ``folds``,
    ``class_weight``, ``rule``) or ``run`` (``train_run`` of ``strategy`` with ``settings``, ``stages`` and
    ``model``)."""

    kind: str
    note: str = ""
    stage: dict[str, Any] = field(default_factory=dict)
    folds: int = 5
    class_weight: str | None = None
    rule: Callable = task_rule
    strategy: str | None = None
    model: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    stages: list[dict[str, Any]] | None = None


ONE = {"ngram_max": 1}
MINILM = "builtin:minilm"
ROWS: dict[str, Row] = {
    # The settings compared on the development split.
    "tfidf": Row("fit", "the stage's defaults: word 1-2 grams, min_df 1, sublinear tf, LinearSVC C=1; task rule"),
    "tfidf-half": Row("fit", "1-2 grams, no thresholds (0.5)", rule=half),
    "tfidf-balanced": Row("fit", "1-2 grams, class_weight=balanced", class_weight="balanced"),
    "tfidf-rule-3-5": Row("fit", "1-2 grams, choose_thresholds(min_positives=3, shrinkage=5)", rule=shrunk(3, 5.0)),
    "tfidf-1gram": Row("fit", "word unigrams", stage=ONE),
    "tfidf-1gram-half": Row("fit", "unigrams, no thresholds (0.5)", stage=ONE, rule=half),
    "tfidf-1gram-global": Row("fit", "unigrams, one global threshold", stage=ONE, rule=one_threshold),
    "tfidf-1gram-rule-3-5": Row(
        "fit", "unigrams, choose_thresholds(min_positives=3, shrinkage=5)", stage=ONE, rule=shrunk(3, 5.0)
    ),  # fmt: skip
    "tfidf-1gram-rule-2-3": Row(
        "fit", "unigrams, choose_thresholds(min_positives=2, shrinkage=3)", stage=ONE, rule=shrunk(2, 3.0)
    ),  # fmt: skip
    "tfidf-1gram-mindf2": Row("fit", "unigrams, min_df 2", stage={**ONE, "min_df": 2}),
    "tfidf-1gram-C0.5": Row("fit", "unigrams, C=0.5", stage={**ONE, "C": 0.5}),
    "tfidf-1gram-C2": Row("fit", "unigrams, C=2", stage={**ONE, "C": 2.0}),
    "tfidf-1gram-linear-tf": Row("fit", "unigrams, raw term frequency", stage={**ONE, "sublinear_tf": False}),
    "tfidf-1gram-balanced": Row("fit", "unigrams, class_weight=balanced", stage=ONE, class_weight="balanced"),
    "tfidf-1gram-folds3": Row("fit", "unigrams, 3 folds", stage=ONE, folds=3),
    "tfidf-1gram-folds10": Row("fit", "unigrams, 10 folds", stage=ONE, folds=10),
    "tfidf-1gram-logreg": Row(
        "fit", "unigrams, logistic regression C=10", stage={**ONE, "classifier": "logistic-regression", "C": 10.0}
    ),  # fmt: skip
    # The product: `tailtune train --strategy tfidf`, no flags (word unigrams for label sets, as the development
    # split chose), and naming each reading.
    "tfidf-strategy": Row("run", "tailtune train --strategy tfidf (no flags)", strategy="tfidf"),
    "tfidf-strategy-1gram": Row(
        "run", "tailtune train --strategy tfidf with ngram_max 1", strategy="tfidf", stages=[ONE]
    ),  # fmt: skip
    "tfidf-strategy-2gram": Row(
        "run", "tailtune train --strategy tfidf with ngram_max 2", strategy="tfidf", stages=[{"ngram_max": 2}]
    ),  # fmt: skip
    # The embedded MiniLM as `tailtune train --model builtin:minilm` trains it: the defaults, and the paper's losses
    # throughout (full fine-tuning, the same budgets, validation, refit and per-label thresholds as the defaults).
    "default": Row("run", "tailtune train --model builtin:minilm (no flags)", strategy="two-stage", model=MINILM),
    "bce": Row("run", "--strategy vanilla: full fine-tuning with BCE", strategy="vanilla", model=MINILM),
    "db": Row("run", "--strategy vanilla --loss db", strategy="vanilla", model=MINILM, settings={"loss": "db"}),
    "cb-ntr": Row(
        "run", "--strategy vanilla --loss cb-ntr", strategy="vanilla", model=MINILM, settings={"loss": "cb-ntr"}
    ),  # fmt: skip
}


def read(path: Path) -> TextDataset:
    """A JSON lines file of ``{"text", "labels"}`` as label sets."""
    data = read_dataset(path, label_column="labels")
    if not data.multi_label:  # a reader without label sets: read the lists as they are
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        data = TextDataset([r["text"] for r in rows], [tuple(sorted(set(r["labels"]))) for r in rows], str(path))
    return data


def dev_split(train: TextDataset, fraction: float, seed: int) -> tuple[TextDataset, TextDataset]:
    """``train`` less a held-out ``fraction`` (seeded), and the held-out texts with only the labels left in the
    rest."""
    order = np.random.default_rng(seed).permutation(len(train))
    held = int(round(fraction * len(train)))
    rest, dev = train.subset(np.sort(order[held:])), train.subset(np.sort(order[:held]))
    known = set(LabelMap.from_label_sets(rest.labels).labels)
    labels = [tuple(name for name in row if name in known) for row in dev.labels]
    return rest, TextDataset(dev.texts, labels, f"{train.source} (development split {seed})")


def measure(name: str, row: Row, train: TextDataset, test: TextDataset, seed: int, out: Path) -> dict[str, Any]:
    """Train ``row`` on ``train``, score it on ``test``: the row's metrics and times."""
    wall, cpu = time.perf_counter(), time.process_time()
    if row.kind == "fit":
        label_map = LabelMap.from_label_sets(train.labels)
        stage = TfidfStage(**row.stage)
        stage = stage.replace(analyzer=analyzer_decision(stage, train.texts)[0])
        settings = LabelSetSettings(folds=row.folds, class_weight=row.class_weight)
        model = fit_label_sets(stage, train, label_map, seed=seed, settings=settings, choose=row.rule)
        metrics, _ = evaluate(model, test)
        metrics["calibration"] = model.record
    else:
        from tailtune.data.builtin import resolve_model
        from tailtune.runs.train import train_run
        from tailtune.strategies import build_run_config

        config = build_run_config(resolve_model(row.model) if row.model else None, row.strategy,
                                  settings={"seed": seed, **row.settings}, stages=row.stages)  # fmt: skip
        metrics = train_run(config, Splits(train, test=test), out / f"{name}-seed-{seed}", overwrite=True,
                            show_progress=False)  # fmt: skip
    rule = metrics.get("calibration") or {}
    return {
        "row": name, "kind": row.kind, "note": row.note, "seed": seed,
        **{key: None if metrics.get(key) is None else round(metrics[key], 4) for key in METRICS},
        "wall_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2),
        "rule": rule.get("rule"), "global_threshold": rule.get("global_threshold"),
    }  # fmt: skip


def against_one_threshold(run: Path, test: TextDataset) -> dict[str, Any]:
    """Test macro-F1 of a multi-label run's per-label thresholds against one threshold for every label, on the same
    checkpoint.

    The run's thresholds were chosen on validation and folded into the classifier's bias (``metrics.json``'s
    ``calibration.class_offsets``: ``-logit(threshold)`` per label); taking the offsets back out gives the logits
    a plain checkpoint would have. One threshold for every label is then chosen **on the test set itself**, for
    its micro-F1 (the library's global rule) and for its macro-F1: the best any single threshold can do there, so
    the per-label rule is compared with an upper bound, not with a threshold that validation would pick.
    """
    from sklearn.metrics import f1_score

    from tailtune.classifier import TailTuner
    from tailtune.training.thresholds import logit

    model = TailTuner.load(run / "model", trust_remote_code=True)
    offsets = np.asarray(json.loads((run / "metrics.json").read_text(encoding="utf-8"))["calibration"]["class_offsets"])
    names = [str(name) for name in model.classes_]
    truth = np.array([[name in set(labels) for name in names] for labels in test.labels], dtype=int)
    folded = logit(model.predict_proba(test.texts))
    plain = folded - offsets

    def scores(decided: np.ndarray) -> tuple[float, float]:
        return (f1_score(truth, decided, average="micro", zero_division=0),
                f1_score(truth, decided, average="macro", zero_division=0))  # fmt: skip

    grid = [(t, *scores((plain > logit(t)).astype(int))) for t in np.round(np.arange(0.01, 1.0, 0.01), 2)]
    by_micro, by_macro = max(grid, key=lambda g: g[1]), max(grid, key=lambda g: g[2])
    per_label, half = scores((folded > 0).astype(int)), scores((plain > 0).astype(int))
    return {"run": str(run), "labels": len(names), "texts": len(test),
            "per_label": {"micro_f1": per_label[0], "macro_f1": per_label[1]},
            "half": {"micro_f1": half[0], "macro_f1": half[1]},
            "one_threshold_best_micro": {"threshold": by_micro[0], "micro_f1": by_micro[1], "macro_f1": by_micro[2]},
            "one_threshold_best_macro": {"threshold": by_macro[0], "micro_f1": by_macro[1], "macro_f1": by_macro[2]},
            "macro_gain_over_best_single": per_label[1] - by_macro[2]}  # fmt: skip


def machine() -> dict[str, Any]:
    """The CPU (``lscpu``'s model name), the cores this process may use, the library versions."""
    import sklearn

    import tailtune

    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = "?"
    return {"cpu": model, "cores": len(os.sched_getaffinity(0)), "tailtune": tailtune.__version__,
            "scikit-learn": sklearn.__version__}  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    """The mean of each row's measurements (over seeds and development splits), as a Markdown table."""
    names = list(dict.fromkeys(row["row"] for row in rows))
    lines = ["| row | " + " | ".join(METRICS) + " | wall s | CPU s | n | note |", "|---" * (len(METRICS) + 6) + "|"]
    for name in names:
        mine = [row for row in rows if row["row"] == name]
        cells = [np.mean([row[key] for row in mine if row[key] is not None] or [np.nan]) for key in METRICS]
        times = [np.mean([row[key] for row in mine]) for key in ("wall_s", "cpu_s")]
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in cells) + f" | {times[0]:.1f} | {times[1]:.1f} "
                     f"| {len(mine)} | {mine[0]['note']} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of train.jsonl and test.jsonl")
    parser.add_argument("--rows", nargs="+", default=["tfidf-strategy"], choices=sorted(ROWS), metavar="ROW",
                        help=f"rows to run, of: {', '.join(ROWS)}")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=[1], help="training seeds")
    parser.add_argument("--dev", action="store_true", help="score on development splits of train.jsonl, not test")
    parser.add_argument("--dev-fraction", type=float, default=0.2, help="share of train.jsonl held out")
    parser.add_argument("--dev-seeds", nargs="+", type=int, default=[0, 1], help="seeds of the development splits")
    parser.add_argument("--out", type=Path, default=Path("runs/multilabel"), help="folder for run rows' runs")
    parser.add_argument("--json", type=Path, help="also write the rows here (after every row)")
    parser.add_argument("--one-threshold", type=Path, metavar="RUN",
                        help="instead of training: a multi-label run directory trained on train.jsonl; compare its "
                             "per-label thresholds with one threshold for every label on test.jsonl")  # fmt: skip
    args = parser.parse_args()
    if args.one_threshold:
        found = against_one_threshold(args.one_threshold, read(args.data / "test.jsonl"))
        print(json.dumps({**found, **machine()}, indent=2))
        if args.json:
            args.json.write_text(json.dumps({**found, **machine()}, indent=2) + "\n", encoding="utf-8")
        return
    train = read(args.data / "train.jsonl")
    if args.dev:
        parts = [(f"dev-{seed}", *dev_split(train, args.dev_fraction, seed)) for seed in args.dev_seeds]
    else:
        parts = [("test", train, read(args.data / "test.jsonl"))]
    record: dict[str, Any] = {"mode": "dev" if args.dev else "test", "data": str(args.data), **machine(),
                              "command": " ".join([Path(sys.executable).name, *sys.argv]), "rows": []}  # fmt: skip
    print(f"{record['cpu']}, {record['cores']} cores; scikit-learn {record['scikit-learn']}", flush=True)
    for name in args.rows:
        for split, fit_on, score_on in parts:
            for seed in args.seeds:
                row = {"split": split, **measure(name, ROWS[name], fit_on, score_on, seed, args.out / split)}
                record["rows"].append(row)
                print(json.dumps(row), flush=True)
                if args.json:
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"\n{record['mode']}, mean over {len(parts)} split(s) x {len(args.seeds)} seed(s); {record['cpu']}")
    print(table(record["rows"]))
    if not args.dev:
        print("\nHuang et al. (EMNLP 2021), BERT-base, test: " + ", ".join(
            f"{method} {micro:.2f} / {macro:.2f}" for method, (micro, macro) in PAPER.items()))  # fmt: skip


if __name__ == "__main__":
    main()
