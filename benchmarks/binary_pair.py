"""Choose the pair of BBC topics for the binary study: the pair whose headlines are hardest to tell apart.

For each of the ten pairs of the five topics, embed the embedded BBC headlines once with the frozen MiniLM
(mean over tokens) and score a class-balanced logistic regression by 5-fold cross-validated balanced
accuracy on that pair's headlines. The pair with the lowest score is the least trivially separable one. No
fine-tuning and no test set of the study is involved: the score only ranks the pairs.

    python benchmarks/binary_pair.py --json benchmarks/results/binary_pair.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
from frozen_probe import embed
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from transformers import AutoModel, AutoTokenizer

from tailtune.data.builtin import bbc_headlines, minilm_path
from tailtune.training.precision import cpu_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the scores here")
    args = parser.parse_args()
    cpu = cpu_info()[0]
    headlines = bbc_headlines()
    labels = np.asarray(headlines.labels)
    vectors = embed(headlines.texts, AutoModel.from_pretrained(minilm_path()).eval(),
                    AutoTokenizer.from_pretrained(minilm_path()))  # fmt: skip
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    scores = {}
    for a, b in itertools.combinations(sorted(set(labels)), 2):
        mask = (labels == a) | (labels == b)
        probe = LogisticRegression(class_weight="balanced", max_iter=2000)
        cv = cross_val_score(probe, vectors[mask], labels[mask], cv=folds, scoring="balanced_accuracy")
        scores[f"{a}/{b}"] = float(cv.mean())
    ranked = sorted(scores.items(), key=lambda item: item[1])
    print(f"cpu: {cpu}\n{'pair':<28} balanced accuracy (5-fold)")
    for pair, score in ranked:
        print(f"{pair:<28} {score:.3f}")
    print(f"hardest pair: {ranked[0][0]}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "scores": dict(ranked), "hardest": ranked[0][0]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
