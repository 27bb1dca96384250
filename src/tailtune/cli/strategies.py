"""``tailtune strategies``: list the strategies and their stages."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``strategies`` subcommand."""
    strategies = sub.add_parser("strategies", help="list the strategies and their stages")
    strategies.set_defaults(func=cmd_strategies)


def cmd_strategies(args: argparse.Namespace) -> int:
    """Print every strategy with its stages."""
    from tailtune.strategies import describe_strategies

    print(describe_strategies())
    return 0
