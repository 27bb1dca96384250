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
    from tailtune.task import SINGLE_TO_MULTILABEL

    print(describe_strategies())
    mapped = ", ".join(f"{single} -> {multi}" for single, multi in SINGLE_TO_MULTILABEL.items())
    print(f"\nOn label sets (several labels a text) each loss trains as its multi-label counterpart: {mapped}; ce "
          "with class weights is cb, and ce after a stage of db keeps db (two-stage's second stage). --loss names a "
          "multi-label loss directly (README: 'Several labels per text').")  # fmt: skip
    return 0
