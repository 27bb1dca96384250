"""Small checkers for experiment-file values; each names the offending key in its message."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from typing import Any

from tailtune.errors import TailTuneError

# Names that become folder names: no separators, no leading dot or dash.
_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def check_keys(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """Refuse keys of ``data`` (found at ``where``) that are not in ``allowed``."""
    unknown = [str(k) for k in data if k not in allowed]
    if unknown:
        names = ", ".join(f"{where}.{k}" if where else k for k in unknown)
        raise TailTuneError(f"unknown key{'s' if len(unknown) > 1 else ''} {names}; valid: {', '.join(allowed)}")


def as_mapping(value: Any, where: str) -> dict[str, Any]:
    """A copy of a mapping value; a missing (None) value is an empty mapping."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TailTuneError(f"{where} must be a mapping, got {type(value).__name__}")
    return dict(value)


def as_text(value: Any, where: str) -> str:
    """A non-empty string value."""
    if not isinstance(value, str) or not value.strip():
        raise TailTuneError(f"{where} must be a non-empty string, got {value!r}")
    return value


def as_folder_name(value: Any, where: str) -> str:
    """A string usable as one folder name."""
    name = as_text(value, where)
    if not _FOLDER_NAME.match(name):
        raise TailTuneError(f"{where} {name!r} must be usable as a folder name (letters, digits, . _ + -)")
    return name


def as_number(value: Any, where: str, kind: type = float) -> Any:
    """A finite number (``kind`` int: a whole one, returned as int)."""
    # YAML reads 1e-3 as a string, so numeric strings are accepted.
    try:
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number) or (kind is int and not number.is_integer()):
        raise TailTuneError(f"{where} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    return int(number) if kind is int else number


def optional_int(value: Any, where: str, minimum: int) -> int | None:
    """An integer of at least ``minimum``, or None when the value is missing."""
    if value is None:
        return None
    number = as_number(value, where, int)
    if number < minimum:
        raise TailTuneError(f"{where} must be >= {minimum}, got {number}")
    return number


def at_least_one(value: Any, where: str) -> int | float:
    """A number >= 1, whole numbers as int."""
    number = plain_number(as_number(value, where))
    if number < 1:
        raise TailTuneError(f"{where} must be >= 1, got {number}")
    return number


def plain_number(number: float) -> int | float:
    """``10.0`` -> ``10``, so that names, JSON and hashes show whole numbers as integers."""
    return int(number) if float(number).is_integer() else number


def as_list(value: Any) -> list[Any]:
    """A list value, or a single value as a one-item list."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise TailTuneError("data.make: the list of ratios or rates is empty")
    return items


def check_unique(names: list[str], what: str, hint: str) -> None:
    """Refuse a name that appears twice; ``hint`` says how to fix it."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise TailTuneError(f"{what} {name!r} appears twice; {hint}")
        seen.add(name)


@contextlib.contextmanager
def in_context(where: str) -> Iterator[None]:
    """Prefix the message of a TailTuneError raised inside with ``where``."""
    try:
        yield
    except TailTuneError as exc:
        raise TailTuneError(f"{where}: {exc}") from None
