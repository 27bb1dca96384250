"""``tailtune report``: an HTML + Markdown report from run directories."""

from __future__ import annotations

import argparse

from tailtune.cli.options import add_quiet_option


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    report = sub.add_parser(
        "report",
        help="write an HTML + Markdown report from run directories",
        description="Read complete run directories (nothing is trained) and write one self-contained HTML file "
        "(plots embedded) and a Markdown version with its images next to it.",
    )
    report.add_argument("runs", help="folder holding run directories (an experiment, a demo, or one run)")
    report.add_argument("--output", help="HTML file to write (default RUNS/report.html)")
    report.add_argument(
        "--baseline",
        help="strategy to compare against (default: the experiment's baseline as "
        "RUNS/summary.json records it, else vanilla)",
    )
    report.add_argument("--per-class-png", metavar="PNG", help="also write the per-class F1 vs frequency figure here")
    add_quiet_option(report)
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report and print where its files went."""
    from tailtune.report import build_report

    html, markdown = build_report(
        args.runs, output=args.output, baseline=args.baseline, per_class_png=args.per_class_png
    )
    print(f"report: {html}\nmarkdown: {markdown}")
    if args.per_class_png:
        print(f"per-class plot: {args.per_class_png}")
    return 0
