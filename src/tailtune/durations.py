"""Durations as people write them (``90s``, ``10m``, ``1h30m``, ``600``), and back.

Nothing here imports more than the standard library: a config's ``time_budget`` is checked without loading a model.
"""

from __future__ import annotations

import math
import numbers
import re

from tailtune.errors import TailTuneError

#: Seconds per unit of a written duration.
UNITS = {"h": 3600, "m": 60, "s": 1}
#: One or more ``<number><unit>`` parts, largest unit first, each unit once (``1h30m``, ``2m30s``, ``1.5h``).
_WRITTEN = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?")
#: How a message says what is accepted.
ACCEPTED = "a duration such as 90s, 10m, 1h or 1h30m, or plain seconds"


def parse_duration(value: object) -> float:
    """Seconds of a duration: a number of seconds, or a string such as ``90s``, ``10m``, ``1h``, ``1h30m`` or
    ``600`` (seconds).

    Raises:
        TailTuneError: Anything else (a unit it does not know, a negative, zero or non-finite number, a bool);
            the message says what is accepted.
    """
    if isinstance(value, bool) or value is None:
        raise TailTuneError(f"must be {ACCEPTED}, got {value!r}")
    if isinstance(value, numbers.Real):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _seconds_of(value.strip().lower().replace(" ", ""))
        if seconds is None:
            raise TailTuneError(f"must be {ACCEPTED}, got {value!r}")
    else:
        raise TailTuneError(f"must be {ACCEPTED}, got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise TailTuneError(f"must be a positive, finite duration (90s, 10m, 1h, 1h30m or seconds), got {value!r}")
    return seconds


def _seconds_of(text: str) -> float | None:
    try:
        return float(text)  # plain seconds ("600", "90.5")
    except ValueError:
        pass
    match = _WRITTEN.fullmatch(text)
    if not text or match is None or not any(match.groupdict().values()):
        return None
    return sum(float(amount) * UNITS[unit] for unit, amount in match.groupdict().items() if amount)


def format_duration(seconds: float) -> str:
    """A duration as people read it: ``42 s``, ``3 min 05 s``, ``1 h 12 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"
