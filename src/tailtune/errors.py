"""The one exception type users see for their own mistakes."""

from __future__ import annotations


class TailTuneError(ValueError):
    """A user-facing error: bad input, a bad option, a missing file.

    A :class:`ValueError`, so that code written for scikit-learn estimators (which raise ``ValueError`` for bad
    input) catches it too.

    The CLI prints its message as one line and exits with status 2, without a traceback, so the message
    must name the file, row or option at fault and say what to do.

    Library code names a setting as the Python API and YAML files spell it (``lr``, ``beta``) and passes it as
    ``setting``; the command line then speaks of its flag (``--lr``) instead.

    Args:
        message: One line saying what is wrong and what to do.
        setting: The setting at fault, if the message begins with its name.
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class TrainingDiverged(TailTuneError):
    """Training produced a non-finite loss or weights; nothing of the run is saved as if it were complete."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty.

    Third-party errors (pandas, pyarrow, YAML, transformers) can run to many lines; a
    :class:`TailTuneError` quotes only the first so that the CLI still prints one line.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
