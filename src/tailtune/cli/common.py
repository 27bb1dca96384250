"""What the command modules share besides their options (:mod:`tailtune.cli.options`): the metrics table, the
one-line error and the exit status of an interruption."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from tailtune.errors import TailTuneError

if TYPE_CHECKING:
    from tailtune.classtable import ClassRow

# The exit status of an interrupted command, as for SIGINT in a shell (a compare resumes when run again).
INTERRUPTED = 130

EPILOG = (
    "Docs and examples: README.md. Every option of train can also come from train --config FILE.yaml (flags "
    "win); compare --config names an experiment file."
)


#: Up to this many classes the command line prints every class's row; past it, only the weakest and the rarest.
FULL_TABLE_CLASSES = 20
#: Past FULL_TABLE_CLASSES: how many classes of the lowest F1, and how many of the rarest, get a row; also how many
#: confusions are listed.
SHOWN_CLASSES = 5
_SCORES_HEADER = f"{'train':>7} {'support':>8} {'precision':>9} {'recall':>7} {'F1':>7}"


def metrics_table(metrics: dict[str, Any], *, full_scores: str | None = None) -> str:
    """A split's headline metrics and its per-class rows, most frequent training class first.

    A class with no example in the split and no prediction has no scores (``-``); tail F1 is "not measured"
    when no tail class is scored, e.g. on a test file that holds no tail class. Past :data:`FULL_TABLE_CLASSES`
    classes the table stays short: each group's F1, rows for the :data:`SHOWN_CLASSES` classes of the lowest F1
    and the as many rarest, and the most frequent confusions; ``full_scores`` says where every class's scores
    are (e.g. ``RUN/metrics.json``).
    """
    # Here, not at the top: --help must answer without the libraries the metrics import (sklearn, pandas).
    from tailtune.classtable import class_rows, group_lines, lowest_f1, metrics_confusions, name_list, rarest
    from tailtune.data.visible import printed_label
    from tailtune.task import get_task

    lines = [f"{metrics['split']}: {get_task(metrics.get('task')).summary(metrics)}"]
    rows = class_rows(metrics)
    counted = any(row.train_count for row in rows)
    if not counted:
        lines.append("the model records no training counts (a checkpoint trained elsewhere): classes in its own "
                     "order, no head/medium/tail groups")  # fmt: skip
    if len(rows) <= FULL_TABLE_CLASSES:
        cells, width = _name_cells(rows)
        lines.append(f"{'class':<{width}} {_SCORES_HEADER}")
        lines += [f"{cells[row.name]} {_row_scores(row)}" for row in rows]
    else:
        scored = [row for row in rows if row.f1 is not None]  # the rarest the split can say something about
        rare = rarest(scored, SHOWN_CLASSES) if counted else []
        shown = [row for row in rows if row.name in {r.name for r in [*lowest_f1(rows, SHOWN_CLASSES), *rare]}]
        where = f"in {full_scores}" if full_scores else "with --output, in the file it writes"
        if counted:
            lines += group_lines(metrics, rows)
            lines.append(f"the {SHOWN_CLASSES} lowest-F1 and {SHOWN_CLASSES} rarest scored of {len(rows)} classes, "
                         f"most frequent in training first (every class {where}):")  # fmt: skip
        else:
            lines.append(f"the {SHOWN_CLASSES} lowest-F1 of {len(rows)} classes (every class {where}):")
        cells, width = _name_cells(shown)
        group = (lambda name: f"{name:<6} ") if counted else (lambda name: "")  # no groups without counts
        lines.append(f"{'class':<{width}} {group('group')}{_SCORES_HEADER}")
        lines += [f"{cells[row.name]} {group(row.group)}{_row_scores(row)}" for row in shown]
        confusions = metrics_confusions(metrics, SHOWN_CLASSES)
        if confusions:
            lines.append("most frequent confusions (true -> predicted: count of the true class's examples):")
            lines += [f"  {confusion.text(printed_label)}" for confusion in confusions]
    absent = metrics.get("absent_classes") or []
    if absent:
        names = name_list([printed_label(name) for name in absent], 2 * SHOWN_CLASSES)
        lines.append(f"{len(absent)} class(es) with no example here and no prediction are not scored and not in "
                     f"the macro averages: {names}")  # fmt: skip
    return "\n".join(lines)


#: Class names are written whole up to this many characters; longer ones end in an ellipsis.
NAME_WIDTH = 40


def _name_cells(rows: list[ClassRow]) -> tuple[dict[str, str], int]:
    """Each row's class name as its table cell (:func:`~tailtune.classtable.short_names`, at most
    :data:`NAME_WIDTH` terminal columns where that keeps names apart), padded to the column's width, and the width."""
    from tailtune.classtable import short_names
    from tailtune.data.visible import terminal_columns

    cells = short_names([row.name for row in rows], NAME_WIDTH)
    width = max(24, *map(terminal_columns, cells.values()))
    return {name: cell + " " * (width - terminal_columns(cell)) for name, cell in cells.items()}, width


def _row_scores(row: ClassRow) -> str:
    from tailtune.classtable import fmt_score

    train = row.train_count or "-"  # 0: not recorded (every class the model knows had a training example)
    return (f"{train:>7} {row.support:>8} {fmt_score(row.precision, 3):>9} {fmt_score(row.recall, 3):>7} "
            f"{fmt_score(row.f1, 3):>7}")  # fmt: skip


def print_error(exc: TailTuneError) -> None:
    """Print a user error as the one ``tailtune: error:`` line on stderr."""
    print(f"tailtune: error: {in_flag_terms(exc)}", file=sys.stderr)


#: Settings whose command-line flag turns them off (``cli/options.py``): the flag to name in a message.
NEGATED_FLAGS = {
    "refit": "--no-refit",
    "feature_cache": "--no-feature-cache",
    "group_by_length": "--no-group-by-length",
}


def in_flag_terms(exc: TailTuneError) -> str:
    """The error's message, naming the command-line flag where the library named a setting.

    Library messages name their setting first (``beta must be ...``) or last (``...; name it with
    text_column``); only those two places are rewritten, so a setting name used as a plain word elsewhere in
    the message stays as it is.
    """
    message, setting = str(exc), exc.setting
    if not setting:
        return message
    flag = NEGATED_FLAGS.get(setting, "--" + setting.replace("_", "-"))
    if message.startswith(setting):
        message = flag + message[len(setting) :]
    if message.endswith(" " + setting):
        message = message[: -len(setting)] + flag
    return message
