"""Write small, self-consistent run directories for tests of the readers, summary and report.

The runs are written as training writes them: through the writers of :mod:`tailtune.runs.rundir` and
:class:`tailtune.runs.records.ConfigRecord`, with settings built by :func:`tailtune.strategies.build_run_config`
(so they hold only values training accepts), and with
metrics.json computed by :func:`tailtune.metrics.compute_metrics` from predictions drawn at random (seeded,
so every call gives the same files). The per-class scores, the confusion matrix and predictions.csv agree.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from tailtune.metrics import compute_metrics
from tailtune.runs.records import ConfigRecord
from tailtune.runs.rundir import (
    append_history,
    reset_history,
    write_metrics,
    write_predictions,
    writing_model,
)
from tailtune.strategies import build_run_config
from tailtune.task import DEFAULT_TASK
from tailtune.training.loop import StageReport

LABELS = ["world", "sports", "business", "sci/tech"]
#: How much each strategy loses on the rarest class compared with the most frequent one.
TAIL_PENALTY = {"vanilla": 0.6, "two-stage": 0.25}
VERSIONS = {"python": "3.11.9", "torch": "2.4.0", "transformers": "4.46.0", "tailtune": "0.1.0"}
CREATED = "2024-05-01T12:00:00+00:00"
MODEL = "tiny-bert"
RUN_SETTINGS = {"max_length": 64, "batch_size": 16, "head": "linear"}
#: The seeds :func:`make_experiment` lays out unless told others.
SEEDS = (0, 1, 2)


def exp_counts(n_classes: int, ratio: float, n_max: int = 500) -> list[int]:
    """Exponential long-tail class sizes from ``n_max`` down to ``n_max / ratio``."""
    if n_classes == 1:
        return [n_max]
    return [max(1, round(n_max * ratio ** (-i / (n_classes - 1)))) for i in range(n_classes)]


def _config(
    strategy: str, seed: int, labels: list[str], counts: list[int], variant: str | None, ratio: float | None
) -> ConfigRecord:
    """The ``config.json`` record of a config the real assembly path builds (without data fingerprints)."""
    run = build_run_config(MODEL, strategy, settings={**RUN_SETTINGS, "seed": seed})
    return ConfigRecord(
        run=run.to_dict(),
        task=DEFAULT_TASK,
        labels=labels,
        train_counts=dict(zip(labels, counts, strict=True)),
        data={"train": "data/train.csv", "eval": None, "test": "data/test.csv"},
        variant=variant,
        variant_info={"ratio": ratio, "profile": "exp"} if ratio is not None else {},
        versions=VERSIONS,
        environment={"accelerate": {"num_processes": 1, "mixed_precision": "no", "device": "cpu"}},
        tailtune_version=VERSIONS["tailtune"],
        created=CREATED,
    )


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
    """Write one run directory with the writers training uses.

    Args:
        run_dir: Where to write it.
        strategy: A strategy name; known ones (``TAIL_PENALTY``) differ in how badly they do on rare classes.
        seed: Seed; it changes the drawn predictions.
        variant: Variant name (None writes ``"variant": null``).
        ratio: Imbalance ratio recorded in ``variant_info`` (and used for train counts); None for none.
        labels: Class names in id order.
        train_counts: Training examples per class; defaults to an exponential tail with ``ratio`` (or 10).
        n_test_per_class: Test examples per class.
        texts: Optional texts used (cycled) for the test examples.
        complete: False leaves out the saved model and metrics.json, as for a run still in progress.

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

    config = _config(strategy, seed, labels, counts, variant, ratio)
    config.write(run_dir)
    reset_history(run_dir)
    for index, stage in enumerate(config.run["stages"]):
        for step in range(1, 4):
            append_history(run_dir, {"stage": index, "stage_name": stage["name"], "step": step,
                                     "epoch": round(step * stage["epochs"] / 3, 4), "loss": 1.2 / step,
                                     "lr": stage["lr"] * (3 - step) / 3})  # fmt: skip
    write_predictions(run_dir, pd.DataFrame({
        "text": text_col,
        "label": [labels[c] for c in y_true],
        "predicted": [labels[c] for c in y_pred],
        "score": scores,
    }))  # fmt: skip
    if complete:
        # A saved model has its own (Hugging Face) config.json, which must not be taken for a run.
        with writing_model(run_dir) as folder:
            (folder / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
        metrics = compute_metrics(y_true, y_pred, label_names=labels, train_counts=counts)
        metrics["split"] = "test"
        stages = config.run["stages"]
        metrics["stages"] = [vars(StageReport(name=s["name"], seconds=0.5, steps=3, cached=False)) for s in stages]
        metrics["wall_time_s"] = 1.5
        write_metrics(run_dir, metrics)
    return run_dir


def make_experiment(
    root: str | Path,
    *,
    ratios: tuple[int, ...] = (10, 50),
    strategies: tuple[str, ...] = ("vanilla", "two-stage"),
    seeds: tuple[int, ...] = SEEDS,
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
