"""``tailtune tune``: search strategies and budgets on validation data, then train the best on all the data."""

from __future__ import annotations

import argparse
import sys

from tailtune.cli.common import metrics_table
from tailtune.cli.cost import outcome_line, plan_printer
from tailtune.cli.options import add_data_columns, add_quiet_option, add_selection_options, add_setting
from tailtune.config import RunConfig, field_default
from tailtune.errors import TailTuneError
from tailtune.strategies import DEFAULT_TUNE_STRATEGIES, DEFAULT_TUNE_TRIALS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``tune`` subcommand."""
    tune = sub.add_parser(
        "tune", help="search strategies and budgets on validation data (Optuna), then train the best",
        description="Search strategies, learning rates per stage, step budgets and loss parameters with Optuna "
        "(TPE sampler, pruning on per-epoch validation scores) on a validation split (--eval, else held out of "
        "--train), then train the best settings on all the training data. Writes OUT/trials.csv, OUT/best.json, "
        "OUT/best/ (a complete run directory) and OUT/study.db; running again resumes the study, and several "
        "workers may share one study (same OUT, or --storage URL).",
    )  # fmt: skip
    tune.add_argument("--train", required=True, help="training data (file, save_to_disk folder, hub or builtin: name)")
    tune.add_argument("--eval", help="validation data (default: held out of --train)")
    tune.add_argument("--test", help="test data, scored only for the final model (never used to choose)")
    tune.add_argument(
        "--model",
        help="local model folder, hub id or builtin:minilm (not needed where only TF-IDF strategies are searched)",
    )
    tune.add_argument("--output", required=True, help="tuning folder")
    tune.add_argument("--strategies", nargs="+", metavar="NAME",
                      help=f"strategies to search (default {' '.join(DEFAULT_TUNE_STRATEGIES)})")  # fmt: skip
    tune.add_argument("--trials", type=int, default=DEFAULT_TUNE_TRIALS,
                      help="finished trials the study should reach (default %(default)s)")  # fmt: skip
    tune.add_argument("--timeout", type=float, metavar="SECONDS", help="stop searching after this long")
    add_setting(tune, "time_budget", "the longest the search and the final run may take together, e.g. 90s, 10m, "
                "1h30m or seconds: trials start while the search's share is left and train within it, and the final "
                "run's plan shrinks to fit what is left", metavar="DURATION")  # fmt: skip
    tune.add_argument("--storage", metavar="URL", help="Optuna storage shared by workers (default OUT/study.db)")
    tune.add_argument("--fresh", action="store_true",
                      help="delete the study already there (and OUT's trials and final model) and start anew; a study "
                      "is otherwise resumed, and refused where its data or a setting changed")  # fmt: skip
    add_setting(tune, "seed", "seeds the sampler, the split and every trial", default=field_default(RunConfig, "seed"))
    for setting in ("max_length", "long_texts", "batch_size", "pooling"):
        add_setting(tune, setting)
    add_quiet_option(tune)
    add_selection_options(tune)
    add_data_columns(tune)
    tune.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    """Run the search, print one line per trial and the final model's metrics."""
    from tailtune.data.builtin import load_splits, resolve_model
    from tailtune.experiments.tune import tune
    from tailtune.models.family import family_of
    from tailtune.strategies import RUN_SETTINGS, build_run_config

    if args.trials is not None and args.trials < 1:
        raise TailTuneError("--trials must be at least 1")
    columns = {"text_column": args.text_column, "label_column": args.label_column,
               "label_separator": args.label_separator}  # fmt: skip
    splits = load_splits(args.train, args.eval, args.test, **columns)
    settings = {k: getattr(args, k) for k in RUN_SETTINGS if k != "seed" and getattr(args, k, None) is not None}
    time_budget = settings.pop("time_budget", None)  # the whole search's, not each trial's
    strategies = args.strategies or list(DEFAULT_TUNE_STRATEGIES)
    families = [family_of(build_run_config(None, strategy)) for strategy in strategies]
    if not any(family.uses_model for family in families):
        # E.g. a TF-IDF search: no model, and none of the settings that shape one (as train refuses).
        families[0].refuse_unused(", ".join(strategies), [*(["model"] if args.model else []), *settings])
        model = None
    elif not args.model:
        raise TailTuneError("--model is required (a local model folder, a hub id or builtin:minilm)")
    else:
        model = resolve_model(args.model)

    def report(trial: dict) -> None:
        value = "-" if trial["value"] is None else f"{trial['value']:.4f}"
        seconds = "" if trial["seconds"] is None else f" in {trial['seconds']:.0f}s"
        if trial["seconds"] is not None and trial.get("estimate_s"):
            seconds += f" (estimated {trial['estimate_s']:.0f}s)"
        print(f"trial {trial['number']}: {trial['state'].lower()} {trial['strategy']} validation {value}{seconds}",
              flush=True)  # fmt: skip

    result = tune(model, splits, args.output, strategies=args.strategies, trials=args.trials,
                  timeout=args.timeout, storage=args.storage, settings=settings, seed=args.seed,
                  show_progress=not args.quiet, on_trial=report, fresh=args.fresh, time_budget=time_budget,
                  hooks=[] if args.quiet else [plan_printer(compact=True)])  # fmt: skip
    stages = result.settings["stages"]
    chosen = {**result.settings["settings"], **({"stages": stages} if any(stages) else {})}
    print(f"kept: {result.strategy} {chosen or 'as train runs it'} (validation {result.validation_score:.4f}, "
          f"{result.n_trials} trials; why: {args.output}/best.json)")  # fmt: skip
    if result.final_metrics.get("split"):
        print(metrics_table(result.final_metrics, full_scores=f"{args.output}/best/metrics.json"))
    timing = outcome_line(result.final_metrics.get("cost"))
    if timing and not args.quiet:  # beside the plans printed before training
        print(f"final model {timing}", file=sys.stderr)
    print(f"tuning folder: {args.output} (final model in {args.output}/best)")
    return 0
