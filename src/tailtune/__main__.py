"""``python -m tailtune`` (and ``accelerate launch -m tailtune``) runs the command line."""

from tailtune.cli import run

run()
