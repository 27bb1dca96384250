"""The data path at scale: wall time and peak memory of reading, label mapping, tokenising and batching.

For each size, a CSV of short texts (two random BBC headlines joined, about 25 tokens; the label is the first
headline's topic) is written, then three ``tailtune train`` commands run on it, each in a fresh process whose
peak resident memory is read from the kernel (``wait4``):

- ``data``: ``--strategy vanilla --epochs 0``: read, map labels, tokenise, plan batches, save the model;
- ``epoch``: the same with ``--epochs 1``: ``epoch_seconds`` is its wall time minus the data command's;
- ``cache``: ``--strategy two-stage --epochs 1 0`` with ``--cache-dir``: stage 1's frozen-feature cache is
  built on disk and ``cache_disk_gb`` is its size.

The model is a tiny BERT built here (2 layers, hidden 32) with the embedded MiniLM's real WordPiece tokenizer,
so the data path is the real one and the epoch is cheap. Validation, selection and calibration are off.

    python benchmarks/scale.py --sizes 50000 200000 1000000 --json benchmarks/results/scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tailtune.data.builtin import bbc_headlines, minilm_path
from tailtune.training.precision import cpu_info


def tiny_model(folder: Path) -> str:
    """A randomly initialised 2-layer BERT with the embedded MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=512)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def write_texts(path: Path, n: int, seed: int = 0) -> None:
    headlines = bbc_headlines()
    texts, labels = np.asarray(headlines.texts, dtype=object), np.asarray(headlines.labels, dtype=object)
    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, len(texts), n), rng.integers(0, len(texts), n)
    joined = [f"{a}. {b}" for a, b in zip(texts[first], texts[second], strict=True)]
    pd.DataFrame({"text": joined, "label": labels[first]}).to_csv(path, index=False)


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of one command run in its own process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024 / 1e9


def folder_gb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = tiny_model(root / "tiny")
        for n in args.sizes:
            data = root / f"{n}.csv"
            write_texts(data, n)
            base = [sys.executable, "-m", "tailtune", "train", "--model", model, "--train", str(data), "-q",
                    "--max-length", "64", "--eval-fraction", "0", "--select-metric", "none", "--calibrate", "none",
                    "--min-steps", "0", "--batch-size", "64", "--overwrite"]  # fmt: skip
            run = ["--output", str(root / "run")]
            data_s, data_gb = timed([*base, *run, "--strategy", "vanilla", "--epochs", "0"])
            epoch_s, epoch_gb = timed([*base, *run, "--strategy", "vanilla", "--epochs", "1"])
            cache = root / f"cache-{n}"
            cache_s, cache_gb = timed([*base, *run, "--strategy", "two-stage", "--epochs", "1", "0",
                                       "--cache-dir", str(cache)])  # fmt: skip
            row = {
                "n_texts": n, "data_seconds": round(data_s, 1), "data_peak_rss_gb": round(data_gb, 3),
                "epoch_seconds": round(epoch_s - data_s, 1), "epoch_peak_rss_gb": round(epoch_gb, 3),
                "cache_seconds": round(cache_s, 1), "cache_peak_rss_gb": round(cache_gb, 3),
                "cache_disk_gb": round(folder_gb(cache), 3), "csv_mb": round(data.stat().st_size / 1e6, 1),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
            data.unlink()
            for leftover in cache.glob("*"):
                leftover.unlink()
    result = {"cpu": cpu_info()[0], "model": "tiny BERT (2 x 32) with the MiniLM tokenizer", "batch_size": 64,
              "rows": rows}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
