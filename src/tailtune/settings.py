"""Settings declared as data: what each config field takes, said once, and the one validator that reads it.

A config dataclass (:mod:`tailtune.config`) declares each setting with :func:`setting`: its default, a one-line help,
and what it takes (a :class:`Range`, a set of choices, what ``None`` means, a further check). The field's annotation
gives the rest: its type (``int``, ``float``, ``bool``, ``str`` or ``dict``) and whether ``None`` is allowed
(``int | None``). :func:`validate` checks and coerces every declared field of a config object and words each message
from the declaration: the setting, the value, what is allowed (``beta must be in [0, 1), got 1.0``). The command line
builds the options of settings from the same declarations (:mod:`tailtune.cli.options`).

Every number must be finite: a setting of ``nan`` or ``inf`` (YAML ``.inf``, ``inf`` on the command line) is refused
whatever its range, as is a non-finite number among a mapping's values (``loss_params``).

Nothing here imports more than the standard library, so that a config is checked without loading a model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tailtune.errors import TailTuneError

#: The key of a dataclass field's metadata that holds its :class:`Setting`.
METADATA_KEY = "tailtune.setting"

#: The types a setting's annotation may name first (``int | None`` is an ``int`` that may be None).
_KINDS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str, "dict": dict}


@dataclass(frozen=True)
class Range:
    """The numbers a setting takes: bounds either side (None: unbounded), each included or not.

    ``str`` gives the words of a message: ``>= 1``, ``> 0`` or ``in [0, 1)``.
    """

    low: float | None = None
    high: float | None = None
    low_included: bool = True
    high_included: bool = False

    def __contains__(self, value: float) -> bool:
        above = self.low is None or value > self.low or (self.low_included and value == self.low)
        below = self.high is None or value < self.high or (self.high_included and value == self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>=' if self.low_included else '>'} {self.low:g}"
        if self.low is None:
            return f"{'<=' if self.high_included else '<'} {self.high:g}"
        return (f"in {'[' if self.low_included else '('}{self.low:g}, {self.high:g}"
                f"{']' if self.high_included else ')'}")  # fmt: skip


@dataclass(frozen=True)
class Setting:
    """What one setting takes, and its help; kept in its dataclass field's metadata by :func:`setting`.

    Attributes:
        help: One line for the command line's help. ``{default}`` stands for the field's default, ``{choices}``
            for its valid values, and a few numbers of other modules by name (:mod:`tailtune.cli.options`).
        range: The numbers it takes (for ``int`` and ``float`` settings).
        choices: The values it takes (for ``str`` settings), listed in this order in messages; for a ``bool``
            setting, the values it takes besides true and false (``auto``).
        null: What ``None`` means where the user may choose it (``never stop early``): messages then allow null,
            and ``None`` given is that choice rather than "not given" (:data:`tailtune.strategies.NULLABLE_SETTINGS`).
        noun: How messages call it where its name reads badly: ``learning rate must be > 0``, and for a setting of
            choices ``unknown loss 'hinge'`` (without a noun: ``pooling: unknown value 'max'``).
        check: A further check of a value that passed the others; raises :class:`TailTuneError`.
        option: Whether the command line offers it, so that an error can name its flag (``--max-length``).
        parse: Turns a value as written (``"10m"``) into the field's type before the other checks (``600.0``);
            raises :class:`TailTuneError` with a message that follows the setting's name (``must be ...``).
    """

    help: str = ""
    range: Range | None = None
    choices: tuple[Any, ...] = ()
    null: str = ""
    noun: str = ""
    check: Callable[[Any], None] | None = None
    option: bool = True
    parse: Callable[[Any], Any] | None = None


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
    choices: tuple[Any, ...] | list[Any] = (),
    null: str = "",
    noun: str = "",
    check: Callable[[Any], None] | None = None,
    option: bool = True,
    parse: Callable[[Any], Any] | None = None,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field that declares a setting: its default and a :class:`Setting` in its metadata.

    Args:
        default: The default value (or ``default_factory`` for a mutable one).
        help: See :attr:`Setting.help`.
        at_least, above, below, at_most: The bounds of its :class:`Range`, included (``at_least``, ``at_most``) or
            not (``above``, ``below``).
        choices, null, noun, check, option, parse: See :class:`Setting`.
        default_factory: Makes the default, as for :func:`dataclasses.field`.
    """
    bounds = (at_least, above, below, at_most)
    span = None
    if any(bound is not None for bound in bounds):
        span = Range(low=above if at_least is None else at_least, high=below if at_most is None else at_most,
                     low_included=above is None, high_included=at_most is not None)  # fmt: skip
    declared = Setting(help=help, range=span, choices=tuple(choices), null=null, noun=noun, check=check,
                       option=option, parse=parse)  # fmt: skip
    return dataclasses.field(default=default, default_factory=default_factory, metadata={METADATA_KEY: declared})


