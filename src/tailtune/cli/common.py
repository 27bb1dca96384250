"""What the command modules share besides their options (:mod:`tailtune.cli.options`): the metrics table, the
one-line error and the exit status of an interruption."""

from __future__ import annotations

import sys
from typing import Any

from tailtune.errors import TailTuneError

# The exit status of an interrupted command, as for SIGINT in a shell (a compare resumes when run again).
INTERRUPTED = 130

EPILOG = "Docs and examples: README.md. Every option can also come from --config FILE.yaml (CLI flags win)."


def metrics_table(metrics: dict[str, Any]) -> str:
    """A split's headline metrics and its per-class rows, most frequent training class first.

    A class with no example in the split and no prediction has no scores (``-``); tail F1 is "not measured"
    when no tail class is scored, e.g. on a test file that holds no tail class.
    """
    tail = _fmt(metrics.get("tail_f1"), missing="not measured")
    lines = [
        f"{metrics['split']}: macro-F1 {metrics['macro_f1']:.4f}  micro-F1 {metrics['micro_f1']:.4f}  "
        f"balanced accuracy {metrics['balanced_accuracy']:.4f}  tail F1 {tail}",
        f"{'class':<24} {'train':>7} {'support':>8} {'precision':>9} {'recall':>7} {'F1':>7}",
    ]
    rows = sorted(metrics["per_class"].items(), key=lambda kv: -(kv[1].get("train_count") or 0))
    for name, row in rows:
        lines.append(
            f"{name[:24]:<24} {row.get('train_count') or 0:>7} {row['support']:>8} {_fmt(row['precision'], 3):>9} "
            f"{_fmt(row['recall'], 3):>7} {_fmt(row['f1'], 3):>7}"
        )
    absent = metrics.get("absent_classes") or []
    if absent:
        lines.append(f"{len(absent)} class(es) with no example here and no prediction are not scored and not in "
                     f"the macro averages: {', '.join(absent)}")  # fmt: skip
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 4, missing: str = "-") -> str:
    return missing if value is None else f"{value:.{digits}f}"


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
