"""``tailtune evaluate``: score a saved model on labelled data."""

from __future__ import annotations

import argparse

from tailtune.cli.common import metrics_table
from tailtune.cli.options import SEPARATOR_HELP, add_predict_options, predict_settings
from tailtune.task import LABEL_SET_SEPARATOR


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    evaluate = sub.add_parser(
        "evaluate", help="score a saved model on labelled data",
        description="Score a saved model (RUN/model of any strategy) on labelled data as a run scores its test data: "
        "the overall scores, head/medium/tail F1 and one row per class, the most frequent in training first (past 20 "
        "classes the weakest and the rarest); labels are matched to the model's by name, after the same "
        "normalisation as training. Label sets (a list column, or CSV/TSV cells split on --label-separator, "
        "default '|') for a multi-label model. --output also writes every score as JSON.",
    )  # fmt: skip
    evaluate.add_argument("--model", required=True, help="a saved model folder (e.g. RUN/model)")
    evaluate.add_argument(
        "--data",
        required=True,
        help="labelled data (.csv/.tsv/.jsonl/.parquet, a save_to_disk folder, a hub data set, or builtin:bbc-news)",
    )
    evaluate.add_argument("--output", help="also write the metrics as JSON here")
    add_predict_options(evaluate, separator_help=SEPARATOR_HELP + f" (default for a multi-label model: "
                        f"'{LABEL_SET_SEPARATOR}', as predict joins its label sets)")  # fmt: skip
    evaluate.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print the metrics table and optionally write the metrics as JSON."""
    from tailtune.classifier import TailTuner
    from tailtune.data.builtin import load_data
    from tailtune.data.held_out import warn_of_run_data
    from tailtune.fileio import check_file_target, write_json
    from tailtune.models.family import evaluate
    from tailtune.runs.records import data_of_model

    if args.output:
        check_file_target(args.output)  # before the model loads and predicts, not after
    classifier = TailTuner.load(args.model, trust_remote_code=args.trust_remote_code, **predict_settings(args))
    # A multi-label model reads CSV label cells as predict writes them, joined by '|', unless told otherwise.
    multi_label = classifier.task.name != "single-label"
    separator = args.label_separator or (LABEL_SET_SEPARATOR if multi_label else None)
    data = load_data(args.data, text_column=args.text_column, label_column=args.label_column,
                     label_separator=separator)  # fmt: skip
    warn_of_run_data(data, data_of_model(args.model))
    metrics, _ = evaluate(classifier, data)  # scored as the run scored its test data
    metrics["split"] = data.source
    if classifier.reading is not None:
        metrics["long_texts"] = classifier.reading  # the reading these scores come from
    print(metrics_table(metrics, full_scores=args.output))
    if args.output:
        write_json(args.output, metrics)
        print(f"metrics written to {args.output}")
    return 0
