"""Reading and writing labelled text: CSV, TSV, JSON lines, Parquet, ``save_to_disk`` folders and the hub.

Every reader returns a :class:`TextDataset` whose labels are label *names* as strings, whatever the file
stored (integers, whole floats, ``datasets`` ``ClassLabel`` ids), so that the rest of tailtune deals with one
kind of label. Every source, and the Python API through :func:`dataset_from_values`, goes through the same
validation and the same label normalisation:

- Labels: surrounding whitespace is stripped; a whole-number float (``1.0``) and a string that is a plain
  decimal literal with an all-zero fraction (``"1.0"``, ``"-3.00"``) both become the integer name ``"1"``,
  ``"-3"``; other strings stay as written (``"1e3"``, ``"2.50"``, ``"007"``, ``"NA"``); booleans become
  ``"True"``/``"False"``. A missing label (empty, null, NaN) is refused naming the row.
- Texts: kept exactly as read. A missing text (null, NaN) or a non-string one (a number, a list) is refused
  naming the row and column; an empty or whitespace-only one too, unless ``allow_empty_texts`` is set.

CSV and TSV are read strictly as RFC 4180 quoting: every row must hold exactly the header's fields, a
quoted field must close, and a double quote inside an unquoted field is refused when other fields of the
file are quoted (there it means a quote went astray and field ends are ambiguous). Problems in the user's
data raise :class:`~tailtune.errors.TailTuneError` with a one-line message naming the file and the rows or
lines at fault.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailtune.errors import TailTuneError, first_line
from tailtune.fileio import TABLE_EXTENSIONS, write_table

logger = logging.getLogger(__name__)

#: File extensions :func:`read_dataset` and :func:`save_dataset` understand (``.json`` means JSON lines).
SUPPORTED_EXTENSIONS = TABLE_EXTENSIONS

# Extensions that mark a spec as a local file even when it is not one we can read, so that a typo'd path
# gets "file not found" instead of a confusing attempt to fetch it from the hub.
_FILE_LIKE_EXTENSIONS = SUPPORTED_EXTENSIONS + (".txt", ".xlsx", ".xls", ".gz", ".zip", ".arrow", ".feather")

_MAX_ROWS_SHOWN = 10
_INT_LITERAL = re.compile(r"[+-]?\d+")
# A label string that is a whole number written as a decimal ("1.0", "-3.00"): the integer part is its name,
# as it is for the float 1.0. Exponent forms ("1e3") are left alone: they are as likely codes as numbers.
_WHOLE_DECIMAL = re.compile(r"([+-]?[0-9]+)\.0+")
# How to write a field that holds a separator, a quote or a line break, for the CSV/TSV errors.
_QUOTE_FIX = 'quote the whole field and double each double quote inside it ("say ""hi"" now")'


@dataclass
class TextDataset:
    """Texts with their label names.

    Attributes:
        texts: The input texts.
        labels: Label names as strings, aligned with ``texts``; ``None`` for unlabelled data.
        source: Where the data came from (a path or hub spec), used in messages.
        columns: Every column of the source, in its order, with the values as read (strings for CSV and
            TSV), for writing them back out beside predictions; set by :func:`read_dataset`, ``None``
            for data built in memory.
    """

    texts: list[str]
    labels: list[str] | None
    source: str
    columns: dict[str, list[Any]] | None = None

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if self.columns is not None and any(len(v) != len(self.texts) for v in self.columns.values()):
            raise ValueError(f"columns of another length than the {len(self.texts)} texts")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> TextDataset:
        """Return a new dataset with the rows at ``indices`` (in that order), from the same source."""
        idx = [int(i) for i in np.asarray(indices, dtype=np.int64).ravel()]
        labels = None if self.labels is None else [self.labels[i] for i in idx]
        columns = None if self.columns is None else {k: [v[i] for i in idx] for k, v in self.columns.items()}
        return TextDataset([self.texts[i] for i in idx], labels, self.source, columns)


@dataclass
class LabelMap:
    """The mapping between label names and the integer ids a model is trained on.

    Attributes:
        labels: Label names in id order (``labels[i]`` has id ``i``).
    """

    labels: list[str]

    def __post_init__(self) -> None:
        self.labels = [str(x) for x in self.labels]
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"duplicate label names in {self.labels}")

    @classmethod
    def from_labels(cls, values: Iterable[str]) -> LabelMap:
        """Build a map from the label names seen in training data.

        The order is stable across runs and files: numerically when every name is an integer literal (so
        ``"2"`` comes before ``"10"``), otherwise as plain strings.
        """
        names = set(values)
        if names and all(_INT_LITERAL.fullmatch(n) for n in names):
            ordered = sorted(names, key=lambda n: (int(n), n))
        else:
            ordered = sorted(names)
        return cls(ordered)

    @property
    def label2id(self) -> dict[str, int]:
        """Label name -> class id."""
        return {name: i for i, name in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def encode(self, values: Sequence[str], *, source: str) -> np.ndarray:
        """Turn label names into int64 ids.

        Args:
            values: Label names.
            source: The file the names came from, for the error message.

        Raises:
            TailTuneError: If a name is not in the map.
        """
        mapping = self.label2id
        unknown = sorted({v for v in values if v not in mapping})
        if unknown:
            raise TailTuneError(
                f"{source}: label(s) {_quoted(unknown)} never seen in training; the model knows "
                f"{_quoted(self.labels)} - relabel those rows or retrain with them"
            )
        return np.fromiter((mapping[v] for v in values), dtype=np.int64, count=len(values))

    def counts(self, dataset: TextDataset) -> list[int]:
        """Examples per class of a labelled dataset, in class-id order (a class it lacks counts 0).

        Raises:
            TailTuneError: If a label is not in the map.
        """
        ids = self.encode(dataset.labels or [], source=dataset.source)
        return np.bincount(ids, minlength=len(self)).tolist()


@dataclass
class Splits:
    """The data of one run: training data and optional eval/test data."""

    train: TextDataset
    eval: TextDataset | None = None
    test: TextDataset | None = None


def check_labels(splits: Splits) -> LabelMap:
    """The label map of the training data; eval/test labels must all occur in training."""
    if splits.train.labels is None:
        raise TailTuneError(f"{splits.train.source}: training data needs labels")
    label_map = LabelMap.from_labels(splits.train.labels)
    if len(label_map) < 2:
        raise TailTuneError(
            f"{splits.train.source}: only one class ({label_map.labels[0]!r}); a classifier needs at least two"
        )
    for part in (splits.eval, splits.test):
        if part is not None and part.labels is not None:
            label_map.encode(part.labels, source=part.source)
    return label_map


# --------------------------------------------------------------------------------------------- reading


def read_dataset(
    spec: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    require_labels: bool = True,
    allow_empty_texts: bool = False,
) -> TextDataset:
    """Read labelled (or, with ``require_labels=False``, unlabelled) text from a file, a folder or the hub.

    Args:
        spec: One of: a ``.csv``, ``.tsv``, ``.jsonl``/``.json`` (JSON lines) or ``.parquet`` file; a folder
            written by ``datasets``' ``save_to_disk``, optionally ``folder:split``; or a Hugging Face hub
            dataset ``name[/config][:split]`` such as ``glue/sst2:train`` (needs the ``datasets`` package
            and a network connection). A ``DatasetDict`` with no split given uses ``train`` if present,
            else its only split.
        text_column: Column holding the text.
        label_column: Column holding the label.
        require_labels: If False, the label column may be missing (``labels`` is then ``None``); if it is
            present, labels are read when every row has one and dropped with a warning otherwise.
        allow_empty_texts: Accept empty and whitespace-only texts (for prediction, where every row gets an
            answer); missing (null) texts are refused either way.

    Returns:
        The texts and their label names as strings, with every column of the source in ``columns``.

    Raises:
        TailTuneError: For a missing or unreadable file, a malformed CSV/TSV row, missing columns, empty
            cells and the like.
    """
    spec = str(spec)
    kind, location, split = _resolve_spec(spec)
    if kind == "file":
        table = _read_file(Path(location))
    elif kind == "disk":
        table = _read_disk(Path(location), split, spec)
    else:
        table = _read_hub(spec)
    dataset = _to_dataset(table, text_column=text_column, label_column=label_column, require_labels=require_labels,
                          allow_empty_texts=allow_empty_texts)  # fmt: skip
    dataset.columns = table.columns
    return dataset


#: The name :func:`read_dataset` had before; kept so that existing imports work. The commands read data with
#: :func:`tailtune.builtin.load_data`, which also knows the ``builtin:`` corpora.
load_dataset = read_dataset


def dataset_from_values(
    texts: Sequence[Any], labels: Sequence[Any] | None, *, source: str, allow_empty_texts: bool = False
) -> TextDataset:
    """Check and normalise texts and labels given in memory exactly as :func:`read_dataset` does a file's.

    Args:
        texts: One string per row.
        labels: One label per text (strings, integers, whole floats; booleans become ``"True"``/``"False"``),
            or ``None`` for unlabelled texts.
        source: What the data is called in messages, e.g. ``"fit()"``.
        allow_empty_texts: Accept empty and whitespace-only texts.

    Returns:
        The texts and their label names as strings; ``columns`` is ``None``.

    Raises:
        TailTuneError: For texts and labels of different lengths, no texts, and any row :func:`read_dataset`
            would refuse (a missing label, a missing or non-string text, ...), naming the (1-based) row.
    """
    columns: dict[str, list[Any]] = {"texts": _as_list(texts, "texts", source)}
    if labels is not None:
        columns["labels"] = _as_list(labels, "labels", source)
        if len(columns["labels"]) != len(columns["texts"]):
            raise TailTuneError(
                f"{source}: {len(columns['texts'])} texts but {len(columns['labels'])} labels; pass one label per text"
            )
    if not columns["texts"]:
        raise TailTuneError(f"{source}: no texts given")
    return _to_dataset(_Table(columns, source), text_column="texts", label_column="labels",
                       require_labels=labels is not None, allow_empty_texts=allow_empty_texts)  # fmt: skip


def _as_list(values: Sequence[Any], name: str, source: str) -> list[Any]:
    # A lone string would otherwise be taken for a list of one-character texts, and a table for its column names.
    if isinstance(values, (str, bytes)) or getattr(values, "ndim", 1) != 1:
        raise TailTuneError(f"{source}: {name} must be a one-dimensional sequence (a list), one value per row")
    return list(values)


def parse_hub_spec(spec: str) -> tuple[str, str | None, str | None]:
    """Split ``name[/config][:split]`` into ``(name, config, split)``.

    ``org/name/config`` is read as the repository ``org/name`` with a config. A single slash (``glue/sst2``)
    is read as ``name/config``; the hub loader falls back to treating it as a repository ``org/name``.

    Raises:
        TailTuneError: If the spec is empty or has empty parts.
    """
    body, sep, split = spec.partition(":")
    parts = body.split("/")
    if not body or any(not p.strip() for p in parts) or (sep and not split) or len(parts) > 3:
        raise TailTuneError(f"'{spec}' is not a file, a folder or a hub dataset spec of the form name[/config][:split]")
    if len(parts) == 3:
        name, config = f"{parts[0]}/{parts[1]}", parts[2]
    elif len(parts) == 2:
        name, config = parts
    else:
        name, config = parts[0], None
    return name, config, split or None


@dataclass
class _Table:
    """Columns read from any source, before validation. Values are str, None (missing) or raw numbers."""

    columns: dict[str, list[Any]]
    source: str
    # The 1-based file line each data row starts on, when the format has lines worth quoting.
    row_lines: list[int] | None = None
    # HF ClassLabel names per column, used to turn ids back into names.
    class_names: dict[str, list[str]] | None = None


def _resolve_spec(spec: str) -> tuple[str, str, str | None]:
    """Decide whether ``spec`` is a local file, a save_to_disk folder (with split) or a hub dataset."""
    path = Path(spec).expanduser()
    if path.is_file():
        return "file", str(path), None
    if path.is_dir():
        return "disk", str(path), None
    # "folder:split" - the split is whatever follows the last colon.
    head, sep, split = spec.rpartition(":")
    if sep and head and split and Path(head).expanduser().is_dir():
        return "disk", str(Path(head).expanduser()), split
    if _looks_local(spec) or (sep and head and _looks_local(head)):
        raise TailTuneError(f"{spec}: file not found; check the path")
    return "hub", spec, None


def _looks_local(spec: str) -> bool:
    return spec.startswith(("./", "../", "/", "~", ".\\")) or Path(spec).suffix.lower() in _FILE_LIKE_EXTENSIONS


def _read_file(path: Path) -> _Table:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise TailTuneError(
            f"{path}: unknown file type '{suffix or '(none)'}'; use one of {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    if path.stat().st_size == 0:
        raise TailTuneError(f"{path}: the file is empty (0 bytes)")
    if suffix == ".parquet":
        return _read_parquet(path)
    text = _decode_utf8(path)
    if not text.strip():
        raise TailTuneError(f"{path}: the file holds only whitespace, no data")
    if suffix in (".csv", ".tsv"):
        return _read_delimited(path, text, sep="," if suffix == ".csv" else "\t")
    return _read_jsonl(path, text)


def _decode_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        # utf-8-sig drops the byte-order mark Excel puts first, which would otherwise end up in the first
        # column's name.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TailTuneError(
            f"{path}: not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}, line {line}); "
            "re-save the file as UTF-8"
        ) from None


def _read_delimited(path: Path, text: str, *, sep: str) -> _Table:
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
    # Unnamed columns are named as pandas names them; a repeated name would leave the column to use in doubt.
    names = [name or f"Unnamed: {j}" for j, name in enumerate(header)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TailTuneError(
            f"{path} line {starts[0]}: the header names column(s) {_quoted(repeated)} more than once; "
            "give every column its own name"
        )
    bad = [i for i, row in enumerate(rows) if len(row) != len(header)]
    if bad:
        counts = sorted({len(rows[i]) for i in bad})
        fields = " or ".join(map(str, counts)) + (" field" if counts == [1] else " fields")
        shown = "a comma" if sep == "," else "a tab"
        raise TailTuneError(
            f"{path}: {_rows_text(bad, row_lines)} {fields} where the header has {len(header)}; wrap "
            f"every field holding {shown}, a double quote or a line break in double quotes (doubling the quotes "
            "inside it), or fix the row"
        )
    columns = {name: [row[j] for row in rows] for j, name in enumerate(names)}
    return _Table(columns, str(path), row_lines=row_lines)


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


def _read_jsonl(path: Path, text: str) -> _Table:
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" and stripped.startswith("["):
        # A .json file holding one array of objects is common enough to accept as well as JSON lines.
        try:
            records = json.loads(text, object_pairs_hook=_unique_keys)
        except (json.JSONDecodeError, _DuplicateKey) as e:
            raise TailTuneError(f"{path}: not valid JSON ({e})") from None
        lines = None
    else:
        records, lines = [], []
        # Split on LF alone: JSON strings hold no raw LF, while str.splitlines() would also split at the U+2028,
        # U+2029 and U+0085 that a JSON string may hold as they are.
        for lineno, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line, object_pairs_hook=_unique_keys))
            except json.JSONDecodeError as e:
                raise TailTuneError(
                    f"{path} line {lineno}: not valid JSON ({e}); each line must be one JSON object"
                ) from None
            except _DuplicateKey as e:
                raise TailTuneError(f"{path} line {lineno}: {e}; give each key once") from None
            lines.append(lineno)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            where = f"line {lines[i]}" if lines else f"item {i + 1}"
            raise TailTuneError(f'{path} {where}: expected a JSON object like {{"text": ..., "label": ...}}')
    names: dict[str, None] = {}
    for rec in records:
        names.update(dict.fromkeys(rec))
    columns = {name: [rec.get(name) for rec in records] for name in names}
    return _Table(columns, str(path), row_lines=lines)


class _DuplicateKey(ValueError):
    """A JSON object that names a key twice: json keeps the last value without a word."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise _DuplicateKey(f"an object names the key(s) {_quoted(repeated)} more than once")
    return dict(pairs)


