"""Training: the stage loop, its losses, weights and samplers, epoch selection, the decision rule, and
:func:`~tailtune.training.fitting.fit`, the method that ties them together.

Names of the stage loop (:mod:`tailtune.training.loop`) resolve here too, as they did before the loop had its
own module.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    loop = importlib.import_module("tailtune.training.loop")
    try:
        return getattr(loop, name)
    except AttributeError:
        raise AttributeError(f"module 'tailtune.training' has no attribute {name!r}") from None
