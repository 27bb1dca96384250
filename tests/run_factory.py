"""Write small, self-consistent run directories for tests of the readers, summary and report.

The runs follow the run-directory contract that training writes: predictions are drawn at random (seeded,
so every call gives the same files), and metrics.json is computed from them, so the per-class scores, the
confusion matrix and predictions.csv agree with each other.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

LABELS = ["world", "sports", "business", "sci/tech"]
#: How much each strategy loses on the rarest class compared with the most frequent one.
TAIL_PENALTY = {"vanilla": 0.6, "two-stage": 0.25}
VERSIONS = {"python": "3.11.9", "torch": "2.4.0", "transformers": "4.46.0", "tailtune": "0.1.0"}


def exp_counts(n_classes: int, ratio: float, n_max: int = 500) -> list[int]:
    """Exponential long-tail class sizes from ``n_max`` down to ``n_max / ratio``."""
    if n_classes == 1:
        return [n_max]
    return [max(1, round(n_max * ratio ** (-i / (n_classes - 1)))) for i in range(n_classes)]


def _groups(labels: list[str]) -> dict[str, list[str]]:
    quarter = max(1, len(labels) // 4)
    return {"head": labels[:quarter], "medium": labels[quarter:-quarter], "tail": labels[-quarter:]}


def _stages(strategy: str) -> list[dict]:
    if strategy == "two-stage":
        return [
            {
                "name": "stage1",
                "trainable": "all",
                "loss": "ce",
                "weights": "none",
                "lr": 2e-5,
                "epochs": 3.0,
            },
            {
                "name": "stage2",
                "trainable": "head",
                "loss": "ce",
                "weights": "balanced",
                "lr": 1e-3,
                "epochs": 1.0,
            },
        ]
    return [{"name": "stage1", "trainable": "all", "loss": "ce", "weights": "none", "lr": 2e-5, "epochs": 3.0}]


def write_run(
    run_dir: str | Path,
    *,
    strategy: str = "vanilla",
    seed: int = 0,
    variant: str | None = None,
    ratio: float | None = None,
    labels: list[str] | None = None,
    train_counts: list[int] | None = None,
    n_test_per_class: int = 12,
    texts: list[str] | None = None,
    complete: bool = True,
) -> Path:
    """Write one run directory.

    Args:
        run_dir: Where to write it.
        strategy: Strategy name; known ones (``TAIL_PENALTY``) differ in how badly they do on rare classes.
        seed: Seed; it changes the drawn predictions.
        variant: Variant name (None writes ``"variant": null``).
        ratio: Imbalance ratio recorded in ``variant_info`` (and used for train counts); None for none.
        labels: Class names in id order.
        train_counts: Training examples per class; defaults to an exponential tail with ``ratio`` (or 10).
        n_test_per_class: Test examples per class.
        texts: Optional texts used (cycled) for the test examples.
        complete: False leaves out metrics.json, as for a run still in progress.

    Returns:
        The run directory.
    """
    run_dir = Path(run_dir)
    labels = list(labels or LABELS)
    counts = list(train_counts or exp_counts(len(labels), ratio or 10))
    key = f"{variant}|{strategy}|{seed}|{'|'.join(labels)}"
    rng = np.random.default_rng(zlib.crc32(key.encode()))

    # Chance of a correct prediction falls with log rarity; the strategy sets how steeply.
    penalty = TAIL_PENALTY.get(strategy, 0.4)
    span = math.log(max(counts) / max(1, min(counts))) or 1.0
    y_true: list[int] = []
    y_pred: list[int] = []
    scores: list[float] = []
    for cls, count in enumerate(counts):
        p_correct = 0.95 - penalty * math.log(max(counts) / max(1, count)) / span
        for _ in range(n_test_per_class):
            y_true.append(cls)
            if rng.random() < p_correct:
                y_pred.append(cls)
            else:
                # Errors mostly land on the most frequent classes, as with real long-tailed models.
                y_pred.append(int(rng.choice([c for c in range(len(labels)) if c != cls][:2])))
            scores.append(round(float(rng.uniform(0.4, 0.99)), 4))
    if texts:
        text_col = [texts[i % len(texts)] for i in range(len(y_true))]
    else:
        text_col = [f"example {i} about {labels[c]}" for i, c in enumerate(y_true)]

    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "tailtune_version": "0.1.0",
        "versions": VERSIONS,
        "created": "2024-05-01T12:00:00+00:00",
        "run": {
            "model": "tiny-bert",
            "strategy": strategy,
            "seed": seed,
            "max_length": 64,
            "batch_size": 16,
            "head": "linear",
            "stages": _stages(strategy),
        },
        "stages": _stages(strategy),
        "labels": labels,
        "train_counts": dict(zip(labels, counts, strict=True)),
        "data": {"train": "data/train.csv", "eval": None, "test": "data/test.csv"},
        "variant": variant,
        "variant_info": {"ratio": ratio, "profile": "exp"} if ratio is not None else {},
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    pd.DataFrame(
        {
            "text": text_col,
            "label": [labels[c] for c in y_true],
            "predicted": [labels[c] for c in y_pred],
            "score": scores,
        }
    ).to_csv(run_dir / "predictions.csv", index=False)
    history = [
        {
            "stage": 0,
            "stage_name": "stage1",
            "step": 10 * (i + 1),
            "epoch": 0.5 * (i + 1),
            "loss": 1.2 / (i + 1),
            "lr": 2e-5,
        }
        for i in range(3)
    ]
    (run_dir / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    # A saved model has its own (Hugging Face) config.json, which must not be taken for a run.
    (run_dir / "model").mkdir(exist_ok=True)
    (run_dir / "model" / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    if complete:
        metrics = _metrics(labels, counts, y_true, y_pred)
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return run_dir


def _metrics(labels: list[str], counts: list[int], y_true: list[int], y_pred: list[int]) -> dict:
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    groups = _groups(labels)
    by_name = dict(zip(labels, f1, strict=True))

    def group_f1(names: list[str]) -> float | None:
        return float(np.mean([by_name[n] for n in names])) if names else None

    return {
        "accuracy": accuracy_score(y_true, y_pred),
        "micro_f1": f1_score(y_true, y_pred, labels=ids, average="micro", zero_division=0),
        "macro_f1": f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0),
        "weighted_f1": f1_score(y_true, y_pred, labels=ids, average="weighted", zero_division=0),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "n_examples": len(y_true),
        "head_f1": group_f1(groups["head"]),
        "medium_f1": group_f1(groups["medium"]),
        "tail_f1": group_f1(groups["tail"]),
        "groups": groups,
        "per_class": {
            name: {
                "precision": float(p),
                "recall": float(r),
                "f1": float(f),
                "support": int(s),
                "train_count": int(c),
            }
            for name, p, r, f, s, c in zip(labels, precision, recall, f1, support, counts, strict=True)
        },
        "confusion_matrix": {
            "labels": labels,
            "matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        },
        "split": "test",
        "wall_time_s": 1.5,
    }


def make_experiment(
    root: str | Path,
    *,
    ratios: tuple[int, ...] = (10, 50),
    strategies: tuple[str, ...] = ("vanilla", "two-stage"),
    seeds: tuple[int, ...] = (0, 1, 2),
    labels: list[str] | None = None,
    texts: list[str] | None = None,
) -> list[Path]:
    """Lay out an experiment as ``tailtune compare`` does: ``root/<variant>/<strategy>/seed-<k>/``.

    Variants are named ``exp-<ratio>``. Returns the run directories written.
    """
    paths = []
    for ratio in ratios:
        variant = f"exp-{ratio}"
        for strategy in strategies:
            for seed in seeds:
                paths.append(
                    write_run(
                        Path(root) / variant / strategy / f"seed-{seed}",
                        strategy=strategy,
                        seed=seed,
                        variant=variant,
                        ratio=ratio,
                        labels=labels,
                        texts=texts,
                    )
                )
    return paths
