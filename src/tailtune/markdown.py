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


def escape_label_md(name: object) -> str:
    """Escape a label name for Markdown so that two names stay apart as they do in the console: a line break or tab
    is written escaped (:func:`~tailtune.data.visible.printed_label`) and a run of spaces keeps its length (where
    :func:`escape_md` collapses white space, as a text's lines should be)."""
    from tailtune.data.visible import printed_label

    return keep_spaces(_MD_SPECIAL.sub(r"\\\1", html.escape(printed_label(str(name)), quote=False)))


def keep_spaces(escaped: str) -> str:
    """Escaped text (Markdown or HTML) whose runs of spaces keep their length when rendered: each space after the
    first of a run written ``&nbsp;``."""
    return re.sub(r"(?<= ) ", "&nbsp;", escaped)
