"""What the command modules share: option groups, the metrics table and the one-line error."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tailtune.errors import TailTuneError

# The exit status of an interrupted command, as for SIGINT in a shell (a compare resumes when run again).
INTERRUPTED = 130

EPILOG = "Docs and examples: README.md. Every option can also come from --config FILE.yaml (CLI flags win)."


def add_data_columns(parser: argparse.ArgumentParser) -> None:
    """Add ``--text-column`` and ``--label-column``."""
    parser.add_argument("--text-column", help="name of the text column (default text)")
    parser.add_argument("--label-column", help="name of the label column (default label)")


def add_predict_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of the commands that run a saved model (``evaluate``, ``predict``)."""
    parser.add_argument(
        "--max-length", type=int,
        help="max tokens per text (default: the length the model was trained at, else the tokenizer's limit)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, help="batch size (default 64)")
    parser.add_argument(
        "--mixed-precision", choices=["no", "auto", "bf16", "fp16"],
        help="default auto: bf16 where measured faster (see train --help), else full precision",
    )  # fmt: skip
    parser.add_argument("--trust-remote-code", action="store_true", help="allow checkpoint code")
    add_data_columns(parser)
    parser.set_defaults(text_column="text", label_column="label")


def predict_settings(args: argparse.Namespace) -> dict[str, int | str]:
    """The prediction settings given on the command line, as ``TailTuner.load`` takes them."""
    settings: dict[str, int | str] = {}
    if args.max_length:
        settings["max_length"] = args.max_length
    if args.batch_size:
        settings["eval_batch_size"] = args.batch_size
    if args.mixed_precision:
        settings["mixed_precision"] = args.mixed_precision
    return settings


def metrics_table(metrics: dict[str, Any]) -> str:
    """A split's headline metrics and its per-class rows, most frequent training class first."""
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


def print_error(exc: TailTuneError) -> None:
    """Print a user error as the one ``tailtune: error:`` line on stderr."""
    print(f"tailtune: error: {in_flag_terms(exc)}", file=sys.stderr)


def in_flag_terms(exc: TailTuneError) -> str:
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
