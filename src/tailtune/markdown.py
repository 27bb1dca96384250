"""Escaping data strings (label names, texts, paths) for Markdown: the report and the model card share it."""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~!{}])")


def escape_md(text: object) -> str:
    """Escape a data string for Markdown: one line, ``<>&`` as entities, other markup backslash-escaped.

    Entities (rather than backslashes) for ``<`` keep raw HTML out even of renderers that ignore escapes.
    """
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(str(text).split()), quote=False))
