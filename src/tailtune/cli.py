"""The ``tailtune`` command line: thin argparse subcommands that build configs and call the library."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from tailtune import __version__
from tailtune.errors import TailTuneError

logger = logging.getLogger("tailtune")

EPILOG = "Docs and examples: README.md. Every option can also come from --config FILE.yaml (CLI flags win)."


# ------------------------------------------------------------------------------------------------ train


def _add_stage_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "stage overrides", "give one value for every stage, or one value per stage (e.g. --lr 1e-3 5e-5)"
    )
    group.add_argument("--epochs", nargs="+", type=int, metavar="N", help="epochs per stage")
    group.add_argument("--lr", nargs="+", type=float, metavar="LR", help="peak learning rate per stage")
    group.add_argument("--loss", nargs="+", metavar="NAME", help="loss per stage (ce, focal, ldam, ...)")
    group.add_argument("--weights", nargs="+", metavar="SCHEME", help="class weights per stage")
    group.add_argument("--trainable", nargs="+", metavar="SCOPE", help="head, top1..topK or all, per stage")
    group.add_argument("--stage-batch-size", nargs="+", type=int, metavar="N", help="batch size per stage")
    group.add_argument("--beta", nargs="+", type=float, metavar="B", help="effective-number beta per stage")
    group.add_argument("--sampler", nargs="+", metavar="S", help="random, class-balanced or sqrt, per stage")


def _add_run_options(parser: argparse.ArgumentParser, *, model_required: bool = True) -> None:
    parser.add_argument("--model", help="local model folder or Hugging Face hub id")
    parser.add_argument("--strategy", help="strategy name (see 'tailtune strategies'); default two-stage")
    parser.add_argument("--head", choices=["linear", "mlp"], help="classification head (default linear)")
    parser.add_argument("--seed", type=int, help="random seed (default 42)")
    parser.add_argument("--max-length", type=int, help="max tokens per text (default 128)")
    parser.add_argument("--batch-size", type=int, help="per-device training batch size (default 16)")
    parser.add_argument("--eval-batch-size", type=int, help="per-device evaluation batch size (default 64)")
    parser.add_argument("--gradient-accumulation-steps", type=int, help="batches per optimiser step")
    parser.add_argument(
        "--mixed-precision",
        choices=["no", "auto", "bf16", "fp16"],
        help="default auto: bf16 on GPUs that support it, else full precision",
    )
    parser.add_argument("--no-feature-cache", dest="feature_cache", action="store_false", default=None,
                        help="run frozen layers in every step instead of caching their output")  # fmt: skip
    parser.add_argument("--no-group-by-length", dest="group_by_length", action="store_false", default=None,
                        help="random batches without grouping similar lengths")  # fmt: skip
    parser.add_argument("--cache-dir", help="folder for feature caches shared between runs")
    parser.add_argument("--trust-remote-code", action="store_true", default=None, help="allow checkpoint code")
    _add_stage_options(parser)


def _add_data_columns(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-column", help="name of the text column (default text)")
    parser.add_argument("--label-column", help="name of the label column (default label)")


_TRAIN_FILE_KEYS = ("train", "eval", "test", "output", "text_column", "label_column", "overwrite")


def build_run_config(args: argparse.Namespace, file_config: dict[str, Any]):
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
    from tailtune.builtin import load_data
    from tailtune.config import load_yaml
    from tailtune.run import Splits, train_run

    file_config = load_yaml(args.config) if args.config else {}
    config = build_run_config(args, file_config)
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
            print(_metrics_table(metrics))
        print(f"run directory: {get('output')}")
    return 0


def _is_main_process() -> bool:
    # Under torchrun / accelerate launch every process runs the command; one of them speaks.
    return int(os.environ.get("RANK", "0")) == 0


def _metrics_table(metrics: dict[str, Any]) -> str:
    lines = [
        f"{metrics['split']}: macro-F1 {metrics['macro_f1']:.4f}  micro-F1 {metrics['micro_f1']:.4f}  "
        f"balanced accuracy {metrics['balanced_accuracy']:.4f}  tail F1 {_fmt(metrics.get('tail_f1'))}",
        f"{'class':<24} {'train':>7} {'support':>8} {'precision':>9} {'recall':>7} {'F1':>7}",
    ]
    rows = sorted(metrics["per_class"].items(), key=lambda kv: -(kv[1].get("train_count") or 0))
    for name, row in rows:
        lines.append(
            f"{name[:24]:<24} {row.get('train_count') or 0:>7} {row['support']:>8} {row['precision']:>9.3f} "
            f"{row['recall']:>7.3f} {row['f1']:>7.3f}"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


# --------------------------------------------------------------------------------------- evaluate/predict


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tailtune.classifier import TailTuner
    from tailtune.data import load_dataset
    from tailtune.fileio import write_json
    from tailtune.metrics import compute_metrics

    tuner = TailTuner.load(args.model, trust_remote_code=args.trust_remote_code, **_predict_settings(args))
    data = load_dataset(args.data, text_column=args.text_column, label_column=args.label_column)
    y_true = tuner.label_map.encode(data.labels, source=data.source)
    y_pred = tuner.predict_proba(data.texts).argmax(axis=1)
    counts = getattr(tuner.model_.config, "tailtune_train_counts", None) or {}
    train_counts = [int(counts.get(name, 0)) for name in tuner.classes_]
    metrics = compute_metrics(y_true, y_pred, label_names=tuner.classes_, train_counts=train_counts)
    metrics["split"] = data.source
    print(_metrics_table(metrics))
    if args.output:
        write_json(args.output, metrics)
        print(f"metrics written to {args.output}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from tailtune.classifier import TailTuner
    from tailtune.data import load_dataset
    from tailtune.fileio import atomic_path

    tuner = TailTuner.load(args.model, trust_remote_code=args.trust_remote_code, **_predict_settings(args))
    data = load_dataset(args.input, text_column=args.text_column, require_labels=False)
    probs = tuner.predict_proba(data.texts)
    best = probs.argmax(axis=1)
    frame = pd.DataFrame({
        "text": data.texts,
        "predicted": [tuner.classes_[i] for i in best],
        "score": probs[range(len(best)), best].round(6),
    })  # fmt: skip
    with atomic_path(args.output) as tmp:
        frame.to_csv(tmp, index=False)
    print(f"{len(frame)} predictions written to {args.output}")
    return 0


def _predict_settings(args: argparse.Namespace) -> dict[str, int]:
    settings = {}
    if args.max_length:
        settings["max_length"] = args.max_length
    if args.batch_size:
        settings["eval_batch_size"] = args.batch_size
    return settings


# ---------------------------------------------------------------------------------------------- others


def cmd_strategies(args: argparse.Namespace) -> int:
    from tailtune.strategies import describe_strategies

    print(describe_strategies())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tailtune.demo import run_demo

    run_demo(args.output, strategies=args.strategies, show_progress=not args.quiet)
    return 0


# ------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tailtune",
        description="Fine-tune transformer text classifiers on class-imbalanced (long-tailed) data.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"tailtune {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser("train", help="fine-tune a model and write a run directory",
                           description="Fine-tune a pretrained model with a strategy and write a run directory "
                           "(config.json, history.jsonl, model/, predictions.csv, metrics.json).")  # fmt: skip
    train.add_argument("--train", help="training data: .csv/.tsv/.jsonl/.parquet, a save_to_disk folder, "
                       "a hub data set such as glue/sst2:train, or builtin:bbc-news")  # fmt: skip
    train.add_argument("--eval", help="validation data (scored after every stage)")
    train.add_argument("--test", help="test data (the final metrics)")
    train.add_argument("--output", help="run directory to write")
    train.add_argument("--config", help="YAML file with any of these options (CLI flags win)")
    train.add_argument("--overwrite", action="store_true", default=None, help="replace a complete run")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _add_data_columns(train)
    _add_run_options(train)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="score a saved model on labelled data")
    evaluate.add_argument("--model", required=True, help="a saved model folder (e.g. RUN/model)")
    evaluate.add_argument("--data", required=True, help="labelled data file or data set")
    evaluate.add_argument("--output", help="also write the metrics as JSON here")
    _add_predict_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="label texts with a saved model")
    predict.add_argument("--model", required=True, help="a saved model folder (e.g. RUN/model)")
    predict.add_argument("--input", required=True, help="file or data set with a text column")
    predict.add_argument("--output", required=True, help="CSV to write: text, predicted, score")
    _add_predict_options(predict)
    predict.set_defaults(func=cmd_predict)

    strategies = sub.add_parser("strategies", help="list the strategies and their stages")
    strategies.set_defaults(func=cmd_strategies)

    demo = sub.add_parser("demo", help="offline demo on the embedded BBC News data and MiniLM",
                          description="Make BBC News long-tailed (300 -> 6 per topic), train vanilla, reweight "
                          "and two-stage with the embedded all-MiniLM-L6-v2, and print per-class F1.")  # fmt: skip
    demo.add_argument("--output", default="tailtune-demo", help="folder for the runs (default tailtune-demo)")
    demo.add_argument("--strategies", nargs="+", default=None, help="strategies to run")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)

    _add_extra_commands(sub)
    return parser


def _add_predict_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-length", type=int, help="max tokens per text (default: the tokenizer's limit)")
    parser.add_argument("--batch-size", type=int, help="batch size (default 64)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow checkpoint code")
    _add_data_columns(parser)
    parser.set_defaults(text_column="text", label_column="label")


def _add_extra_commands(sub) -> None:
    """Experiment commands (make-imbalanced, compare, report) live in their own module."""
    from tailtune.cli_experiments import add_experiment_commands

    add_experiment_commands(sub)


def _quiet_libraries() -> None:
    # transformers prints load reports and progress bars of its own; tailtune logs what matters.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tailtune`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    try:
        _quiet_libraries()
        return args.func(args) or 0
    except TailTuneError as exc:
        print(f"tailtune: error: {_in_flag_terms(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tailtune: interrupted", file=sys.stderr)
        return 130


def _in_flag_terms(exc: TailTuneError) -> str:
    """The error's message, naming the command-line flag where the library named a setting.

    Library messages name their setting first (``beta must be ...``) or last (``...; name it with
    text_column``); only those two places are rewritten, so a setting name used as a plain word elsewhere in
    the message stays as it is.
    """
    message, setting = str(exc), exc.setting
    if not setting:
        return message
    flag = "--" + setting.replace("_", "-")
    if message.startswith(setting):
        message = flag + message[len(setting) :]
    if message.endswith(" " + setting):
        message = message[: -len(setting)] + flag
    return message


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())


if __name__ == "__main__":
    run()
