"""``tailtune train``: fine-tune a model with a strategy and write a run directory."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from tailtune.cli.common import add_data_columns, add_quiet_option, metrics_table
from tailtune.config import CALIBRATIONS, POOLINGS, REPORT_TO, SELECT_METRICS
from tailtune.errors import TailTuneError

if TYPE_CHECKING:
    from tailtune.config import RunConfig

MAX_LENGTH_HELP = "max tokens per text, special tokens included (default 128, or the model's limit where lower)"
# Keys a --config file may hold besides the run settings: where the data and the run directory are.
_TRAIN_FILE_KEYS = ("train", "eval", "test", "output", "text_column", "label_column", "overwrite")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    train = sub.add_parser("train", help="fine-tune a model and write a run directory",
                           description="Fine-tune a pretrained model with a strategy and write a run directory "
                           "(config.json, history.jsonl, model/, predictions.csv, metrics.json).")  # fmt: skip
    train.add_argument("--train", help="training data: .csv/.tsv/.jsonl/.parquet, a save_to_disk folder, "
                       "a hub data set such as glue/sst2:train, or builtin:bbc-news")  # fmt: skip
    train.add_argument("--eval", help="validation data: selects each stage's best epoch and the decision rule "
                       "(default: held out of --train)")  # fmt: skip
    train.add_argument("--test", help="test data (the final metrics)")
    train.add_argument("--output", help="run directory to write")
    train.add_argument("--config", help="YAML file with any of these options (CLI flags win)")
    train.add_argument("--overwrite", action="store_true", default=None, help="replace a complete run")
    add_quiet_option(train)
    add_data_columns(train)
    _add_run_options(train)
    train.set_defaults(func=cmd_train)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="local model folder or Hugging Face hub id")
    parser.add_argument("--strategy", help="strategy name (see 'tailtune strategies'); default two-stage")
    parser.add_argument("--head", choices=["linear", "mlp"], help="classification head (default linear)")
    parser.add_argument("--seed", type=int, help="random seed (default 42)")
    parser.add_argument("--max-length", type=int, help=MAX_LENGTH_HELP)
    parser.add_argument("--batch-size", type=int, help="per-device training batch size (default 16)")
    parser.add_argument("--eval-batch-size", type=int, help="per-device evaluation batch size (default 64)")
    parser.add_argument("--gradient-accumulation-steps", type=int, help="batches per optimiser step")
    parser.add_argument(
        "--mixed-precision",
        choices=["no", "auto", "bf16", "fp16"],
        help="default auto: bf16 on GPUs that support it and on CPUs with native bf16 (AMX-BF16 or AVX512-BF16, "
        "read from the CPU flags; config.json records why), else full precision",
    )
    parser.add_argument("--no-feature-cache", dest="feature_cache", action="store_false", default=None,
                        help="run frozen layers in every step instead of caching their output")  # fmt: skip
    parser.add_argument("--no-group-by-length", dest="group_by_length", action="store_false", default=None,
                        help="random batches without grouping similar lengths")  # fmt: skip
    parser.add_argument("--cache-dir", help="folder for feature caches shared between runs")
    parser.add_argument("--trust-remote-code", action="store_true", default=None, help="allow checkpoint code")
    parser.add_argument("--report-to", choices=REPORT_TO,
                        help="experiment tracker for losses, validation scores, final metrics and the config "
                        "(default none; tensorboard writes RUN/tensorboard; needs tailtune[tracking])")  # fmt: skip
    parser.add_argument("--attention-dropout", type=float, metavar="P",
                        help="dropout on attention probabilities while training (default 0, faster on CPUs; "
                        "BERT-style checkpoints ship 0.1; null in a config file keeps the checkpoint's)")  # fmt: skip
    parser.add_argument("--pooling", choices=POOLINGS,
                        help="what the head reads: auto (default) mean-pools sentence-transformers checkpoints, "
                        "cls reads the [CLS] pooler")  # fmt: skip
    add_selection_options(parser)
    _add_stage_options(parser)


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """Validation split, model selection, refit and the decision rule (shared by train and tune)."""
    group = parser.add_argument_group(
        "validation and selection",
        "without --eval, a stratified validation split is held out of the training data; each stage keeps its "
        "best epoch on it, the final model is retrained on all the data, and the decision rule is tuned on it",
    )
    group.add_argument(
        "--eval-fraction",
        type=float,
        metavar="F",
        help="share of each class held out when no --eval is given (default 0.1; 0 turns it off)",
    )
    group.add_argument(
        "--eval-min-class-count",
        type=int,
        metavar="N",
        help="classes with fewer training examples stay whole in training (default 5)",
    )
    group.add_argument(
        "--select-metric",
        choices=SELECT_METRICS,
        help="validation metric that picks each stage's best epoch (default macro_f1)",
    )
    group.add_argument(
        "--eval-steps",
        type=int,
        metavar="N",
        help="also evaluate every N optimiser steps within an epoch, for long epochs (default: epoch ends only)",
    )
    group.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="evaluations without validation improvement before a stage stops (default 2)",
    )
    group.add_argument(
        "--no-refit",
        dest="refit",
        action="store_false",
        default=None,
        help="keep the model selected on the held-out split instead of retraining on all the data",
    )
    group.add_argument(
        "--calibrate",
        choices=CALIBRATIONS,
        help="decision rule chosen on validation and folded into the bias (default logit-adjust)",
    )


def _add_stage_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "stage overrides", "give one value for every stage, or one value per stage (e.g. --lr 1e-3 5e-5)"
    )
    group.add_argument("--epochs", nargs="+", type=int, metavar="N",
                       help="epochs per stage (at least: --min-steps may add more)")  # fmt: skip
    group.add_argument("--lr", nargs="+", type=float, metavar="LR", help="peak learning rate per stage")
    group.add_argument("--loss", nargs="+", metavar="NAME", help="loss per stage (ce, focal, ldam, ...)")
    group.add_argument("--weights", nargs="+", metavar="SCHEME", help="class weights per stage")
    group.add_argument("--trainable", nargs="+", metavar="SCOPE", help="head, top1..topK or all, per stage")
    group.add_argument("--stage-batch-size", nargs="+", type=int, metavar="N", help="batch size per stage")
    group.add_argument("--beta", nargs="+", type=float, metavar="B", help="effective-number beta per stage")
    group.add_argument("--sampler", nargs="+", metavar="S", help="random, class-balanced or sqrt, per stage")
    group.add_argument("--min-steps", nargs="+", type=int, metavar="N",
                       help="raise epochs until a stage makes N optimiser steps (0: epochs as given)")  # fmt: skip


def run_config_from_args(args: argparse.Namespace, file_config: dict[str, Any]) -> RunConfig:
    """Merge defaults < YAML config < explicit CLI flags, then build the run config the library's one way."""
    from tailtune.builtin import resolve_model
    from tailtune.strategies import DEFAULT_STRATEGY, SETTINGS, build_run_config

    allowed = {"model", "strategy", "stages", *SETTINGS, *_TRAIN_FILE_KEYS}
    unknown = sorted(set(file_config) - allowed)
    if unknown:
        raise TailTuneError(f"--config: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")
    merged = {k: v for k, v in file_config.items() if k not in _TRAIN_FILE_KEYS}
    merged.update({k: getattr(args, k) for k in ("model", "strategy", *SETTINGS) if getattr(args, k, None) is not None})
    if not merged.get("model"):
        raise TailTuneError("--model is required (a local model folder, a hub id or builtin:minilm)")
    model, strategy, stages = merged.pop("model"), merged.pop("strategy", DEFAULT_STRATEGY), merged.pop("stages", None)
    return build_run_config(resolve_model(str(model)), strategy, settings=merged, stages=stages)