def like(cls: type, name: str, help: str) -> Any:
    """A field declared as the field ``name`` of the config dataclass ``cls`` is, with the same default and its own
    help (a setting that another config shares)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return dataclasses.field(default=f.default, metadata={METADATA_KEY: dataclasses.replace(declaration(f), help=help)})


def declaration(f: dataclasses.Field) -> Setting:
    """The :class:`Setting` a field declares (an empty one for a field that declares none)."""
    return f.metadata.get(METADATA_KEY) or Setting()


def declared_fields(cls: Any) -> list[dataclasses.Field]:
    """The fields of a config dataclass (or object) that declare a setting, in order."""
    return [f for f in dataclasses.fields(cls) if METADATA_KEY in f.metadata]


def field_kind(f: dataclasses.Field) -> tuple[type | None, bool]:
    """The type a field's annotation names first (``int``, ``float``, ``bool``, ``str``, ``dict``; None for any
    other) and whether it allows None."""
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    parts = [part.strip() for part in annotation.split("|")]
    return _KINDS.get(parts[0].split("[")[0]), "None" in parts


def validate(obj: Any, where: str = "") -> None:
    """Check every declared setting of the config object ``obj`` and store each value coerced to its type.

    Args:
        obj: A config dataclass instance.
        where: What messages begin with (``stage 'stage1'``); without it a message begins with the setting, which
            the error then names (:attr:`TailTuneError.setting`) where the command line has its option.

    Raises:
        TailTuneError: The first value its declaration refuses, in one line.
    """
    for f in declared_fields(obj):
        setattr(obj, f.name, check_value(f, getattr(obj, f.name), where=where))


def check_value(f: dataclasses.Field, value: Any, *, where: str = "", name: str | None = None) -> Any:
    """One value checked against the setting the field ``f`` declares: the value coerced to the field's type.

    Numbers are coerced (YAML reads ``1e-4`` as a string; a whole float is an int where an int is due), and must be
    finite; a fraction for an ``int``, a bool for a number, or a non-number is refused.

    Args:
        f: A field that declares a setting.
        value: The value given.
        where: See :func:`validate`.
        name: What messages call the setting (default: the field's name), e.g. a command's option for it.

    Raises:
        TailTuneError: The value is not one the declaration allows; the message names the setting, the value and
            what is allowed.
    """
    declared, (kind, nullable) = declaration(f), field_kind(f)
    name = name or f.name
    if value is None and nullable:
        return None

    def refuse(text: str) -> TailTuneError:
        if where:
            return TailTuneError(f"{where}: {text}")
        return TailTuneError(text, setting=name if declared.option and text.startswith(name) else None)

    if declared.parse is not None:
        try:
            value = declared.parse(value)
        except TailTuneError as exc:
            raise refuse(f"{name} {exc}") from None
    if kind in (int, float):
        value = _number(value, kind, name, refuse)
    elif kind is bool:
        if not (isinstance(value, bool) or value in declared.choices):
            raise refuse(f"{name} must be {_either(('true', 'false', *declared.choices))}, got {value!r}")
        return value
    elif kind is dict:
        _check_mapping(value, name, refuse)
    if declared.choices and value not in declared.choices:
        valid = ", ".join(map(str, declared.choices))
        if declared.noun:
            raise refuse(f"unknown {declared.noun} {value!r}; valid: {valid}")
        raise refuse(f"{name}: unknown value {value!r}; valid: {valid}")
    if declared.range is not None and value not in declared.range:
        allowed = f"{declared.range}{f' (or null to {declared.null})' if declared.null else ''}"
        raise refuse(f"{declared.noun or name} must be {allowed}, got {value}")
    if declared.check is not None:
        try:
            declared.check(value)
        except TailTuneError as exc:
            raise refuse(str(exc)) from None
    return value


def _number(value: Any, kind: type, name: str, refuse: Callable[[str], TailTuneError]) -> int | float:
    number = as_number(value)
    if number is None:
        raise refuse(f"{name} must be a number, got {value!r}")
    if not math.isfinite(number):
        raise refuse(f"{name} must be a finite number, got {value!r}")
    if kind is int and not (isinstance(number, int) or number.is_integer()):
        raise refuse(f"{name} must be a whole number, got {value!r}")
    return kind(number)


def _check_mapping(value: Any, name: str, refuse: Callable[[str], TailTuneError]) -> None:
    if not isinstance(value, Mapping):
        raise refuse(f"{name} must be a mapping of names to values, got {value!r}")
    for key, item in value.items():
        number = as_number(item)
        if number is not None and not math.isfinite(number):
            raise refuse(f"{name}.{key} must be a finite number, got {item!r}")


def as_number(value: Any) -> int | float | None:
    """``value`` as a Python int or float (numpy numbers and numeric strings included); None for anything else."""
    if isinstance(value, bool):
        return None  # a bool is an int to Python, never a number in a config
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        for parse in (int, float):
            with contextlib.suppress(ValueError):
                return parse(value)
    return None


def _either(values: tuple[str, ...]) -> str:
    return ", ".join(values[:-1]) + f" or {values[-1]}"
