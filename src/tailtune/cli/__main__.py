"""``python -m tailtune.cli`` runs the command line."""

from tailtune.cli import run

run()