def cmd_train(args: argparse.Namespace) -> int:
    """Train, print the test metrics (if any) and the run directory."""
    from tailtune.builtin import load_data
    from tailtune.config import load_yaml
    from tailtune.run import Splits, train_run

    file_config = load_yaml(args.config) if args.config else {}
    config = run_config_from_args(args, file_config)
    get = lambda key, default=None: getattr(args, key, None) or file_config.get(key, default)  # noqa: E731
    if not get("train"):
        raise TailTuneError("--train is required (a CSV/TSV/JSONL/Parquet file or a Hugging Face data set)")
    if not get("output"):
        raise TailTuneError("--output is required (the run directory to write)")
    columns = {"text_column": get("text_column", "text"), "label_column": get("label_column", "label")}
    splits = Splits(
        train=load_data(get("train"), **columns),
        eval=load_data(get("eval"), **columns) if get("eval") else None,
        test=load_data(get("test"), **columns) if get("test") else None,
    )
    metrics = train_run(config, splits, get("output"), overwrite=bool(get("overwrite", False)),
                        show_progress=not args.quiet)  # fmt: skip
    if _is_main_process():
        if metrics.get("split"):
            print(metrics_table(metrics))
        print(f"run directory: {get('output')}")
    return 0


def _is_main_process() -> bool:
    # Under torchrun / accelerate launch every process runs the command; one of them speaks.
    return int(os.environ.get("RANK", "0")) == 0
