"""Property-based tests of the readers: any content round-trips exactly or fails with a TailTuneError.

Texts come from all of Unicode, with the characters that break naive readers mixed in on purpose: quotes,
separators, CR/LF, a byte-order mark, NUL-free control characters. Raw files add empty cells and broken
structure; whatever the bytes, the reader's only failure is a :class:`TailTuneError`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailtune.data import TextDataset, load_dataset, save_dataset
from tailtune.errors import TailTuneError

TRICKY = ['"', "'", ",", "\t", "\n", "\r\n", "\r", "\ufeff", "\\", "{", "}", "é", "中文", "🙂", " "]

texts = st.lists(st.sampled_from(TRICKY) | st.text(min_size=1, max_size=8), min_size=1, max_size=6).map("".join)
labels = st.text(min_size=1, max_size=6).map(str.strip).filter(bool)
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
            back = load_dataset(path)
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
        data = load_dataset(path)
    except TailTuneError:
        return
    assert len(data.texts) == len(data.labels) > 0
    assert all(isinstance(t, str) and t.strip() for t in data.texts)
    assert all(isinstance(y, str) and y for y in data.labels)
