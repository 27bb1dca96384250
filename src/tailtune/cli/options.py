"""The options the commands share, and the options of settings, built from the settings' declarations.

A setting's option takes its type, its valid values and its help (with the default it names) from the setting's
declaration in :mod:`tailtune.config` (:func:`add_setting`; :mod:`tailtune.settings`), so that each is written down
once. A setting left off the command line reads as None: ``train`` then takes it from ``--config``, else from the
config's default. Nothing here imports more than the config and :mod:`tailtune.models.lengths` (NumPy), so that
``tailtune --help`` stays quick.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from tailtune.config import DEFAULT_MAX_LENGTH, PREDICT_LONG_TEXTS, REFIT_BELOW_MEDIAN_CLASS, PredictSettings
from tailtune.models.lengths import COST_CAP, MAX_WINDOWS, PERCENTILE, ROUND_TO
from tailtune.settings import check_value, declaration, field_kind
from tailtune.strategies import setting_field

#: The columns data is read from unless ``--text-column``/``--label-column`` say otherwise.
TEXT_COLUMN = "text"
LABEL_COLUMN = "label"

#: The numbers that a declared help may quote by name (``{windows}``), from the modules whose rules they are.
HELP_NUMBERS = {"percentile": PERCENTILE, "round_to": ROUND_TO, "least": DEFAULT_MAX_LENGTH, "cost_cap": COST_CAP,
                "windows": MAX_WINDOWS}  # fmt: skip


def declaring_field(setting: str, config: type | None = None) -> dataclasses.Field:
    """The field that declares a setting: of ``config`` where given (:class:`~tailtune.config.PredictSettings`),
    else the run setting or stage shortcut of that name (:func:`tailtune.strategies.setting_field`)."""
    if config is None:
        return setting_field(setting)
    return {f.name: f for f in dataclasses.fields(config)}[setting]


def add_setting(
    parser: Any, setting: str, help: str | None = None, *, flag: str | None = None, config: type | None = None,
    **kwargs: Any,
) -> argparse.Action:  # fmt: skip
    """Add the option of a setting as its field declares it: its type, its valid values and its help.

    A setting given once that takes one of a fixed set of values gets them as argparse choices; a per-stage list
    (``nargs``) is checked by the config, whose message names the stage.

    Args:
        parser: A parser or an argument group.
        setting: A :class:`~tailtune.config.RunConfig` field or a stage shortcut
            (:data:`tailtune.strategies.STAGE_SHORTCUTS`), or a field of ``config``.
        help: The help text where a command says more or other than the declaration (default: the declared help);
            ``{default}`` stands for the declared default, ``{choices}`` for the valid values, and the names of
            :data:`HELP_NUMBERS` for those numbers.
        flag: The option (default ``--`` and the setting, dashed).
        config: The config dataclass that declares the setting, where it is not a run setting.
        **kwargs: Further ``add_argument`` keywords (``nargs``, ``metavar``, ``action``, ``choices``, ...).
    """
    f = declaring_field(setting, config)
    kind, declared = field_kind(f)[0], declaration(f)
    choices = declared.choices if kind is str else ()
    if "action" not in kwargs:
        # A setting read from how it is written ("10m") reaches the config as a string, which checks and words it.
        kwargs.setdefault("type", kind if kind in (int, float) and declared.parse is None else None)
        if choices and "nargs" not in kwargs:
            kwargs.setdefault("choices", choices)
    text = (declared.help if help is None else help).format(default=_shown(f.default), choices=_listed(choices),
                                                             **HELP_NUMBERS)  # fmt: skip
    return parser.add_argument(flag or "--" + setting.replace("_", "-"), help=text, **kwargs)


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


#: What ``--label-separator`` does where a command reads label cells.
SEPARATOR_HELP = ("multi-label data in CSV/TSV: split each label cell on this string, e.g. '|' (a cell 'grain|wheat' "
                  "holds two labels; an empty cell none); columns holding lists (JSON lines, Parquet) are multi-label "
                  "without it")  # fmt: skip


def label_separator(value: str) -> str:
    """``--label-separator``'s type: any string but the empty one (which would split nothing)."""
    if not value:
        raise argparse.ArgumentTypeError("must not be empty; give the string between labels, such as '|'")
    return value


