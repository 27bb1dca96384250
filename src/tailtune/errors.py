"""The one exception type users see for their own mistakes."""

from __future__ import annotations


class TailTuneError(Exception):
    """A user-facing error: bad input, a bad option, a missing file.

    The CLI prints its message as one line and exits with status 2, without a traceback, so the message
    must name the file, row or option at fault and say what to do.
    """
