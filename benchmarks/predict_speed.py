"""Prediction speed: ``TailTuner.predict`` against ``transformers.pipeline`` on texts of mixed length.

The set mixes the embedded BBC headlines (about 12 tokens) and articles (cut at 128 tokens) in a seeded random
order, as real inputs come. Both systems run the same saved model (by default a ``probe`` fitted here on 200
articles, so that its predictions mean something) at max length 128 and batch 64, after one warm-up call.
tailtune runs with its automatic precision and, for the breakdown, once more in fp32; the pipeline runs as
users run it. The labels of the two are compared text by text.

    python benchmarks/predict_speed.py --json benchmarks/results/predict_speed.json
    python benchmarks/predict_speed.py --quick          # 300 headlines + 300 articles

JSON: ``ratio_vs_pipeline`` (pipeline seconds / tailtune seconds: the throughput ratio), ``labels_agree``
(share of texts given the same label), the timings, ``precision`` and ``cpu``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from accelerate.state import AcceleratorState

from tailtune.classifier import TailTuner
from tailtune.data.builtin import bbc_headlines, bbc_news
from tailtune.training.precision import auto_precision, cpu_info

BATCH = 64
MAX_LENGTH = 128


def mixed_texts(per_kind: int | None, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    kinds = [bbc_headlines().texts, bbc_news().texts]
    texts = []
    for kind in kinds:
        picked = rng.permutation(len(kind))[:per_kind]
        texts += [kind[i] for i in picked]
    return [texts[i] for i in rng.permutation(len(texts))]


def fit_probe(folder: Path) -> Path:
    """A probe on 200 articles (40 per topic), saved to ``folder``."""
    articles = bbc_news()
    rng = np.random.default_rng(1)
    keep = [i for label in sorted(set(articles.labels))
            for i in rng.permutation([j for j, y in enumerate(articles.labels) if y == label])[:40]]  # fmt: skip
    tuner = TailTuner("builtin:minilm", "probe", max_length=MAX_LENGTH, show_progress=False)
    tuner.fit([articles.texts[i] for i in keep], [articles.labels[i] for i in keep])
    return tuner.save(folder)


def time_call(call, texts: list[str]) -> tuple[float, list[str]]:
    call(texts[:BATCH])  # warm-up: first-call allocations and kernels
    start = time.perf_counter()
    labels = call(texts)
    return time.perf_counter() - start, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a saved tailtune model (default: fit a probe here)")
    parser.add_argument("--quick", action="store_true", help="300 texts of each kind instead of all")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    from transformers import pipeline

    texts = mixed_texts(300 if args.quick else None)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or fit_probe(Path(tmp) / "probe")
        tuned = TailTuner.load(model, trust_remote_code=True, eval_batch_size=BATCH, max_length=MAX_LENGTH)
        tailtune_s, tailtune_labels = time_call(lambda b: [str(y) for y in tuned.predict(b)], texts)
        # accelerate keeps one precision per process; a benchmark may reset it to time fp32 as well.
        AcceleratorState._reset_state()
        fp32 = TailTuner.load(model, trust_remote_code=True, eval_batch_size=BATCH, max_length=MAX_LENGTH,
                              mixed_precision="no")  # fmt: skip
        fp32_s, _ = time_call(lambda b: [str(y) for y in fp32.predict(b)], texts)
        pipe = pipeline("text-classification", model=str(model), trust_remote_code=True, device=-1)

        def run_pipeline(batch: list[str]) -> list[str]:
            out = pipe(batch, batch_size=BATCH, truncation=True, max_length=MAX_LENGTH)
            return [row["label"] for row in out]

        pipeline_s, pipeline_labels = time_call(run_pipeline, texts)
    agree = float(np.mean([a == b for a, b in zip(tailtune_labels, pipeline_labels, strict=True)]))
    result = {
        "cpu": cpu_info()[0], "precision": auto_precision("cpu"), "n_texts": len(texts), "batch_size": BATCH,
        "max_length": MAX_LENGTH, "tailtune_seconds": round(tailtune_s, 2), "tailtune_fp32_seconds": round(fp32_s, 2),
        "pipeline_seconds": round(pipeline_s, 2), "ratio_vs_pipeline": round(pipeline_s / tailtune_s, 2),
        "ratio_fp32_vs_pipeline": round(pipeline_s / fp32_s, 2), "labels_agree": round(agree, 4),
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