def add_data_columns(parser: argparse.ArgumentParser, *, defaults: bool = True, separator_help: str = SEPARATOR_HELP,
                     label_help: str = f"name of the label column (default {LABEL_COLUMN})") -> None:  # fmt: skip
    """Add ``--text-column``, ``--label-column`` and ``--label-separator`` (their help as the command uses them);
    without ``defaults`` a column not given reads as None (for ``train``, whose ``--config`` file may name it)."""
    parser.add_argument("--text-column", help=f"name of the text column (default {TEXT_COLUMN})")
    parser.add_argument("--label-column", help=label_help)
    parser.add_argument("--label-separator", metavar="CHAR", type=label_separator, help=separator_help)
    if defaults:
        parser.set_defaults(text_column=TEXT_COLUMN, label_column=LABEL_COLUMN)


def add_predict_options(parser: argparse.ArgumentParser, **column_help: str) -> None:
    """Add the options of the commands that run a saved model (``evaluate``, ``predict``); ``column_help`` words
    the column options as the command uses them (see :func:`add_data_columns`)."""
    add_setting(parser, "max_length", config=PredictSettings)
    add_setting(parser, "long_texts", config=PredictSettings, choices=PREDICT_LONG_TEXTS)  # "auto" is the default
    add_setting(parser, "eval_batch_size", config=PredictSettings, flag="--batch-size")
    add_setting(parser, "mixed_precision", config=PredictSettings)
    parser.add_argument("--trust-remote-code", action="store_true", help="allow checkpoint code")
    add_data_columns(parser, **column_help)
    add_quiet_option(parser)


def predict_settings(args: argparse.Namespace) -> dict[str, int | str]:
    """The prediction settings given on the command line, as ``TailTuner.load`` takes them."""
    # An option given is passed on whatever its value (0 is not "not given"): TailTuner.load checks each one.
    if args.batch_size is not None:  # checked here, where the error can name --batch-size (eval_batch_size to load)
        check_value(declaring_field("eval_batch_size", PredictSettings), args.batch_size, name="batch_size")
    given = {"max_length": args.max_length, "long_texts": args.long_texts, "eval_batch_size": args.batch_size,
             "mixed_precision": args.mixed_precision}  # fmt: skip
    return {name: value for name, value in given.items() if value is not None}


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add the model, the strategy and every run setting, the validation and stage groups included (``train``)."""
    parser.add_argument("--model", help="local model folder, Hugging Face hub id or builtin:minilm (the embedded "
                        "all-MiniLM-L6-v2, offline); required unless given in --config, except with --strategy "
                        "tfidf, which takes none")  # fmt: skip
    for setting in ("strategy", "head", "seed", "max_length", "long_texts", "batch_size", "eval_batch_size",
                    "gradient_accumulation_steps", "mixed_precision"):  # fmt: skip
        add_setting(parser, setting)
    parser.add_argument("--no-feature-cache", dest="feature_cache", action="store_false", default=None,
                        help="run frozen layers in every step instead of caching their output")  # fmt: skip
    parser.add_argument("--no-group-by-length", dest="group_by_length", action="store_false", default=None,
                        help="random batches without grouping similar lengths")  # fmt: skip
    add_setting(parser, "cache_dir")
    add_setting(parser, "trust_remote_code", action="store_true", default=None)
    add_setting(parser, "report_to")
    add_setting(parser, "attention_dropout", metavar="P")
    add_setting(parser, "pooling")
    add_setting(parser, "time_budget", metavar="DURATION")
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
    add_setting(group, "eval_fraction", metavar="F")
    add_setting(group, "eval_min_class_count", metavar="N")
    add_setting(group, "select_metric")
    add_setting(group, "eval_steps", metavar="N")
    add_setting(group, "patience", metavar="N")
    group.add_argument(
        "--no-refit",
        dest="refit",
        action="store_false",
        default=None,
        help="keep the model selected on the held-out split instead of retraining on all the data (by default "
        f"retrained where the median class has fewer than {REFIT_BELOW_MEDIAN_CLASS} training examples)",
    )
    add_setting(group, "calibrate")


def add_stage_options(parser: argparse.ArgumentParser) -> None:
    """The stage shortcuts, each one value for every stage or one per stage (``train``)."""
    group = parser.add_argument_group(
        "stage overrides", "give one value for every stage, or one value per stage (e.g. --lr 1e-3 5e-5)"
    )
    metavars = {"epochs": "N", "lr": "LR", "loss": "NAME", "weights": "SCHEME", "trainable": "SCOPE",
                "stage_batch_size": "N", "beta": "B", "sampler": "S", "min_steps": "N"}  # fmt: skip
    for setting, metavar in metavars.items():
        add_setting(group, setting, nargs="+", metavar=metavar)
