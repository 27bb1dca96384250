"""Property-based tests of the readers: any content round-trips exactly or fails with a TailTuneError.

Texts come from all of Unicode, with the characters that break naive readers mixed in on purpose: quotes,
separators, CR/LF, a byte-order mark, NUL-free control characters. Raw files add empty cells and broken
structure, or a stray quote and separators written unquoted into a well-formed file; whatever the bytes, the
reader returns exactly the table written or fails with a :class:`TailTuneError`. Labels come out the same
from every format and from the Python API.
"""

from __future__ import annotations

import json
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailtune.data.readers import read_dataset, save_dataset
from tailtune.data.types import TextDataset
from tailtune.data.values import dataset_from_values
from tailtune.data.visible import is_empty_text, is_invisible, normal_label
from tailtune.errors import TailTuneError

TRICKY = ['"', "'", ",", "\t", "\n", "\r\n", "\r", "\ufeff", "\\", "{", "}", "é", "中文", "🙂", " "]

texts = st.lists(st.sampled_from(TRICKY) | st.text(min_size=1, max_size=8), min_size=1, max_size=6).map("".join)
# Labels that read back as written: in their normal form (NFC, no invisible characters, no surrounding spaces) and
# none that normalise as numbers ("1.0" reads as "1").
labels = (
    st.text(min_size=1, max_size=6).map(normal_label).filter(lambda y: y and not re.fullmatch(r"[+-]?[0-9]+\.0+", y))
)
rows = st.lists(st.tuples(texts, labels), min_size=1, max_size=8)
SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(rows=rows, suffix=st.sampled_from(SUFFIXES))
def test_saved_data_reads_back_exactly_or_fails_cleanly(rows, suffix):
    data = TextDataset([t for t, _ in rows], [y for _, y in rows], "mem")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        save_dataset(data, path)
        try:
            back = read_dataset(path)
        except TailTuneError:
            return  # e.g. a text that is only whitespace: refused with a message naming the row
        assert back.texts == data.texts
        assert back.labels == data.labels


raw_cells = st.sampled_from(["", '"', '""', "a", "a b", "\ufeff", "\r", "\n", "NA", "1", "中", "🙂", ",", "\t"])


@PROPERTY
@given(
    cells=st.lists(st.lists(raw_cells, min_size=0, max_size=4), min_size=0, max_size=6),
    suffix=st.sampled_from((".csv", ".tsv")),
    bom=st.booleans(),
    crlf=st.booleans(),
)
def test_raw_delimited_files_never_raise_anything_else(cells, suffix, bom, crlf):
    sep, newline = ("," if suffix == ".csv" else "\t"), ("\r\n" if crlf else "\n")
    content = newline.join([sep.join(["text", "label"]), *(sep.join(row) for row in cells)])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"raw{suffix}"
        path.write_bytes((("\ufeff" if bom else "") + content).encode("utf-8"))
        _read_or_tailtune_error(path)


@PROPERTY
@given(lines=st.lists(st.text(max_size=30) | st.sampled_from(['{"text": "a", "label": "b"}', "{}", "[]", "null",
                                                              '{"text": 1, "label": [1]}']),
                      max_size=6))  # fmt: skip
def test_raw_json_lines_never_raise_anything_else(lines):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "raw.jsonl"
        path.write_text("\n".join(lines), encoding="utf-8")
        _read_or_tailtune_error(path)


def _read_or_tailtune_error(path: Path) -> None:
    try:
        data = read_dataset(path)
    except TailTuneError:
        return
    assert len(data.texts) == len(data.labels) > 0
    assert all(isinstance(t, str) and t.strip() for t in data.texts)
    assert all(isinstance(y, str) and y for y in data.labels)


def _field(value: str, sep: str) -> str:
    """A field as a csv writer quotes it: only when it holds a separator, a quote or a line break."""
    if any(c in value for c in ('"', sep, "\r", "\n")):
        return '"' + value.replace('"', '""') + '"'
    return value


@PROPERTY
@given(rows=rows, suffix=st.sampled_from((".csv", ".tsv")), newline=st.sampled_from(("\n", "\r\n")), data=st.data())
def test_stray_quote_and_separators_read_exactly_or_fail(rows, suffix, newline, data):
    # Into fields a writer leaves unquoted go, raw, any number of separators and at most one double quote:
    # two stray quotes can make a well-formed file of another table, which no reader can tell apart.
    sep = "," if suffix == ".csv" else "\t"
    table = [list(row) for row in rows]
    unquoted = [(i, j) for i, row in enumerate(table) for j, v in enumerate(row) if _field(v, sep) == v]
    stray = st.tuples(st.sampled_from(unquoted or [(0, 0)]), st.sampled_from([sep, '"']), st.integers(0, 20))
    injections = data.draw(st.lists(stray, max_size=3)) if unquoted else []
    raw: set[tuple[int, int]] = set()
    quotes = 0
    for (i, j), char, at in injections:
        if char == '"' and quotes:
            continue
        quotes += char == '"'
        value = table[i][j]
        at %= len(value) + 1
        table[i][j] = value[:at] + char + value[at:]
        raw.add((i, j))
    lines = [sep.join(("text", "label"))]
    lines += [
        sep.join(v if (i, j) in raw else _field(v, sep) for j, v in enumerate(row)) for i, row in enumerate(table)
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
        try:
            back = read_dataset(path, allow_empty_texts=True)
        except TailTuneError:
            assert raw, "a well-formed file was refused"
            return
    assert back.texts == [row[0] for row in table]
    assert back.labels == [row[1] for row in table]


# Label columns of one type each, as every format can store them; None is a missing value.
label_values = st.one_of(
    st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=6),
    # Beyond 1e16 a CSV writer switches to exponent form ("1e+16"), which is left as written.
    st.lists(st.floats(min_value=-1e15, max_value=1e15) | st.none(), min_size=1, max_size=6),
    st.lists(st.booleans(), min_size=1, max_size=6),
    st.lists(
        st.sampled_from(["1", "1.0", " 2.00 ", "-3.0", "+4.0", "-0.0", "1e3", "2.50", "007", "NA", "nan", " "])
        | st.text(max_size=5)
        | st.none(),
        min_size=1,
        max_size=6,
    ),
)


