"""``tailtune train``: fine-tune a model with a strategy and write a run directory."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from tailtune.cli.common import metrics_table
from tailtune.cli.cost import outcome_line, plan_printer
from tailtune.cli.options import LABEL_COLUMN, TEXT_COLUMN, add_data_columns, add_quiet_option, add_run_options
from tailtune.errors import TailTuneError

if TYPE_CHECKING:
    from tailtune.config import RunConfig

# Keys a --config file may hold besides the run settings: where the data and the run directory are.
_TRAIN_FILE_KEYS = ("train", "eval", "test", "output", "text_column", "label_column", "label_separator", "overwrite")
# How the help marks an option the command needs, which argparse cannot require where --config may give it.
_REQUIRED = "(required unless given in --config)"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    train = sub.add_parser("train", help="fine-tune a model and write a run directory",
                           description="Fine-tune a pretrained model with a strategy and write a run directory "
                           "(config.json, history.jsonl, model/, predictions.csv, metrics.json). --strategy tfidf "
                           "trains the classic baseline instead, a TF-IDF + linear model: no --model, and of the run "
                           "settings only --seed, --report-to and --time-budget.")  # fmt: skip
    # --train, --output and --model may come from --config, so argparse cannot require them: the help says so.
    train.add_argument("--train", help="training data: .csv/.tsv/.jsonl/.parquet, a save_to_disk folder, "
                       f"a hub data set such as glue/sst2:train, or builtin:bbc-news {_REQUIRED}")  # fmt: skip
    train.add_argument("--eval", help="validation data: selects each stage's best epoch and the decision rule "
                       "(default: held out of --train)")  # fmt: skip
    train.add_argument("--test", help="test data (the final metrics)")
    train.add_argument("--output", help=f"run directory to write {_REQUIRED}")
    train.add_argument("--config", help="YAML file with any of these options (CLI flags win)")
    train.add_argument("--overwrite", action="store_true", default=None, help="replace a complete run")
    add_quiet_option(train)
    add_data_columns(train, defaults=False)  # a column not given may come from --config
    add_run_options(train)
    train.set_defaults(func=cmd_train)


def run_config_from_args(args: argparse.Namespace, file_config: dict[str, Any]) -> RunConfig:
    """Merge defaults < YAML config < explicit CLI flags, then build the run config the library's one way."""
    from tailtune.data.builtin import resolve_model
    from tailtune.models.family import family_of
    from tailtune.strategies import DEFAULT_STRATEGY, SETTINGS, build_run_config

    allowed = {"model", "strategy", "stages", *SETTINGS, *_TRAIN_FILE_KEYS}
    unknown = sorted(set(file_config) - allowed)
    if unknown:
        raise TailTuneError(f"--config: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")
    _check_file_types(file_config)
    merged = {k: v for k, v in file_config.items() if k not in _TRAIN_FILE_KEYS}
    merged.update({k: getattr(args, k) for k in ("model", "strategy", *SETTINGS) if getattr(args, k, None) is not None})
    model, strategy = merged.pop("model", None), merged.pop("strategy", DEFAULT_STRATEGY)
    config = build_run_config(None, strategy, settings=merged, stages=merged.pop("stages", None))
    family = family_of(config)
    family.refuse_unused(strategy, [*(["model"] if model else []), *merged])  # e.g. a TF-IDF run takes no --model
    if not family.uses_model:
        return config
    if not model:
        raise TailTuneError("--model is required (a local model folder, a hub id or builtin:minilm), or "
                            "--strategy tfidf, which takes none")  # fmt: skip
    return config.replace(model=resolve_model(str(model)))


def _check_file_types(file_config: dict[str, Any]) -> None:
    """The --config keys that name a file, folder, column or strategy hold text, and ``overwrite`` true or false
    (the run settings are checked by the library's one validation)."""
    for key in ("model", "strategy", *_TRAIN_FILE_KEYS):
        value = file_config.get(key)
        wanted = bool if key == "overwrite" else str
        if value is not None and not isinstance(value, wanted):
            kind = "true or false" if wanted is bool else "a string"
            raise TailTuneError(f"--config: {key} must be {kind}, got {value!r}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train, print the test metrics (if any) and the run directory."""
    from tailtune.config import load_yaml
    from tailtune.data.builtin import load_splits
    from tailtune.runs.train import train_run

    file_config = load_yaml(args.config) if args.config else {}
    config = run_config_from_args(args, file_config)

    def get(key: str, default: Any = None) -> Any:
        """An option as given on the command line, else as the --config file gives it (an empty string counts as
        given, so that it is refused where it means nothing, not read as missing)."""
        value = getattr(args, key, None)
        return file_config.get(key, default) if value is None or value is False else value

    if not get("train"):
        raise TailTuneError("--train is required (a CSV/TSV/JSONL/Parquet file or a Hugging Face data set)")
    if not get("output"):
        raise TailTuneError("--output is required (the run directory to write)")
    columns = {"text_column": get("text_column", TEXT_COLUMN), "label_column": get("label_column", LABEL_COLUMN),
               "label_separator": get("label_separator")}  # fmt: skip
    splits = load_splits(get("train"), get("eval"), get("test"), **columns)
    # The plan and its estimated time print before training (on stderr, as the library's messages do).
    printer = [] if args.quiet or not _is_main_process() else [plan_printer()]
    metrics = train_run(config, splits, get("output"), overwrite=bool(get("overwrite", False)),
                        show_progress=not args.quiet, hooks=printer)  # fmt: skip
    if _is_main_process():
        if metrics.get("split"):
            print(metrics_table(metrics, full_scores=os.path.join(get("output"), "metrics.json")))
        timing = outcome_line(metrics.get("cost"))
        if timing and not args.quiet:  # beside the plan printed before training
            print(timing, file=sys.stderr)
        print(f"run directory: {get('output')}")
    return 0


def _is_main_process() -> bool:
    # Under torchrun / accelerate launch every process runs the command; one of them speaks.
    return int(os.environ.get("RANK", "0")) == 0
