"""What a string shows: the invisible characters, when a text is empty, and the one spelling of a label name.

Invisible here means a character that prints nothing of its own:

- the format characters (Unicode category Cf: zero-width space U+200B, zero-width non-joiner and joiner
  U+200C/U+200D, word joiner U+2060, byte-order mark U+FEFF, soft hyphen U+00AD, the direction marks and
  embeddings, the tag characters, ...), except the prepended concatenation marks (U+0600-U+0605, U+06DD,
  U+070F, U+0890, U+0891, U+08E2, U+110BD, U+110CD), which print a sign of their own;
- the other default-ignorable characters Unicode lists outside Cf: the combining grapheme joiner U+034F, the
  Hangul fillers, the Khmer inherent vowels U+17B4/U+17B5, the Mongolian variation selectors and the variation
  selectors U+FE00-U+FE0F and U+E0100-U+E01EF;
- the control characters (category Cc) other than whitespace.

A text is empty when it holds nothing but whitespace and invisible characters. A label name is compared in
one normal form: every invisible character removed wherever it stands (a label is a name, not prose, and a
zero-width space inside it only makes a second class that prints like the first), then Unicode NFC, then
surrounding whitespace stripped. So ``ciné`` written with a combining accent and ``football`` followed by a
zero-width space are the same labels as ``ciné`` and ``football``. The price is small: an emoji sequence that a
zero-width joiner or a variation selector holds together is named by its parts.
"""

from __future__ import annotations

import unicodedata

# Format characters that print a sign of their own (an Arabic number sign, the end of an ayah, ...).
_VISIBLE_FORMAT = frozenset("\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2\U000110bd\U000110cd")
# Default-ignorable characters outside category Cf (Unicode's DerivedCoreProperties.txt).
_IGNORABLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


def is_invisible(char: str) -> bool:
    """Whether one character prints nothing of its own (see the module docstring); whitespace is not counted."""
    if char in _IGNORABLE:
        return True
    category = unicodedata.category(char)
    if category == "Cf":
        return char not in _VISIBLE_FORMAT
    return category == "Cc" and not char.isspace()


def is_empty_text(text: str) -> bool:
    """Whether a text shows nothing: it holds only whitespace and invisible characters (or nothing at all)."""
    return all(char.isspace() or is_invisible(char) for char in text)


def normal_label(name: str) -> str:
    """A label name in the form labels are compared in: invisible characters removed, NFC, whitespace stripped.

    The result is its own normal form: ``normal_label(normal_label(x)) == normal_label(x)``.
    """
    kept = "".join(char for char in name if not is_invisible(char))
    return unicodedata.normalize("NFC", kept).strip()


def folded_label(name: str) -> str:
    """A label name as a case-, width- and spacing-blind comparison sees it (``Grain``, ``ｇｒａｉｎ`` and ``grain``
    alike; ``money  fx``, ``money<tab>fx`` and ``money fx`` alike): how labels that likely mean one class are found,
    though they stay apart."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def shown(name: str) -> str:
    """A label spelling quoted so that two spellings that print alike read apart in a message.

    Characters that would hide the difference (invisible ones, combining marks, Hangul conjoining letters,
    characters NFC replaces, anything not printable) are written as ``\\uXXXX`` escapes.
    """
    return "'" + "".join(_shown_char(char) for char in name) + "'"


_CONTROL_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def printed_label(name: str) -> str:
    """A label name as one line of a console table: characters that would break the line or print as a blank
    other than a space (newline, tab, other controls, no-break and other spaces) written as escapes
    (``\\n``, ``\\u00a0``), a backslash doubled (a written ``\\n`` stays apart from a line break), the rest as it
    is."""
    return "".join(_CONTROL_ESCAPES.get(char) or (char if char.isprintable() else _escape(char)) for char in name)


def terminal_columns(text: str) -> int:
    """How many columns ``text`` takes in a terminal: two for a wide character (Chinese, Japanese, Korean, full-width
    forms), none for a combining mark or an invisible one, one for the rest."""
    return sum(
        2
        if unicodedata.east_asian_width(char) in "WF"
        else 0
        if unicodedata.combining(char) or is_invisible(char)
        else 1
        for char in text
    )


def _shown_char(char: str) -> str:
    plain = (
        char.isprintable()
        and not is_invisible(char)
        and not unicodedata.combining(char)
        and not unicodedata.category(char).startswith("M")
        and not _conjoining_jamo(char)
        and unicodedata.normalize("NFC", char) == char
    )
    if char == "\\":
        return "\\\\"  # doubled: a written '\\u200b' stays apart from a zero-width space
    return char if plain else _escape(char)


def _escape(char: str) -> str:
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


def _conjoining_jamo(char: str) -> bool:
    # Hangul letters that a renderer joins into one syllable: NFD Korean prints like NFC Korean.
    code = ord(char)
    return 0x1100 <= code <= 0x11FF or 0xA960 <= code <= 0xA97F or 0xD7B0 <= code <= 0xD7FF
