"""Choose the demo's budgets on the validation split (the test split is never read).

For each candidate setting, trains on the demo's long-tailed training set and scores macro-F1 on the
balanced validation set. Epochs are fixed at 2 per stage so that the three-strategy demo fits in 10 minutes
on a 2-core CPU; learning rates are searched.

    python benchmarks/demo_budget.py --output runs/demo-budget --json benchmarks/results/demo_budget.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from pathlib import Path

from tailtune.data.types import Splits
from tailtune.experiments.demo import demo_config, demo_splits
from tailtune.fileio import write_json
from tailtune.runs.train import train_run

# The best setting of the first grid sat at its upper edge for every strategy, so the grid was extended
# upwards by one step (3e-4); --only runs a subset of candidates, e.g. --only vanilla:2 reweight:2 two-stage:4.
GRID = {
    "vanilla": [{"lr": lr} for lr in (3e-5, 1e-4, 3e-4)],
    "reweight": [{"lr": lr} for lr in (3e-5, 1e-4, 3e-4)],
    "two-stage": [{"lr": [lr1, lr2]} for lr1, lr2 in itertools.product((1e-4, 1e-3), (3e-5, 1e-4))]
    + [{"lr": [1e-3, 3e-4]}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="runs/demo-budget")
    parser.add_argument("--json", default=None, help="write (or, with --only, extend) the results here")
    parser.add_argument("--only", nargs="+", default=None, metavar="STRATEGY:INDEX", help="candidates to run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    train, validation, _ = demo_splits()  # the test split is not used here
    rows = json.loads(Path(args.json).read_text()) if args.only and args.json and Path(args.json).is_file() else []
    for strategy, candidates in GRID.items():
        for i, change in enumerate(candidates):
            if args.only and f"{strategy}:{i}" not in args.only:
                continue
            config = demo_config(strategy, epochs=2, **change)
            metrics = train_run(config, Splits(train, eval=validation), Path(args.output) / strategy / f"c{i}",
                                overwrite=True, show_progress=False)  # fmt: skip
            rows.append({"strategy": strategy, **change, "epochs": 2, "val_macro_f1": metrics["macro_f1"],
                         "val_tail_f1": metrics["tail_f1"], "wall_time_s": metrics["wall_time_s"]})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        write_json(args.json, rows)


if __name__ == "__main__":
    main()
