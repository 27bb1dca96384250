"""``tailtune make-imbalanced``: make a data set long-tailed (or a binary one imbalanced), with exact counts."""

from __future__ import annotations

import argparse
from pathlib import Path

from tailtune.cli.options import add_data_columns, add_quiet_option
from tailtune.errors import TailTuneError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``make-imbalanced`` subcommand."""
    make = sub.add_parser(
        "make-imbalanced",
        help="make a data set long-tailed (or a binary one imbalanced), with exact counts",
        description="De-duplicate texts, optionally hold out a balanced test set, then downsample: "
        "--ratio R --profile exp|step for a multi-class long tail, or --minority LABEL --rate F for the "
        "binary recipe (keep floor(n_major * F) of the minority class). Writes the data in the input's "
        "format plus counts.json.",
    )
    make.add_argument(
        "--input",
        required=True,
        help="labelled data (.csv/.tsv/.jsonl/.parquet, a save_to_disk folder, a hub data set, or builtin:bbc-news)",
    )
    make.add_argument(
        "--output", required=True,
        help="folder to write train/test files and counts.json; a split written there before (with its counts.json) "
        "is replaced as a whole, a folder holding other files, or the --input, is refused",
    )  # fmt: skip
    make.add_argument("--ratio", type=float, help="imbalance ratio n_max / n_min (>= 1)")
    make.add_argument("--profile", default="exp", help="exp (exponential) or step (default %(default)s)")
    make.add_argument("--max-per-class", type=int, help="size of the largest class (default: smallest class)")
    make.add_argument("--order", nargs="+", metavar="LABEL", help="classes from head to tail (default: seeded)")
    make.add_argument("--minority", help="binary recipe: the class to downsample")
    make.add_argument("--rate", type=float, help="binary recipe: fraction in (0, 1]")
    make.add_argument("--test-per-class", type=int, help="hold out a balanced test set of N per class first")
    make.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    make.add_argument("--format", help="output format (.csv, .tsv, .jsonl, .parquet); default: the input's")
    add_data_columns(
        make,
        separator_help="the string that joins labels in the label cells of a multi-label CSV/TSV, "
        "named to have such data refused plainly: an imbalanced split needs one label a text",
    )
    add_quiet_option(make)
    make.set_defaults(func=cmd_make_imbalanced)


def cmd_make_imbalanced(args: argparse.Namespace) -> int:
    """Write the imbalanced split and print the training count of each class."""
    from tailtune.data.builtin import load_data
    from tailtune.data.imbalance import holdout_then_long_tail
    from tailtune.data.split_folder import check_split_folder, write_imbalanced

    if (args.ratio is None) == (args.minority is None):
        raise TailTuneError("give either --ratio (multi-class long tail) or --minority with --rate (binary)")
    if args.minority is not None and args.rate is None:
        raise TailTuneError("--minority needs --rate (the kept fraction of the majority class's size)")
    check_split_folder(args.output, inputs={"--input": args.input})  # before the data is read and split, not after
    data = load_data(args.input, text_column=args.text_column, label_column=args.label_column,
                     label_separator=args.label_separator)  # fmt: skip
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
    # The input's own format when tailtune can write it; hub data sets and folders become Parquet.
    from tailtune.data.readers import SUPPORTED_EXTENSIONS

    suffix = Path(spec.split(":")[0]).suffix.lower()
    return suffix if suffix in SUPPORTED_EXTENSIONS else ".parquet"
