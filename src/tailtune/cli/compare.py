"""``tailtune compare``: run strategies x seeds x data variants from a YAML experiment (resumable)."""

from __future__ import annotations

import argparse
import sys

from tailtune.cli.common import INTERRUPTED
from tailtune.cli.cost import plan_printer
from tailtune.cli.options import add_quiet_option, add_setting
from tailtune.durations import format_duration


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    compare = sub.add_parser(
        "compare",
        help="run strategies x seeds x data variants from a YAML experiment (resumable)",
        description="Run every (data variant, strategy, seed) of an experiment config into "
        "OUT/<variant>/<strategy>/seed-<k>/, skipping complete runs, then write summary.csv and summary.json.",
    )
    compare.add_argument("--config", required=True, help="experiment YAML (see examples/)")
    compare.add_argument("--output", help="output folder (overrides the config's 'output')")
    compare.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    add_setting(compare, "time_budget", "the longest the whole experiment may take, e.g. 90s, 10m, 1h30m or "
                "seconds: each run left gets an equal share of the time left, and no run starts once it is spent "
                "(run the same command again to train the rest)", metavar="DURATION")  # fmt: skip
    add_quiet_option(compare)
    compare.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """Print the plan (``--dry-run``) or run the experiment and print its summary table."""
    if args.dry_run:  # reads and checks only: the training modules (and torch) are not imported
        from tailtune.experiments.plan import describe_plan, prepare_compare

        prepared = prepare_compare(args.config, output=args.output, write_data=False)
        print(describe_plan(prepared.experiment, prepared.plan, prepared.splits))
        return 0
    from tailtune.experiments.runner import CompareInterrupted, run_compare
    from tailtune.experiments.summary import format_table

    try:
        result = run_compare(args.config, output=args.output, show_progress=not args.quiet,
                             time_budget=args.time_budget,
                             hooks=[] if args.quiet else [plan_printer(compact=True)])  # fmt: skip
    except CompareInterrupted as stop:
        print(f"\ninterrupted: {stop.done} of {stop.total} runs complete in {stop.output}; run the same command "
              "again to resume", file=sys.stderr)  # fmt: skip
        return INTERRUPTED
    if result.unstarted:
        print(f"time budget spent: {len(result.unstarted)} run(s) not started; run the same command again to train "
              "them")  # fmt: skip
    if result.estimates and not args.quiet:  # beside the plans printed before training
        estimated, took = (sum(pair) for pair in zip(*result.estimates, strict=True))
        print(f"time: {len(result.estimates)} run(s) took {format_duration(took)}, estimated "
              f"{format_duration(estimated)} ({(took - estimated) / estimated:+.0%})", file=sys.stderr)  # fmt: skip
    if result.summary is None:
        if result.busy:
            print(f"every run left is being trained by another worker on {result.experiment.output}")
        return 0
    print(format_table(result.summary))
    for failure in result.summary.get("failed", []):
        print(f"failed: {failure['run']}: {failure['reason']}")
    if result.busy:
        print(f"{len(result.busy)} run(s) left to other workers on this output; their summary includes them")
    output = result.experiment.output
    print(f"summary: {result.summary_csv}, {result.summary_json} ('tailtune report {output}' makes an HTML report)")
    return 0
