"""The ``tailtune`` command line: thin argparse subcommands that build configs and call the library.

Each command lives in its own module with a ``register`` function that adds its subparser; the modules
import the library inside their handlers, so that ``tailtune --help`` does not wait for torch. This package
is the only code that prints to the terminal or picks an exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from tailtune import __version__
from tailtune.cli import compare, demo, evaluate, make_imbalanced, predict, report, strategies, train, tune
from tailtune.cli.common import EPILOG, INTERRUPTED, print_error
from tailtune.errors import TailTuneError
from tailtune.fileio import environment_fault

__all__ = ["build_parser", "main", "run"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are the one line every tailtune error is (argparse prints the whole usage).

    Subcommand parsers are made of the same class, so ``tailtune train --max-length 3.5`` is one line too.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``tailtune`` parser with every subcommand, in the order ``--help`` lists them."""
    parser = _Parser(
        prog="tailtune",
        description="Fine-tune transformer text classifiers on class-imbalanced (long-tailed) data.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"tailtune {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (train, tune, evaluate, predict, strategies, demo, make_imbalanced, compare, report):
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tailtune`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = bool(getattr(args, "quiet", False))
    level = logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)  # fmt: skip
    # basicConfig does nothing where logging was set up before (a script calling main): -q holds there too.
    package_logger = logging.getLogger("tailtune")
    previous_level = package_logger.level
    if level == logging.WARNING:
        package_logger.setLevel(level)
    try:
        _quiet_libraries(quiet)
        status = args.func(args) or 0
        sys.stdout.flush()  # here, where a closed pipe is caught below, rather than at exit
        return status
    except TailTuneError as exc:
        print_error(exc)
        return 2
    except KeyboardInterrupt:
        print("tailtune: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`tailtune evaluate ... | head`): what it wanted it has. Point stdout at
        # nothing so that Python's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        # A full disk, a read-only folder, a refused permission: the environment's fault, not a bug; one line too.
        fault = environment_fault(exc)
        if fault is None:
            raise
        print_error(fault)
        return 2
    finally:
        package_logger.setLevel(previous_level)


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())


def _quiet_libraries(quiet: bool) -> None:
    """Silence what libraries print on their own; with ``quiet``, every progress bar too.

    transformers' load reports, warnings and bars (and huggingface_hub's bars and warnings) are off in every
    command: tailtune logs what matters. ``-q`` also turns off the bars of ``datasets`` (hub downloads, split
    generation); tailtune's own bars follow the commands' ``show_progress``.

    Nothing is imported here: the libraries read these variables when a command first imports them (only those
    that load a model or hub data do), and one a script imported before calling :func:`main` is told directly.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers' bars follow huggingface_hub's
    os.environ["HF_HUB_VERBOSITY"] = "error"  # its retries' warnings; the error that ends them is tailtune's line
    if "huggingface_hub.utils.logging" in sys.modules:  # read the variable on import: this one did already
        sys.modules["huggingface_hub.utils.logging"].set_verbosity_error()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.set_verbosity_error()
        sys.modules["transformers"].utils.logging.disable_progress_bar()  # huggingface_hub's bars too
    elif "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if quiet:
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
        if "datasets" in sys.modules:
            sys.modules["datasets"].disable_progress_bars()