@PROPERTY
@given(values=label_values)
def test_labels_normalise_alike_in_every_format(values):
    outcomes = {}
    with tempfile.TemporaryDirectory() as folder:
        frame = pd.DataFrame({"text": ["t"] * len(values), "label": values})
        for suffix in (".csv", ".tsv", ".jsonl", ".parquet"):
            path = Path(folder) / f"data{suffix}"
            if suffix == ".parquet":
                frame.to_parquet(path)
            elif suffix == ".jsonl":
                path.write_text("".join(json.dumps({"text": "t", "label": v}) + "\n" for v in values), "utf-8")
            else:
                frame.to_csv(path, sep="," if suffix == ".csv" else "\t", index=False, lineterminator="\r\n")
            outcomes[suffix] = _labels_or_error(lambda p=path: read_dataset(p))
        outcomes["api"] = _labels_or_error(lambda: dataset_from_values(["t"] * len(values), values, source="api"))
    assert len(set(outcomes.values())) == 1, outcomes


def _labels_or_error(read: Any) -> tuple[str, ...] | str:
    try:
        return tuple(read().labels)
    except TailTuneError:
        return "refused"


# ------------------------------------------------------------------------------ what a text or a label shows

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u202e", "\u2066", "\u180e",
             "\u034f", "\ufe0f", "\U000e0041", "\x00", "\x7f"]  # fmt: skip
WHITESPACE = [" ", "\t", "\n", "\r", "\u00a0", "\u2003", "\u3000", "\u2028"]
invisible_runs = st.lists(st.sampled_from(INVISIBLE + WHITESPACE), max_size=6).map("".join)


def test_the_invisible_characters_are_the_format_characters_and_default_ignorables():
    assert all(is_invisible(c) for c in INVISIBLE)
    # Format characters that print a sign of their own, and everything visible, are not.
    assert not any(is_invisible(c) for c in ["\u0600", "\u06dd", "a", "é", "中", "🙂", "\u0301", " ", "\t"])


@PROPERTY
@given(
    label=st.text(max_size=8)
    | st.builds("".join, st.lists(st.sampled_from(["a", "é", "e\u0301", "한", *INVISIBLE, *WHITESPACE]), max_size=8))
)
def test_label_normal_form_is_idempotent_nfc_and_without_invisible_characters(label):
    name = normal_label(label)
    assert normal_label(name) == name
    assert unicodedata.is_normalized("NFC", name)
    assert not any(is_invisible(c) for c in name)
    assert name == name.strip()


@PROPERTY
@given(words=st.lists(st.text(min_size=1, max_size=5).filter(lambda y: normal_label(y) == y), min_size=2, max_size=4,
                      unique=True), data=st.data())  # fmt: skip
def test_spellings_that_print_alike_are_one_class(words, data):
    """Each label written in NFC and NFD, with invisible characters anywhere and spaces around, is one class."""
    spellings: list[str] = []
    for word in words:
        for form in ("NFC", "NFD"):
            written = unicodedata.normalize(form, word)
            at = data.draw(st.integers(0, len(written)))
            inside = "".join(data.draw(st.lists(st.sampled_from(INVISIBLE), max_size=3)))
            spellings.append(
                data.draw(invisible_runs) + written[:at] + inside + written[at:] + data.draw(invisible_runs)
            )
    try:
        read = dataset_from_values(["t"] * len(spellings), spellings, source="api").labels
    except TailTuneError:
        # Only a label that is all invisible characters and spaces is refused (as an empty label).
        assert any(not normal_label(s) for s in spellings)
        return
    expected = [re.sub(r"^([+-]?[0-9]+)\.0+$", lambda m: str(int(m.group(1))), unicodedata.normalize("NFC", w))
                for w in words for _ in ("NFC", "NFD")]  # fmt: skip
    assert read == expected
    assert len(set(read)) == len({normal_label(w) for w in expected})


@PROPERTY
@given(text=invisible_runs, suffix=st.sampled_from((".csv", ".tsv", ".jsonl", ".parquet")))
def test_a_text_of_invisible_characters_is_refused_as_empty_naming_its_row(text, suffix):
    assert is_empty_text(text)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        save_dataset(TextDataset(["a visible text", text], ["x", "y"], "mem"), path)
        try:
            read_dataset(path)
        except TailTuneError as e:
            assert re.search(r": data row 2 (\(line \d+ of the file\) )?has an empty text; fill it in", str(e)), e
            return
    raise AssertionError(f"{text!r} was read as a text")


@PROPERTY
@given(text=invisible_runs, visible=st.text(min_size=1, max_size=3).filter(lambda t: not is_empty_text(t)))
def test_a_text_with_one_visible_character_is_not_empty(text, visible):
    assert not is_empty_text(text + visible + text)
