"""Experiment subcommands: ``make-imbalanced``, ``compare`` and ``report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tailtune.errors import TailTuneError

# The exit status of an interrupted command, as for SIGINT in a shell; re-running a compare resumes it.
INTERRUPTED = 130


def cmd_make_imbalanced(args: argparse.Namespace) -> int:
    from tailtune.data import load_dataset
    from tailtune.imbalance import holdout_then_long_tail, write_imbalanced

    if (args.ratio is None) == (args.minority is None):
        raise TailTuneError("give either --ratio (multi-class long tail) or --minority with --rate (binary)")
    if args.minority is not None and args.rate is None:
        raise TailTuneError("--minority needs --rate (the kept fraction of the majority class's size)")
    data = load_dataset(args.input, text_column=args.text_column, label_column=args.label_column)
    split = holdout_then_long_tail(
        data, ratio=args.ratio, profile=args.profile, order=args.order, max_per_class=args.max_per_class,
        minority=args.minority, rate=args.rate, test_per_class=args.test_per_class, seed=args.seed,
    )  # fmt: skip
    suffix = args.format or _suffix_of(args.input)
    paths = write_imbalanced(split, args.output, fmt_suffix=suffix, text_column=args.text_column,
                             label_column=args.label_column)  # fmt: skip
    for name, count in split.counts["train"].items():
        print(f"{name:<30} {count:>7}")
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


def _suffix_of(spec: str) -> str:
    suffix = Path(spec.split(":")[0]).suffix.lower()
    return suffix if suffix in (".csv", ".tsv", ".jsonl", ".json", ".parquet") else ".parquet"


def cmd_report(args: argparse.Namespace) -> int:
    from tailtune.report import build_report

    html, markdown = build_report(
        args.runs, output=args.output, baseline=args.baseline, per_class_png=args.per_class_png
    )
    print(f"report: {html}\nmarkdown: {markdown}")
    if args.per_class_png:
        print(f"per-class plot: {args.per_class_png}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tailtune.experiments.plan import describe_plan
    from tailtune.experiments.runner import CompareInterrupted, prepare_compare, run_compare
    from tailtune.experiments.summary import format_table

    if args.dry_run:
        prepared = prepare_compare(args.config, output=args.output, write_data=False)
        print(describe_plan(prepared.experiment, prepared.plan, prepared.splits))
        return 0
    try:
        result = run_compare(args.config, output=args.output, show_progress=not args.quiet)
    except CompareInterrupted as stop:
        print(f"\ninterrupted: {stop.done} of {stop.total} runs complete in {stop.output}; run the same command "
              "again to resume", file=sys.stderr)  # fmt: skip
        return INTERRUPTED
    print(format_table(result.summary))
    output = result.experiment.output
    print(f"summary: {result.summary_csv}, {result.summary_json} ('tailtune report {output}' makes an HTML report)")
    return 0


def add_experiment_commands(sub) -> None:
    """Register the experiment subcommands on the main parser's subparsers."""
    make = sub.add_parser(
        "make-imbalanced",
        help="make a data set long-tailed (or a binary one imbalanced), with exact counts",
        description="De-duplicate texts, optionally hold out a balanced test set, then downsample: "
        "--ratio R --profile exp|step for a multi-class long tail, or --minority LABEL --rate F for the "
        "binary recipe (keep floor(n_major * F) of the minority class). Writes the data in the input's "
        "format plus counts.json.",
    )
    make.add_argument("--input", required=True, help="labelled data file or data set")
    make.add_argument("--output", required=True, help="folder to write train/test files and counts.json")
    make.add_argument("--ratio", type=float, help="imbalance ratio n_max / n_min (>= 1)")
    make.add_argument("--profile", default="exp", help="exp (exponential) or step (default exp)")
    make.add_argument("--max-per-class", type=int, help="size of the largest class (default: smallest class)")
    make.add_argument("--order", nargs="+", metavar="LABEL", help="classes from head to tail (default: seeded)")
    make.add_argument("--minority", help="binary recipe: the class to downsample")
    make.add_argument("--rate", type=float, help="binary recipe: fraction in (0, 1]")
    make.add_argument("--test-per-class", type=int, help="hold out a balanced test set of N per class first")
    make.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    make.add_argument("--format", help="output format (.csv, .tsv, .jsonl, .parquet); default: the input's")
    make.add_argument("--text-column", default="text", help="name of the text column (default text)")
    make.add_argument("--label-column", default="label", help="name of the label column (default label)")
    make.set_defaults(func=cmd_make_imbalanced)

    compare = sub.add_parser(
        "compare",
        help="run strategies x seeds x data variants from a YAML experiment (resumable)",
        description="Run every (data variant, strategy, seed) of an experiment config into "
        "OUT/<variant>/<strategy>/seed-<k>/, skipping complete runs, then write summary.csv and summary.json.",
    )
    compare.add_argument("--config", required=True, help="experiment YAML (see examples/)")
    compare.add_argument("--output", help="output folder (overrides the config's 'output')")
    compare.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    compare.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    compare.set_defaults(func=cmd_compare)

    report = sub.add_parser(
        "report",
        help="write an HTML + Markdown report from run directories",
        description="Read complete run directories (nothing is trained) and write one self-contained HTML file "
        "(plots embedded) and a Markdown version with its images next to it.",
    )
    report.add_argument("runs", help="folder holding run directories (an experiment, a demo, or one run)")
    report.add_argument("--output", help="HTML file to write (default RUNS/report.html)")
    report.add_argument("--baseline", default="vanilla", help="strategy to compare against (default vanilla)")
    report.add_argument("--per-class-png", metavar="PNG", help="also write the per-class F1 vs frequency figure here")
    report.set_defaults(func=cmd_report)