def _read_parquet(path: Path) -> _Table:
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several unrelated types for a damaged file
        raise TailTuneError(f"{path}: cannot read as Parquet ({first_line(e)})") from None
    # pandas stores a named index (an id column set as the index) as a column of the file and reads it back as
    # the index: it is a column of the data, and prediction writes it back out.
    named = [name for name in df.index.names if name is not None]
    if named:
        df = df.reset_index(level=named)
    return _Table({str(c): df[c].tolist() for c in df.columns}, str(path))


def _import_datasets(what: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise TailTuneError(
            f"{what} needs the datasets package: pip install datasets (or pip install 'tailtune[hub]')"
        ) from None
    return datasets


def _read_disk(path: Path, split: str | None, spec: str) -> _Table:
    if not ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        raise TailTuneError(
            f"{path}: is a folder but not one written by datasets' save_to_disk; "
            f"pass a file ({', '.join(SUPPORTED_EXTENSIONS)}) instead"
        )
    datasets = _import_datasets(f"reading the folder {path}")
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:
        raise TailTuneError(f"{path}: cannot load the saved dataset ({first_line(e)})") from None
    if isinstance(loaded, datasets.DatasetDict):
        return _hf_to_table(_pick_split(loaded, split, spec), spec)
    if split is not None:
        raise TailTuneError(f"{spec}: {path} holds a single dataset without splits; drop ':{split}'")
    return _hf_to_table(loaded, spec)


def _read_hub(spec: str) -> _Table:
    name, config, split = parse_hub_spec(spec)
    datasets = _import_datasets(f"reading '{spec}' from the Hugging Face hub")
    # "a/b" is ambiguous: dataset "a" with config "b" (glue/sst2) or the repository "a/b" (stanfordnlp/imdb).
    attempts = [(name, config)]
    if config is not None and "/" not in name:
        attempts.append((f"{name}/{config}", None))
    errors: list[str] = []
    loaded = None
    for repo, cfg in attempts:
        try:
            loaded = datasets.load_dataset(repo, cfg, split=split)
            break
        except Exception as e:  # network, auth, missing config or split: all become one line for the user
            errors.append(f"as '{repo}'" + (f" config '{cfg}'" if cfg else "") + f": {first_line(e)}")
            # Only "no such dataset" makes the other reading worth a try; offline, it would just wait again.
            if not isinstance(e, FileNotFoundError):
                break
    if loaded is None:
        raise TailTuneError(
            f"{spec}: could not load from the Hugging Face hub ({'; '.join(errors)}); check the name, "
            "config and split, your network connection, or pass a local file"
        )
    if isinstance(loaded, datasets.DatasetDict):
        loaded = _pick_split(loaded, None, spec)
    return _hf_to_table(loaded, spec)


def _pick_split(loaded: Any, split: str | None, spec: str) -> Any:
    splits = list(loaded.keys())
    if split is None:
        if "train" in splits:
            split = "train"
        elif len(splits) == 1:
            split = splits[0]
        else:
            raise TailTuneError(
                f"{spec}: holds splits {_quoted(splits)} and none is 'train'; pick one with {spec}:SPLIT"
            )
    if split not in splits:
        raise TailTuneError(f"{spec}: no split '{split}'; available splits: {_quoted(splits)}")
    return loaded[split]


def _hf_to_table(ds: Any, spec: str) -> _Table:
    from datasets import ClassLabel

    class_names = {name: list(f.names) for name, f in ds.features.items() if isinstance(f, ClassLabel)}
    columns = {name: list(ds[name]) for name in ds.column_names}
    return _Table(columns, spec, class_names=class_names)


# ------------------------------------------------------------------------------------------ validation


def _to_dataset(
    table: _Table, *, text_column: str, label_column: str, require_labels: bool, allow_empty_texts: bool = False
) -> TextDataset:
    src = table.source
    found = _quoted(list(table.columns)) or "none"
    if text_column not in table.columns:
        raise TailTuneError(
            f"{src}: no text column '{text_column}' (columns found: {found}); name it with text_column",
            setting="text_column",
        )
    if require_labels and label_column not in table.columns:
        raise TailTuneError(
            f"{src}: no label column '{label_column}' (columns found: {found}); name it with label_column",
            setting="label_column",
        )
    if not table.columns[text_column]:
        raise TailTuneError(f"{src}: has a header but no data rows")

    texts = _texts(table, text_column, allow_empty=allow_empty_texts)
    labels: list[str] | None = None
    if label_column in table.columns:
        values = _label_names(table, label_column)
        bad = [i for i, v in enumerate(values) if not v]
        if not bad:
            labels = values  # type: ignore[assignment]
        elif require_labels:
            raise TailTuneError(f"{src}: {_describe_rows(table, bad)} an empty label; fill it in or remove the row")
        else:
            logger.warning("%s: %d rows have no label; reading the texts without labels", src, len(bad))
    return TextDataset(texts, labels, src)


def _texts(table: _Table, column: str, *, allow_empty: bool) -> list[str]:
    """The text column as strings exactly as read, refusing missing, non-string and (unless allowed) empty texts."""
    values = table.columns[column]
    src = table.source
    missing = [i for i, v in enumerate(values) if _is_missing(v)]
    if missing:
        raise TailTuneError(
            f"{src}: {_describe_rows(table, missing)} no text (null, NaN or no value) in column '{column}'; "
            "fill it in or remove the row"
        )
    wrong = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if wrong:
        kinds = ", ".join(sorted({type(values[i]).__name__ for i in wrong}))
        raise TailTuneError(
            f"{src}: {_describe_rows(table, wrong)} a non-text value ({kinds}) in column '{column}'; expected "
            "text: store the column as strings"
        )
    if not allow_empty:
        empty = [i for i, v in enumerate(values) if not v.strip()]
        if empty:
            raise TailTuneError(f"{src}: {_describe_rows(table, empty)} an empty text; fill it in or remove the row")
    # str() turns str subclasses (numpy's str_) into plain strings.
    return [str(v) for v in values]


def _label_names(table: _Table, column: str) -> list[str | None]:
    """The label column as label names (see the module docstring), ``None`` or ``""`` where missing."""
    names = (table.class_names or {}).get(column)
    out: list[str | None] = []
    for i, value in enumerate(table.columns[column]):
        if names is not None and not _is_missing(value):
            # ClassLabel ids become names; -1 is the hub's "no label" marker (e.g. GLUE test splits).
            if not -1 <= int(value) < len(names):
                raise TailTuneError(
                    f"{table.source}: {_describe_rows(table, [i])} label id {int(value)} in column '{column}', "
                    f"which has only {len(names)} class names; fix the dataset's labels"
                )
            value = None if int(value) < 0 else names[int(value)]
        try:
            out.append(_label_name(value))
        except TypeError:
            raise TailTuneError(
                f"{table.source}: {_describe_rows(table, [i])} a {type(value).__name__} in column "
                f"'{column}'; expected one label per row, a string or a number"
            ) from None
    return out


def _label_name(value: Any) -> str | None:
    """A label value as its name, ``None`` when missing: ``1``, ``1.0``, ``"1.0"`` and ``" 1 "`` are all ``"1"``.

    Raises:
        TypeError: For a container (list, dict, array) or bytes, which are not one label.
    """
    if _is_missing(value):
        return None
    if isinstance(value, str):
        name = value.strip()
    elif isinstance(value, (bool, np.bool_)):
        name = str(bool(value))
    elif isinstance(value, (int, np.integer)):
        name = str(int(value))
    elif isinstance(value, (float, np.floating)):
        name = str(int(value)) if float(value).is_integer() else repr(float(value))
    elif isinstance(value, (list, dict, tuple, set, np.ndarray, bytes)):
        raise TypeError(type(value).__name__)
    else:
        name = str(value).strip()
    whole = _WHOLE_DECIMAL.fullmatch(name)
    return str(int(whole.group(1))) if whole else name


def _is_missing(value: Any) -> bool:
    """Null in any of the forms readers produce: None, pandas' NA and NaT, a float NaN."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _describe_rows(table: _Table, bad: list[int]) -> str:
    return _rows_text(bad, table.row_lines)


def _rows_text(bad: list[int], lines: list[int] | None) -> str:
    """``data rows 2, 5 (lines 3, 7 of the file) have`` for the 0-based rows ``bad``."""
    shown = bad[:_MAX_ROWS_SHOWN]
    more = f" and {len(bad) - len(shown)} more" if len(bad) > len(shown) else ""
    noun = "data row" if len(bad) == 1 else "data rows"
    verb = "has" if len(bad) == 1 else "have"
    desc = f"{noun} {', '.join(str(i + 1) for i in shown)}{more}"
    if lines is not None:
        word = "line" if len(bad) == 1 else "lines"
        desc += f" ({word} {', '.join(str(lines[i]) for i in shown)} of the file)"
    return f"{desc} {verb}"


def _quoted(values: Iterable[Any], limit: int = 20) -> str:
    values = list(values)
    text = ", ".join(f"'{v}'" for v in values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


# --------------------------------------------------------------------------------------------- writing


def save_dataset(
    dataset: TextDataset, path: str | Path, *, text_column: str = "text", label_column: str = "label"
) -> None:
    """Write a dataset to a file whose format follows its extension, atomically.

    ``.csv``/``.tsv`` use standard CSV quoting and CRLF line ends (fields with separators, quotes, CR or LF are
    quoted);
    ``.jsonl``/``.json`` write one JSON object per line; ``.parquet`` writes string columns. Unlabelled
    datasets get only the text column.

    Raises:
        TailTuneError: For an unsupported extension.
    """
    columns: dict[str, list[str]] = {text_column: list(dataset.texts)}
    if dataset.labels is not None:
        columns[label_column] = list(dataset.labels)
    write_table(pd.DataFrame(columns, dtype=object), path)
