"""What the command modules share (:mod:`tailtune.cli.common`): library errors in the terms of flags."""

from __future__ import annotations

import pytest

from tailtune.cli.common import in_flag_terms
from tailtune.errors import TailTuneError


@pytest.mark.parametrize(
    ("message", "setting", "expected"),
    [
        ("beta must be in [0, 1), got 1.0", "beta", "--beta must be in [0, 1), got 1.0"),
        ("x: name it with label_column", "label_column", "x: name it with --label-column"),
        ("stage 2: lr must be > 0", "lr", "stage 2: lr must be > 0"),
        ("lr must be > 0", None, "lr must be > 0"),
    ],
)
def test_errors_speak_of_flags(message, setting, expected):
    """A setting named first or last in a library message becomes its flag; elsewhere it stays a word."""
    assert in_flag_terms(TailTuneError(message, setting=setting)) == expected
