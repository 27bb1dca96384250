"""``tailtune predict``: label texts with a saved model."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailtune.cli.options import add_predict_options, predict_settings
from tailtune.errors import TailTuneError
from tailtune.task import LABEL_SET_SEPARATOR

if TYPE_CHECKING:
    from tailtune.data.types import TextDataset

logger = logging.getLogger(__name__)

#: ``--output`` value that writes CSV to standard output.
STDOUT = "-"
#: Prefix of the ``--probabilities`` columns: ``prob_<label>``.
PROB_PREFIX = "prob_"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    predict = sub.add_parser(
        "predict", help="label texts with a saved model",
        description="Write every row of --input with all its columns, in their order, followed by 'predicted' "
        "(the label) and 'score' (its probability; for a TF-IDF model with a linear SVM, a softmax of its margins, no "
        "probability); a multi-label model writes 'predicted' only, the label set of "
        "each text (a JSON list in .jsonl/.parquet, names joined by --label-separator, default '|', in .csv/.tsv); "
        "with --probabilities, also one 'prob_<label>' column per class. Empty texts are predicted too (with a "
        "warning). An input column of one of those names is refused: rename it.",
    )  # fmt: skip
    predict.add_argument("--model", required=True, help="a saved model folder (e.g. RUN/model)")
    predict.add_argument(
        "--input",
        required=True,
        help="texts to classify (.csv/.tsv/.jsonl/.parquet, a save_to_disk folder, a hub data set, or "
        "builtin:bbc-news)",
    )
    predict.add_argument(
        "--output", required=True,
        help="file to write, in the format its extension names: .csv, .tsv, .jsonl (or .json: JSON lines), "
        f".parquet; '{STDOUT}' writes CSV to standard output",
    )  # fmt: skip
    predict.add_argument(
        "--probabilities", action="store_true",
        help=f"also write each class's probability, in columns named {PROB_PREFIX}<label> (in the model's class "
        "order)",
    )  # fmt: skip
    add_predict_options(
        predict,
        separator_help="multi-label models: the string that joins each text's predicted labels (and the items of "
        "an input column of lists) in .csv/.tsv output (default '|')",
        label_help="name of the label column of built-in data in the output (default label); a file's columns are "
        "written as read, its labels neither read nor checked",
    )
    predict.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    """Write the input's rows with the predicted label, its probability and, if asked, every class's."""
    import numpy as np
    import pandas as pd

    from tailtune.classifier import TailTuner
    from tailtune.data.builtin import load_data
    from tailtune.data.label_sets import is_label_list
    from tailtune.data.visible import is_empty_text
    from tailtune.fileio import check_table_target, table_bytes, write_table

    to_stdout = args.output == STDOUT
    if not to_stdout:
        check_table_target(args.output)  # before the model loads and predicts, not after
        if Path(args.input).is_file() and Path(args.output).resolve() == Path(args.input).resolve():
            raise TailTuneError(f"--output {args.output} is the --input file; write the predictions to another file "
                                "(predict never replaces its input)")  # fmt: skip
    tuner = TailTuner.load(args.model, trust_remote_code=args.trust_remote_code, **predict_settings(args))
    # A file's columns pass through as read, so its labels are not read (nor checked); built-in data keeps its own.
    label_column = args.label_column if args.input.startswith("builtin:") else None
    data = load_data(args.input, text_column=args.text_column, label_column=label_column, require_labels=False,
                     allow_empty_texts=True, label_separator=args.label_separator)  # fmt: skip
    columns = _input_columns(data, args.text_column, args.label_column)
    prob_names = [f"{PROB_PREFIX}{label}" for label in tuner.classes_] if args.probabilities else []
    written = ["predicted", "score"] if tuner.task.name == "single-label" else ["predicted"]
    _refuse_clashes(columns, [*written, *prob_names], data.source)  # before predicting, not after

    empty = [is_empty_text(text) for text in data.texts]
    if any(empty):
        logger.warning("%s: %d empty text(s) (no visible character); predicted like the others, from no words",
                       data.source, sum(empty))  # fmt: skip
    unread = int((tuner.unread(data.texts) & ~np.asarray(empty, bool)).sum())
    if unread:
        logger.warning("%s: the model reads %d of %d text(s) as next to nothing (no word it knows, or a script its "
                       "vocabulary does not cover): they get much the same prediction, whatever they say",
                       data.source, unread, len(data.texts))  # fmt: skip
    probs = tuner.predict_proba(data.texts).astype("float64")  # rounded float32 would print as 0.3502329885959625
    # Input values stay as read (object columns): "007" stays "007" and an id column with a gap stays integers.
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})
    # A label set is a list where the format holds lists (JSON lines, Parquet), else one cell of joined names.
    plain_cells = to_stdout or Path(args.output).suffix.lower() in (".csv", ".tsv")
    separator = (args.label_separator or LABEL_SET_SEPARATOR) if plain_cells else None
    if separator is not None:  # an input column of lists (JSON lines, Parquet) is written as the label sets are
        for name in columns:
            frame[name] = frame[name].map(lambda v: separator.join(map(str, v)) if is_label_list(v) else v)
    for name, values in tuner.task.predicted_columns(probs, tuner.classes_, separator=separator).items():
        frame[name] = pd.Series(values, dtype=object)
    for k, name in enumerate(prob_names):
        frame[name] = probs[:, k].round(6)
    if to_stdout:
        sys.stdout.flush()  # the bytes go under the text layer: nothing printed before may follow them
        sys.stdout.buffer.write(table_bytes(frame, ".csv"))
        sys.stdout.flush()
        if not args.quiet:
            print(f"{len(frame)} predictions written to standard output", file=sys.stderr)
    else:
        write_table(frame, args.output)
        print(f"{len(frame)} predictions written to {args.output}")
    return 0


def _input_columns(data: TextDataset, text_column: str, label_column: str) -> dict[str, list[Any]]:
    """Every column of the input as read; the texts (and labels) alone for data that has no source columns."""
    if data.columns is not None:
        return data.columns
    columns: dict[str, list[Any]] = {text_column: list(data.texts)}
    if data.labels is not None:
        columns[label_column] = list(data.labels)
    return columns


def _refuse_clashes(columns: dict[str, list[Any]], names: list[str], source: str) -> None:
    taken = [name for name in names if name in columns]
    if taken:
        listed = ", ".join(f"'{name}'" for name in taken)
        raise TailTuneError(f"{source}: already has column(s) {listed}, which predict writes; rename them in the input")
