"""Choose and check the default budgets on the demo's data: validation decides, test is only reported.

Each candidate trains on the demo's long-tailed training set (475 articles). With ``--given-eval`` the demo's
balanced validation split (40 per topic) selects epochs and the decision rule; otherwise tailtune carves its
own validation split from the training data, as a user without eval data gets. One JSON line per run goes to
``--json``: validation and test macro-F1, per-class test F1, what selection and calibration chose, wall time.

    python benchmarks/defaults.py --given-eval --json benchmarks/results/defaults_given_eval.jsonl two-stage probe

``--data DIR`` trains on a made-data folder instead (``DIR/train.parquet``, ``DIR/test.parquet``, e.g. one that
``tailtune compare`` wrote), with a validation split carved from its training data; ``--seed`` takes several.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from tailtune.data.builtin import minilm_path
from tailtune.data.readers import read_dataset
from tailtune.data.types import Splits
from tailtune.experiments.demo import demo_splits
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config
from tailtune.training.precision import cpu_info

# name -> (strategy, settings)
CANDIDATES: dict[str, tuple[str, dict]] = {
    "two-stage": ("two-stage", {}),
    "two-stage-lr3e-4": ("two-stage", {"lr": [1e-3, 3e-4]}),
    "two-stage-cls": ("two-stage", {"pooling": "cls"}),
    "two-stage-attention-dropout": ("two-stage", {"attention_dropout": None}),
    "two-stage-no-refit": ("two-stage", {"refit": False}),
    "probe": ("probe", {}),
    "probe-no-refit": ("probe", {"refit": False}),
    "reweight": ("reweight", {}),
    "vanilla": ("vanilla", {}),
    "lp-ft": ("lp-ft", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", choices=list(CANDIDATES))
    parser.add_argument("--given-eval", action="store_true", help="select on the demo's balanced validation split")
    parser.add_argument("--seed", type=int, nargs="+", default=[1])
    parser.add_argument(
        "--data", type=Path, help="a made-data folder (train.parquet, test.parquet) instead of the demo's"
    )
    parser.add_argument("--json", required=True, help="JSON lines file to append to")
    args = parser.parse_args()
    if args.data:
        train, test = (read_dataset(str(args.data / f"{role}.parquet")) for role in ("train", "test"))
        validation = None
    else:
        train, validation, test = demo_splits()
    for name, seed in ((n, s) for n in args.candidates for s in args.seed):
        strategy, settings = CANDIDATES[name]
        config = build_run_config(minilm_path(), strategy, settings={"seed": seed, **settings})
        splits = Splits(train, validation if args.given_eval else None, test)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            metrics = train_run(config, splits, Path(out) / "run", show_progress=False)
            seconds = time.perf_counter() - start
        row = {
            "candidate": name, "given_eval": args.given_eval, "seed": seed, "cpu": cpu_info()[0],
            "data": str(args.data or "demo"),
            "python": platform.python_version(), "seconds": round(seconds, 1),
            "test_macro_f1": metrics["macro_f1"], "test_micro_f1": metrics["micro_f1"],
            "eval_macro_f1": (metrics.get("eval") or {}).get("macro_f1"),
            "per_class_f1": {k: v["f1"] for k, v in metrics["per_class"].items()},
            "selection": metrics["selection"], "calibration": metrics["calibration"],
            "refit_epochs": metrics["refit_epochs"], "validation_split": metrics["validation_split"],
        }  # fmt: skip
        print(json.dumps({k: row[k] for k in ("candidate", "seconds", "test_macro_f1", "eval_macro_f1")}), flush=True)
        with open(args.json, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
