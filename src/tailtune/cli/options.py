"""The options the commands share, and the options of run settings, declared from :mod:`tailtune.config`.

A run setting's option takes its type, its valid values and the default its help names from the config's
declaration (:func:`add_setting`), so that each value is written down once. A setting left off the command line
reads as None: ``train`` then takes it from ``--config``, else from the config's default. Nothing here imports
more than the config and :mod:`tailtune.training.lengths` (NumPy), so that ``tailtune --help`` stays quick.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from tailtune.config import (
    CHOICES,
    DEFAULT_MAX_LENGTH,
    PREDICT_LONG_TEXTS,
    REFIT_BELOW_MEDIAN_CLASS,
    RunConfig,
    StageConfig,
    number_type,
)
from tailtune.errors import TailTuneError
from tailtune.strategies import STAGE_SHORTCUTS
from tailtune.training.lengths import COST_CAP, MAX_WINDOWS, PERCENTILE, ROUND_TO

#: The columns data is read from unless ``--text-column``/``--label-column`` say otherwise.
TEXT_COLUMN = "text"
LABEL_COLUMN = "label"

MAX_LENGTH_HELP = ("max tokens per text in training, special tokens included (default: from the training texts, "
                   f"their {PERCENTILE}th percentile rounded up to a multiple of {ROUND_TO}, at least "
                   f"{DEFAULT_MAX_LENGTH} and at most {COST_CAP}, within the model's limit; logged)")  # fmt: skip
LONG_TEXTS_HELP = ("how evaluation and prediction read a text longer than --max-length: chunks reads it whole, in up "
                   f"to {MAX_WINDOWS} windows of --max-length tokens whose logits are averaged; truncate reads its "
                   "first --max-length tokens, as training does; auto (default) chooses on the validation split "
                   "once training ends, truncate unless chunks scores better; recorded with the saved "
                   "model")  # fmt: skip


def setting_field(setting: str) -> dataclasses.Field:
    """The config field a setting sets: a :class:`RunConfig` field, or the stage field of a stage shortcut."""
    if setting in STAGE_SHORTCUTS:
        return {f.name: f for f in dataclasses.fields(StageConfig)}[STAGE_SHORTCUTS[setting]]
    return {f.name: f for f in dataclasses.fields(RunConfig)}[setting]


def add_setting(parser: Any, setting: str, help: str, *, flag: str | None = None, **kwargs: Any) -> argparse.Action:
    """Add the option of a setting with the type, valid values and default its config field declares.

    A setting given once that takes one of a fixed set of values (:data:`tailtune.config.CHOICES`) gets them as
    argparse choices; a per-stage list (``nargs``) is checked by the config, whose message names the stage.

    Args:
        parser: A parser or an argument group.
        setting: A :class:`RunConfig` field or a stage shortcut (:data:`tailtune.strategies.STAGE_SHORTCUTS`).
        help: The help text; ``{default}`` stands for the config's default, ``{choices}`` for the valid values.
        flag: The option (default ``--`` and the setting, dashed).
        **kwargs: Further ``add_argument`` keywords (``nargs``, ``metavar``, ``action``, ...).
    """
    f = setting_field(setting)
    choices = CHOICES.get(f.name)
    if "action" not in kwargs:
        kwargs.setdefault("type", number_type(f))
        if choices and "nargs" not in kwargs:
            kwargs.setdefault("choices", choices)
    help = help.format(default=_shown(f.default), choices=_listed(choices or ()))
    return parser.add_argument(flag or "--" + setting.replace("_", "-"), help=help, **kwargs)


def _precision_help(why: str = "") -> str:
    return ("default {default}: bf16 on GPUs that support it and on CPUs with native bf16 (AMX-BF16 or AVX512-BF16"
            f"{why}), else full precision")  # fmt: skip


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else "".join(values)


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    """Add ``-q/--quiet``: the command line's ``main`` reads it before the command runs."""
    parser.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress bars, no library messages, only warnings and errors on stderr (results still print)",
    )  # fmt: skip


