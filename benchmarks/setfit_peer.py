"""The alternative practitioners pick for small labelled sets: SetFit, on the same body and data as tailtune.

For each data variant of an experiment folder (``OUT/<variant>/data/{train,test}.parquet``, as written by
``tailtune compare``), SetFit fine-tunes the embedded MiniLM contrastively on sentence pairs, then fits a
class-balanced logistic-regression head on the tuned embeddings. Settings are SetFit's usual ones (one epoch,
batch 16, body lr 2e-5, ``num_iterations`` 20 pairs per example) with tailtune's max length of 128 tokens. The
test set is only scored, never used to choose anything. SetFit is an optional extra of this benchmark
(``pip install setfit``), never a dependency of tailtune.

    python benchmarks/setfit_peer.py runs/bbc-lt-defaults --variants ratio-50 ratio-100 --seed 1 \\
        --json benchmarks/results/setfit_peer.jsonl

One JSON line per (variant, seed): test macro-F1, tail F1 (tailtune's head/medium/tail groups), wall time, CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from tailtune.data.builtin import minilm_path
from tailtune.metrics import compute_metrics
from tailtune.training.precision import cpu_info


def run_setfit(train: pd.DataFrame, test: pd.DataFrame, *, seed: int, num_iterations: int) -> list[str]:
    """Train SetFit on ``train`` and return its predicted labels for ``test``."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(minilm_path(), head_params={"class_weight": "balanced", "max_iter": 2000})
    model.model_body.max_seq_length = 128  # tailtune's max length; the checkpoint's own is 256
    data = Dataset.from_pandas(train[["text", "label"]].reset_index(drop=True))
    with tempfile.TemporaryDirectory() as checkpoints:  # SetFit saves checkpoints; none are needed here
        arguments = TrainingArguments(
            output_dir=checkpoints, batch_size=16, num_epochs=1, num_iterations=num_iterations,
            body_learning_rate=2e-5, max_length=128, seed=seed, show_progress_bar=True, report_to="none",
        )  # fmt: skip
        Trainer(model=model, args=arguments, train_dataset=data).train()
    return [str(label) for label in model.predict(test["text"].tolist(), batch_size=64, as_numpy=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="experiment folder with <variant>/data/")
    parser.add_argument("--variants", nargs="+", help="variant folders to run (default: all)")
    parser.add_argument("--seed", type=int, nargs="+", default=[1])
    parser.add_argument("--num-iterations", type=int, default=20, help="sentence pairs per training example")
    parser.add_argument("--json", type=Path, required=True, help="JSON lines file to append to")
    args = parser.parse_args()
    cpu = cpu_info()[0]
    folders = sorted(args.root.glob("*/data"))
    if args.variants:
        folders = [f for f in folders if f.parent.name in args.variants]
    for data in folders:
        train, test = pd.read_parquet(data / "train.parquet"), pd.read_parquet(data / "test.parquet")
        train["label"], test["label"] = train["label"].astype(str), test["label"].astype(str)
        labels = sorted(train["label"].unique())
        counts = train["label"].value_counts()
        for seed in args.seed:
            start = time.perf_counter()
            predicted = run_setfit(train, test, seed=seed, num_iterations=args.num_iterations)
            seconds = time.perf_counter() - start
            index = {name: i for i, name in enumerate(labels)}
            metrics = compute_metrics(
                [index[y] for y in test["label"]], [index[y] for y in predicted],
                label_names=labels, train_counts=[int(counts[name]) for name in labels],
            )  # fmt: skip
            row = {
                "variant": data.parent.name, "seed": seed, "num_iterations": args.num_iterations, "cpu": cpu,
                "seconds": round(seconds, 1), "test_macro_f1": round(metrics["macro_f1"], 4),
                "test_tail_f1": None if metrics["tail_f1"] is None else round(metrics["tail_f1"], 4),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            with args.json.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
