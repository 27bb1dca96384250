"""``tailtune strategies``."""

from __future__ import annotations

from conftest import run_cli

from tailtune.strategies import describe_strategies


def test_strategies_command(capsys):
    """tailtune strategies prints the strategy listing, then how each loss trains on label sets."""
    code, out, _ = run_cli(capsys, "strategies")
    assert code == 0
    listing, note = out.split("\n\n")
    assert listing == describe_strategies()
    assert "ce -> bce" in note and "ldam -> db" in note and "ce after a stage of db keeps db" in note
