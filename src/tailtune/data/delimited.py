"""Reading CSV and TSV strictly: RFC 4180 quoting, every row exactly the header's fields, one-line errors.

A quoted field must close, and a double quote inside an unquoted field is refused when other fields of the file
are quoted (there it means a quote went astray and field ends are ambiguous); a header that does not split on the
file's separator but does on another (``;`` or a tab in a ``.csv``, a comma or ``;`` in a ``.tsv``) is refused
naming that separator. Values stay the strings in the file.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from pathlib import Path

from tailtune.data.types import quote_names
from tailtune.data.values import Table, rows_text
from tailtune.errors import TailTuneError

# How to write a field that holds a separator, a quote or a line break, for the CSV/TSV errors.
_QUOTE_FIX = 'quote the whole field and double each double quote inside it ("say ""hi"" now")'


def read_delimited(path: Path, text: str, *, sep: str) -> Table:
    """Read CSV/TSV strictly: RFC 4180 quoting, and every row exactly the header's fields.

    Values stay the strings in the file: no whitespace stripping and no NA guessing (a label "NA" is a label,
    an empty cell is "" and the validation reports it). Empty lines are skipped, and so are lines holding
    nothing but spaces in a file of several columns (where they cannot be a row); in a one-column file such a
    line is a row whose text is spaces, so that prediction gives every line of the input its answer.
    """
    kind = "CSV" if sep == "," else "TSV"
    # newline="" splits on \r, \n and \r\n alike and keeps them, so that a quoted field keeps its line breaks.
    lines = list(io.StringIO(text, newline=""))
    reader = csv.reader(lines, delimiter=sep, strict=True)
    records: list[list[str]] = []
    starts: list[int] = []  # 1-based line each record starts on
    check_quotes = '"' in text
    quoted_fields = False
    bare_quote_line: int | None = None
    start = 1
    try:
        with _field_size_limit(len(text)):
            for record in reader:
                raw = lines[start - 1 : reader.line_num]
                if len(record) > 1 or "".join(raw).strip("\r\n"):
                    if check_quotes:
                        quoted, bare = _quoting("".join(raw), record, sep)
                        quoted_fields = quoted_fields or quoted
                        if bare and bare_quote_line is None:
                            bare_quote_line = start
                    records.append(record)
                    starts.append(start)
                start = reader.line_num + 1
    except csv.Error as e:
        # A file written with another separator often fails on its first quoted field: say so first.
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is not None and first < reader.line_num:
            _refuse_other_separator(path, lines[first], sep, line=first + 1)
        raise TailTuneError(_parse_error(path, kind, str(e), record_line=start, line=reader.line_num)) from None
    if not records:
        raise TailTuneError(f"{path}: the file holds no header and no rows")
    if quoted_fields and bare_quote_line is not None:
        raise TailTuneError(
            f"{path} line {bare_quote_line}: a double quote inside an unquoted field, while the file quotes other "
            f"fields, so where fields end is ambiguous; {_QUOTE_FIX}, and look above for a stray quote that opens "
            "a field"
        )
    # The header is the first line with more than spaces; below a header of several columns, a line of spaces
    # cannot be a row.
    several = len(next(r for r in records if len(r) > 1 or r[0].strip())) > 1
    kept = [i for i, r in enumerate(records) if len(r) > 1 or r[0].strip() or (several is False and i > 0)]
    records, starts = [records[i] for i in kept], [starts[i] for i in kept]
    header, rows, row_lines = records[0], records[1:], starts[1:]
    if len(header) == 1:
        _refuse_other_separator(path, lines[starts[0] - 1], sep, line=starts[0])
    # Unnamed columns are named as pandas names them; a repeated name would leave the column to use in doubt.
    names = [name or f"Unnamed: {j}" for j, name in enumerate(header)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TailTuneError(
            f"{path} line {starts[0]}: the header names column(s) {quote_names(repeated)} more than once; "
            "give every column its own name"
        )
    bad = [i for i, row in enumerate(rows) if len(row) != len(header)]
    if bad:
        counts = sorted({len(rows[i]) for i in bad})
        fields = " or ".join(map(str, counts)) + (" field" if counts == [1] else " fields")
        shown = "a comma" if sep == "," else "a tab"
        raise TailTuneError(
            f"{path}: {rows_text(bad, row_lines)} {fields} where the header has {len(header)}; wrap "
            f"every field holding {shown}, a double quote or a line break in double quotes (doubling the quotes "
            "inside it), or fix the row"
        )
    columns = {name: [row[j] for row in rows] for j, name in enumerate(names)}
    return Table(columns, str(path), row_lines=row_lines)


def _refuse_other_separator(path: Path, header: str, sep: str, *, line: int) -> None:
    """Refuse a file whose header line does not split on ``sep`` but does on another separator.

    A spreadsheet saved as CSV where the list separator is ``;`` (much of Europe) writes ``text;label``: read
    with commas, that is one column named ``text;label``, and every message after would be about that.
    """
    if _field_count(header, sep) > 1:
        return
    counts = {other: _field_count(header, other) for other in (";", "\t", ",") if other != sep}
    other, count = max(counts.items(), key=lambda item: item[1])
    if count < 2:
        return
    if other in (",", "\t"):
        fix = f"rename the file to {'.csv' if other == ',' else '.tsv'}"
    else:
        fix = "save it with commas between the fields, or with tabs as a .tsv file"
        if sep == "\t":
            fix = "save it with tabs between the fields, or with commas as a .csv file"
    raise TailTuneError(
        f"{path} line {line}: the header splits on {_SEPARATOR_NAMES[other]}, not on {_SEPARATOR_NAMES[sep]}, "
        f"so the file would read as one column; {fix}"
    )


_SEPARATOR_NAMES = {",": "commas", "\t": "tabs", ";": "';'"}


def _field_count(line: str, sep: str) -> int:
    """The fields one line splits into with ``sep``; 0 where it does not parse with it."""
    try:
        return len(next(csv.reader([line.rstrip("\r\n")], delimiter=sep, strict=True), []))
    except csv.Error:
        return 0


@contextlib.contextmanager
def _field_size_limit(limit: int) -> Iterator[None]:
    # The csv module refuses fields over 128 KiB by default; a long document is a legitimate text.
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, limit))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _quoting(raw: str, fields: list[str], sep: str) -> tuple[bool, bool]:
    """Whether a record quotes any field, and whether it has a double quote inside an unquoted field.

    ``raw`` is the record as in the file, ``fields`` as the strict csv reader parsed it: a quoted field takes
    its text, its doubled inner quotes and the two outer quotes; an unquoted one just its text.
    """
    pos, quoted, bare = 0, False, False
    for field in fields:
        if raw.startswith('"', pos):
            quoted = True
            pos += len(field) + field.count('"') + 2
        else:
            bare = bare or '"' in field
            pos += len(field)
        pos += len(sep)
    return quoted, bare


def _parse_error(path: Path, kind: str, error: str, *, record_line: int, line: int) -> str:
    if error == "unexpected end of data":
        return (
            f"{path} line {record_line}: a field opened by a double quote in this row never closes, so the rest of "
            f"the file would be read as one text; if the quote belongs to the text, {_QUOTE_FIX}"
        )
    if error.endswith("expected after '\"'"):
        return f"{path} line {line}: a quoted field goes on after its closing double quote; {_QUOTE_FIX}"
    return f"{path} line {line}: cannot parse as {kind} ({error})"
