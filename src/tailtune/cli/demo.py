"""``tailtune demo``: the offline demo on the embedded BBC News data and MiniLM."""

from __future__ import annotations

import argparse

from tailtune.cli.options import add_quiet_option


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    demo = sub.add_parser("demo", help="offline demo on the embedded BBC News data and MiniLM",
                          description="Make BBC News long-tailed (300 -> 6 per topic), fit the TF-IDF baseline "
                          "('tfidf', seconds), train vanilla, reweight and two-stage at fixed budgets and two-stage "
                          "with tailtune's validation-driven defaults ('default') with the embedded "
                          "all-MiniLM-L6-v2, and print validation and per-class test F1.")  # fmt: skip
    demo.add_argument("--output", default="tailtune-demo", help="folder for the runs (default %(default)s)")
    demo.add_argument("--strategies", nargs="+", default=None,
                      help="rows to run: tfidf, vanilla, reweight, two-stage, default (default: all)")  # fmt: skip
    add_quiet_option(demo)
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo's strategies into ``--output``."""
    from tailtune.experiments.demo import format_demo_table, run_demo

    results = run_demo(args.output, strategies=args.strategies, show_progress=not args.quiet)
    print(format_demo_table(results))
    print(f"runs written to {args.output}/ ('tailtune report {args.output}' makes an HTML report)")
    return 0
