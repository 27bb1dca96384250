"""What the refit buys, from one run: the selection model and the refit model of one `tailtune train` scored on the
same development split.

With a carved validation split and a refit, a run trains twice: the selection model (on the training data less
the carved tenth; it chooses the epochs and the decision rule) and then, from scratch, the refit model on all the
training data for the epochs chosen, with the selection model's rule folded into its bias. A run without a refit
ships the selection model itself, so both models of one refit run are the two choices, at the cost of one run:
this script trains the run as ``tailtune train`` does (:func:`tailtune.runs.train.train_run`, which scores the
refit model), keeps the selection model as the run hands it over, folds its own rule into its bias, and scores it
on the same texts. Wall seconds of each phase come from the run's stage records.

Development split only: ``--dev-fraction`` of ``train.jsonl`` held out (``--dev-seed``; a label with no text
left in the rest is dropped from the held-out sets, as in ``benchmarks/multilabel.py --dev``); ``test.jsonl`` is
not read. Or any training file with a development file of its own (``--train``, ``--dev``: one label a text or
label sets, as ``tailtune train`` reads them).

    python benchmarks/refit_pair.py --data ../shared/data/real/reuters90 --seed 1 \
        --json benchmarks/results/refit_pair_reuters90_dev0_seed1.json
    python benchmarks/refit_pair.py --train runs/bbcdev1/train.csv --dev runs/bbcdev1/test.csv --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from multilabel import DATA, METRICS, dev_split, machine, read

import tailtune.training.family as transformer_family
import tailtune.training.fitting as fitting
from tailtune.data.builtin import resolve_model
from tailtune.data.readers import read_dataset
from tailtune.data.types import Splits
from tailtune.models.family import evaluate
from tailtune.models.saved import FIELDS, PREFIX
from tailtune.runs.train import train_run
from tailtune.strategies import build_run_config


class SelectionModel:
    """Keeps what :func:`tailtune.training.fitting.fit` discards when it refits: the first model trained (the
    selection model) and the decision rule chosen on its validation logits; then builds that model's classifier
    beside the refit's."""

    def __init__(self) -> None:
        self.trained: Any = None
        self.calibration: Any = None
        self.classifier: Any = None

    def install(self) -> None:
        train_model, choose, build = (
            fitting.train_model,
            fitting._choose_calibration,
            transformer_family.TransformerClassifier,
        )

        def keep_first(*args: Any, **kwargs: Any) -> Any:
            trained = train_model(*args, **kwargs)
            self.trained = self.trained or trained  # the refit is the second call
            return trained

        def keep_rule(*args: Any, **kwargs: Any) -> Any:
            self.calibration = choose(*args, **kwargs)
            return self.calibration

        def build_both(model: Any, tokenizer: Any, label_map: Any, counts: Any, config: Any, accelerator: Any,
                       **kwargs: Any) -> Any:  # fmt: skip
            chosen = self.trained
            for name in FIELDS:  # the fit's record (the task, the reading) is written on the final model only
                setattr(chosen.model.config, PREFIX + name, getattr(model.config, PREFIX + name, None))
            if self.calibration is not None:
                fitting.fold_into_bias(chosen.model, self.calibration.offsets(chosen.train_counts))
            self.classifier = build(chosen.model, chosen.tokenizer, label_map, counts, config, accelerator, **kwargs)
            return build(model, tokenizer, label_map, counts, config, accelerator, **kwargs)

        fitting.train_model, fitting._choose_calibration = keep_first, keep_rule
        transformer_family.TransformerClassifier = build_both


#: The figures of one label a text (``metrics.json`` keys).
SINGLE_LABEL_METRICS = ("accuracy", "macro_f1", "tail_f1", "head_f1")


def scores(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = METRICS if "samples_f1" in metrics else SINGLE_LABEL_METRICS
    return {key: None if metrics.get(key) is None else round(metrics[key], 4) for key in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder of train.jsonl (label sets in `labels`)")
    parser.add_argument("--seed", type=int, default=1, help="training seed")
    parser.add_argument("--train", type=Path, help="a training file instead of --data (with --dev)")
    parser.add_argument("--dev", type=Path, help="the development file scored instead of a held-out share of --data")
    parser.add_argument("--dev-fraction", type=float, default=0.2, help="share of train.jsonl held out")
    parser.add_argument("--dev-seed", type=int, default=0, help="seed of the development split")
    parser.add_argument("--out", type=Path, default=Path("runs/refit-pair"), help="the run directory")
    parser.add_argument("--json", type=Path, help="write the record here")
    parser.add_argument("--model", default="builtin:minilm", help="the model to fine-tune")
    parser.add_argument("--limit", type=int, help="read only the first LIMIT training texts (a quick check)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON", help="run settings, e.g. max_length=32")
    args = parser.parse_args()
    if (args.train is None) != (args.dev is None):
        parser.error("--train and --dev go together")
    if args.train is not None:
        rest, dev = read_dataset(args.train), read_dataset(args.dev)
        rest = rest if args.limit is None else rest.subset(list(range(args.limit)))
    else:
        train = read(args.data / "train.jsonl")
        train = train if args.limit is None else train.subset(list(range(args.limit)))
        rest, dev = dev_split(train, args.dev_fraction, args.dev_seed)
    settings = {"seed": args.seed, **{key: json.loads(value) for key, value in (s.split("=", 1) for s in args.set)}}
    config = build_run_config(resolve_model(args.model), "two-stage", settings=settings)
    selection = SelectionModel()
    selection.install()
    started = time.perf_counter()
    refit = train_run(config, Splits(rest, test=dev), args.out, overwrite=True, show_progress=False)
    if not refit["refit"]["done"]:
        sys.exit(f"the run did not refit ({refit['refit']['reason']}): nothing to compare")
    phases: dict[str, float] = {}
    for stage in refit["stages"]:
        phase = stage.get("phase") or "train"
        phases[phase] = round(phases.get(phase, 0.0) + (stage.get("seconds") or 0.0), 1)
    record = {
        **machine(), "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "data": str(args.train or args.data), "dev": str(args.dev) if args.dev else None,
        "dev_seed": None if args.dev else args.dev_seed, "seed": args.seed, "train_texts": len(rest),
        "dev_texts": len(dev), "wall_s": round(time.perf_counter() - started, 1), "stage_seconds": phases,
        "refit_epochs": refit.get("refit_epochs"), "calibration": (refit.get("calibration") or {}).get("method"),
        "selection": scores(evaluate(selection.classifier, dev)[0]), "refit": scores(refit),
    }  # fmt: skip
    print(json.dumps(record, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
