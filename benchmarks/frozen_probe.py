"""The cheap baseline: a class-balanced logistic regression on the frozen body's mean-pooled embeddings.

For each data variant of an experiment folder (``OUT/<variant>/data/{train,test}.parquet``, as written by
``tailtune compare``), embed the texts once with the embedded MiniLM (mean over tokens, max length 128, no
fine-tuning), fit scikit-learn's ``LogisticRegression(class_weight="balanced")`` on the training set and
report test macro-F1. No validation is used: the regression's defaults are the baseline as practitioners run it.

    python benchmarks/frozen_probe.py runs/bbc-lt-defaults --json benchmarks/results/frozen_probe.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from transformers import AutoModel, AutoTokenizer

from tailtune.data.builtin import minilm_path
from tailtune.models.pooling import mean_pool
from tailtune.training.precision import cpu_info


@torch.no_grad()
def embed(texts: list[str], model, tokenizer, batch_size: int = 64) -> np.ndarray:
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], truncation=True, max_length=128, padding=True,
                          return_tensors="pt")  # fmt: skip
        hidden = model(**batch).last_hidden_state
        out.append(mean_pool(hidden, batch["attention_mask"]).numpy())
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="experiment folder with <variant>/data/")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    cpu = cpu_info()[0]
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    model = AutoModel.from_pretrained(minilm_path()).eval()
    results = {"cpu": cpu, "variants": {}}
    for data in sorted(args.root.glob("*/data")):
        start = time.perf_counter()
        train, test = pd.read_parquet(data / "train.parquet"), pd.read_parquet(data / "test.parquet")
        x_train, x_test = (
            embed(train["text"].tolist(), model, tokenizer),
            embed(test["text"].tolist(), model, tokenizer),
        )
        probe = LogisticRegression(class_weight="balanced", max_iter=2000).fit(x_train, train["label"])
        score = f1_score(test["label"], probe.predict(x_test), average="macro")
        seconds = time.perf_counter() - start
        results["variants"][data.parent.name] = {"test_macro_f1": round(float(score), 4), "seconds": round(seconds, 1)}
        print(f"{data.parent.name}: macro-F1 {score:.4f} ({seconds:.0f}s, {cpu})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
