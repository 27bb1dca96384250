"""Naturally long-tailed benchmarks: tailtune's defaults against the classic baselines, one metric code path.

For every data folder given (``train.csv`` and ``test.csv`` with ``text,label`` columns, such as the R8 and
Ohsumed sets with their standard splits), this runs:

- ``default``: ``tailtune train`` with no budget flags and the embedded MiniLM, once per seed;
- ``tfidf-svm``: TF-IDF (word 1-2 grams, sublinear tf) + ``LinearSVC(class_weight="balanced")``, the pipeline of
  the ``tfidf`` strategy (:func:`tailtune.models.tfidf.make_pipeline`);
- ``frozen-probe``: ``LogisticRegression(class_weight="balanced")`` on the frozen MiniLM's mean-pooled embeddings
  (max length 128, as ``frozen_probe.py``).

Every method's test predictions go through :func:`tailtune.metrics.compute_metrics` (accuracy, macro-F1 over the
classes present as scikit-learn computes it, tail F1 over the rarest third of the training classes). Wall time and
the CPU are recorded beside each row; the two baselines do not depend on the seed and run once.

    python benchmarks/real_longtail.py ../shared/data/real/r8 ../shared/data/real/ohsumed --seeds 1 2 3 \\
        --out runs/real --json benchmarks/results/real_longtail.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import pandas as pd

from tailtune.metrics import compute_metrics
from tailtune.training.precision import cpu_info


def scores(train_labels: list[str], true: list[str], predicted: list[str]) -> dict[str, float | None]:
    """Accuracy, macro-F1 and tail F1 of test predictions, the one code path for every method."""
    names = sorted(set(train_labels))
    ids = {name: i for i, name in enumerate(names)}
    counts = pd.Series(train_labels).value_counts().reindex(names).tolist()
    metrics = compute_metrics([ids[y] for y in true], [ids[y] for y in predicted], label_names=names,
                              train_counts=counts)  # fmt: skip
    return {key: metrics[key] for key in ("accuracy", "macro_f1", "tail_f1")}


def run_default(folder: Path, out: Path, seed: int) -> tuple[list[str], float]:
    """``tailtune train`` with no budget flags; the test predictions and the wall time."""
    run = out / f"{folder.name}-default-seed-{seed}"
    if not (run / "metrics.json").is_file():
        command = [sys.executable, "-m", "tailtune", "train", "--train", str(folder / "train.csv"), "--test",
                   str(folder / "test.csv"), "--model", "builtin:minilm", "--seed", str(seed), "--output", str(run),
                   "-q"]  # fmt: skip
        subprocess.run(command, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    wall = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["wall_time_s"]
    return pd.read_csv(run / "predictions.csv", dtype=str, keep_default_na=False)["predicted"].tolist(), wall


def run_tfidf(train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    """The ``tfidf`` strategy's pipeline (:func:`tailtune.models.tfidf.make_pipeline`), as ``train`` fits it."""
    from tailtune.models.tfidf import make_pipeline

    model = make_pipeline()
    return list(model.fit(train["text"], train["label"]).predict(test["text"]))


def run_probe(train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    from frozen_probe import embed  # the same embedding as the probe of the BBC benchmarks
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel, AutoTokenizer

    from tailtune.data.builtin import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    model = AutoModel.from_pretrained(minilm_path()).eval()
    x_train, x_test = embed(train["text"].tolist(), model, tokenizer), embed(test["text"].tolist(), model, tokenizer)
    probe = LogisticRegression(class_weight="balanced", max_iter=2000).fit(x_train, train["label"])
    return list(probe.predict(x_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="folders holding train.csv and test.csv")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help="seeds of the default runs")
    parser.add_argument("--methods", nargs="+", default=["tfidf-svm", "frozen-probe", "default"])
    parser.add_argument("--out", type=Path, default=Path("runs/real-longtail"), help="folder for the runs")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (timings are then shared)")
    args = parser.parse_args()
    cpu = cpu_info()[0]
    rows = []

    def measure(folder: Path, method: str, seed: int | None) -> dict:
        read = {"dtype": str, "keep_default_na": False}
        train, test = pd.read_csv(folder / "train.csv", **read), pd.read_csv(folder / "test.csv", **read)
        start = time.perf_counter()
        if method == "default":
            predicted, wall = run_default(folder, args.out, seed)
        else:
            predicted = run_tfidf(train, test) if method == "tfidf-svm" else run_probe(train, test)
            wall = time.perf_counter() - start
        return {"data": folder.name, "method": method, "seed": seed, "wall_s": round(wall, 1), "cpu": cpu,
                **scores(train["label"].tolist(), test["label"].tolist(), predicted)}  # fmt: skip

    tasks = [(folder, method, seed) for folder in args.folders for method in args.methods
             for seed in (args.seeds if method == "default" else [None])]  # fmt: skip
    with ThreadPoolExecutor(args.jobs) as pool:
        for future in as_completed([pool.submit(measure, *task) for task in tasks]):
            try:
                rows.append(future.result())
            except subprocess.CalledProcessError as exc:  # one failed run leaves the others' rows
                rows.append({"error": str(exc)})
            print(json.dumps(rows[-1]), flush=True)
            if args.json:  # after every run: a benchmark cut short keeps what finished
                args.json.write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    summary = pd.DataFrame([row for row in rows if "error" not in row]).groupby(["data", "method"], sort=False)
    table = summary[["accuracy", "macro_f1", "tail_f1", "wall_s"]].mean().round(4)
    table["runs"] = summary.size()
    print(f"\nmean over runs, {cpu}\n{table.to_string()}")


if __name__ == "__main__":
    main()
