"""``tailtune predict``: label texts with a saved model."""

from __future__ import annotations

import argparse

from tailtune.cli.common import add_predict_options, predict_settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    predict = sub.add_parser("predict", help="label texts with a saved model")
    predict.add_argument("--model", required=True, help="a saved model folder (e.g. RUN/model)")
    predict.add_argument(
        "--input",
        required=True,
        help="texts to classify (.csv/.tsv/.jsonl/.parquet, a save_to_disk folder, a hub data set, or "
        "builtin:bbc-news)",
    )
    predict.add_argument("--output", required=True, help="CSV to write: text, predicted, score")
    add_predict_options(predict)
    predict.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    """Write one row per text: the text, the predicted label and its probability."""
    import pandas as pd

    from tailtune.builtin import load_data
    from tailtune.classifier import TailTuner
    from tailtune.fileio import atomic_path, check_file_target

    check_file_target(args.output)  # before the model loads and predicts, not after
    tuner = TailTuner.load(args.model, trust_remote_code=args.trust_remote_code, **predict_settings(args))
    data = load_data(args.input, text_column=args.text_column, require_labels=False)
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
