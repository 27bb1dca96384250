"""``tailtune strategies``."""

from __future__ import annotations

from conftest import run_cli

from tailtune.strategies import describe_strategies


def test_strategies_command(capsys):
    """tailtune strategies prints the strategy listing."""
    code, out, _ = run_cli(capsys, "strategies")
    assert code == 0
    assert out == describe_strategies() + "\n"