def add_data_columns(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """Add ``--text-column`` and ``--label-column``; without ``defaults`` a column not given reads as None (for
    ``train``, whose ``--config`` file may name it)."""
    parser.add_argument("--text-column", help=f"name of the text column (default {TEXT_COLUMN})")
    parser.add_argument("--label-column", help=f"name of the label column (default {LABEL_COLUMN})")
    if defaults:
        parser.set_defaults(text_column=TEXT_COLUMN, label_column=LABEL_COLUMN)


def add_predict_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of the commands that run a saved model (``evaluate``, ``predict``)."""
    parser.add_argument(
        "--max-length", type=int,
        help="max tokens per text (or per window of a longer text), special tokens included (default: the length "
        "the model was trained at, else the model's limit up to 512)",
    )  # fmt: skip
    add_setting(parser, "long_texts", f"a text longer than --max-length: chunks reads it whole, in up to "
                f"{MAX_WINDOWS} windows whose logits are averaged; truncate reads its first --max-length tokens "
                "(default: as recorded with the model, else truncate)", choices=PREDICT_LONG_TEXTS)  # fmt: skip
    add_setting(parser, "eval_batch_size", "batch size (default {default})", flag="--batch-size")
    add_setting(parser, "mixed_precision", _precision_help())
    parser.add_argument("--trust-remote-code", action="store_true", help="allow checkpoint code")
    add_data_columns(parser)
    add_quiet_option(parser)


def predict_settings(args: argparse.Namespace) -> dict[str, int | str]:
    """The prediction settings given on the command line, as ``TailTuner.load`` takes them."""
    # An option given is passed on whatever its value (0 is not "not given"): TailTuner.load checks each one.
    if args.batch_size is not None and args.batch_size < 1:  # checked here: the library calls it eval_batch_size
        raise TailTuneError(f"--batch-size must be >= 1, got {args.batch_size}")
    given = {"max_length": args.max_length, "long_texts": args.long_texts, "eval_batch_size": args.batch_size,
             "mixed_precision": args.mixed_precision}  # fmt: skip
    return {name: value for name, value in given.items() if value is not None}


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add the model, the strategy and every run setting, the validation and stage groups included (``train``)."""
    parser.add_argument("--model", help="local model folder or Hugging Face hub id")
    add_setting(parser, "strategy", "strategy name (see 'tailtune strategies'); default {default}")
    add_setting(parser, "head", "classification head (default {default})")
    add_setting(parser, "seed", "random seed (default {default})")
    add_setting(parser, "max_length", MAX_LENGTH_HELP)
    add_setting(parser, "long_texts", LONG_TEXTS_HELP)
    add_setting(parser, "batch_size", "per-device training batch size (default {default})")
    add_setting(parser, "eval_batch_size", "per-device evaluation batch size (default {default})")
    add_setting(parser, "gradient_accumulation_steps", "batches per optimiser step")
    add_setting(parser, "mixed_precision", _precision_help(", read from the CPU flags; config.json records why"))
    parser.add_argument("--no-feature-cache", dest="feature_cache", action="store_false", default=None,
                        help="run frozen layers in every step instead of caching their output")  # fmt: skip
    parser.add_argument("--no-group-by-length", dest="group_by_length", action="store_false", default=None,
                        help="random batches without grouping similar lengths")  # fmt: skip
    add_setting(parser, "cache_dir", "folder for feature caches shared between runs")
    parser.add_argument("--trust-remote-code", action="store_true", default=None, help="allow checkpoint code")
    add_setting(parser, "report_to", "experiment tracker for losses, validation scores, final metrics and the config "
                "(default {default}; tensorboard writes RUN/tensorboard; needs tailtune[tracking])")  # fmt: skip
    add_setting(parser, "attention_dropout", "dropout on attention probabilities while training (default {default}, "
                "faster on CPUs; BERT-style checkpoints ship 0.1; null in a config file keeps the checkpoint's)",
                metavar="P")  # fmt: skip
    add_setting(parser, "pooling", "what the head reads: {default} (default) mean-pools sentence-transformers "
                "checkpoints, cls reads the [CLS] pooler")  # fmt: skip
    add_selection_options(parser)
    add_stage_options(parser)


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """Validation split, model selection, refit and the decision rule (``train`` and ``tune``)."""
    group = parser.add_argument_group(
        "validation and selection",
        "without --eval, a stratified validation split is held out of the training data; each stage keeps its "
        "best epoch on it, the decision rule is tuned on it, and where the median class has fewer than "
        f"{REFIT_BELOW_MEDIAN_CLASS} examples the final model is retrained on all the data",
    )
    add_setting(group, "eval_fraction", "share of each class held out when no --eval is given (default {default}; "
                "0 turns it off)", metavar="F")  # fmt: skip
    add_setting(group, "eval_min_class_count", "classes with fewer training examples stay whole in training "
                "(default {default})", metavar="N")  # fmt: skip
    add_setting(group, "select_metric", "validation metric that picks each stage's best epoch (default {default})")
    add_setting(group, "eval_steps", "also evaluate every N optimiser steps within an epoch, for long epochs "
                "(default: epoch ends only)", metavar="N")  # fmt: skip
    add_setting(group, "patience", "evaluations without validation improvement before a stage stops "
                "(default {default})", metavar="N")  # fmt: skip
    group.add_argument(
        "--no-refit",
        dest="refit",
        action="store_false",
        default=None,
        help="keep the model selected on the held-out split instead of retraining on all the data (by default "
        f"retrained where the median class has fewer than {REFIT_BELOW_MEDIAN_CLASS} training examples)",
    )
    add_setting(group, "calibrate", "decision rule chosen on validation and folded into the bias (default {default})")


def add_stage_options(parser: argparse.ArgumentParser) -> None:
    """The stage shortcuts, each one value for every stage or one per stage (``train``)."""
    group = parser.add_argument_group(
        "stage overrides", "give one value for every stage, or one value per stage (e.g. --lr 1e-3 5e-5)"
    )
    add_setting(group, "epochs", "epochs per stage (at least: --min-steps may add more)", nargs="+", metavar="N")
    add_setting(group, "lr", "peak learning rate per stage", nargs="+", metavar="LR")
    add_setting(group, "loss", "loss per stage ({choices})", nargs="+", metavar="NAME")
    add_setting(group, "weights", "class weights per stage", nargs="+", metavar="SCHEME")
    add_setting(group, "trainable", "head, top1..topK or all, per stage", nargs="+", metavar="SCOPE")
    add_setting(group, "stage_batch_size", "batch size per stage", nargs="+", metavar="N")
    add_setting(group, "beta", "effective-number beta per stage", nargs="+", metavar="B")
    add_setting(group, "sampler", "{choices}, per stage", nargs="+", metavar="S")
    add_setting(group, "min_steps", "raise epochs until a stage makes N optimiser steps (0: epochs as given)",
                nargs="+", metavar="N")  # fmt: skip
