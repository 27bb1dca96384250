"""Reading and writing labelled text: CSV, TSV, JSON lines, Parquet, ``save_to_disk`` folders and the hub.

Every reader returns a :class:`TextDataset` whose labels are label *names* as strings, whatever the file
stored (integers, whole floats, ``datasets`` ``ClassLabel`` ids), so that the rest of tailtune deals with one
kind of label. Problems in the user's data raise :class:`~tailtune.errors.TailTuneError` with a one-line
message naming the file and the rows at fault.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailtune.errors import TailTuneError, first_line
from tailtune.fileio import atomic_path

logger = logging.getLogger(__name__)

#: File extensions :func:`load_dataset` and :func:`save_dataset` understand (``.json`` means JSON lines).
SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")

# Extensions that mark a spec as a local file even when it is not one we can read, so that a typo'd path
# gets "file not found" instead of a confusing attempt to fetch it from the hub.
_FILE_LIKE_EXTENSIONS = SUPPORTED_EXTENSIONS + (".txt", ".xlsx", ".xls", ".gz", ".zip", ".arrow", ".feather")

_MAX_ROWS_SHOWN = 10
_INT_LITERAL = re.compile(r"[+-]?\d+")


@dataclass
class TextDataset:
    """Texts with their label names.

    Attributes:
        texts: The input texts.
        labels: Label names as strings, aligned with ``texts``; ``None`` for unlabelled data.
        source: Where the data came from (a path or hub spec), used in messages.
    """

    texts: list[str]
    labels: list[str] | None
    source: str

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> TextDataset:
        """Return a new dataset with the rows at ``indices`` (in that order), from the same source."""
        idx = [int(i) for i in np.asarray(indices, dtype=np.int64).ravel()]
        labels = None if self.labels is None else [self.labels[i] for i in idx]
        return TextDataset([self.texts[i] for i in idx], labels, self.source)


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


# --------------------------------------------------------------------------------------------- loading


def load_dataset(
    spec: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    require_labels: bool = True,
) -> TextDataset:
    """Read labelled (or, with ``require_labels=False``, unlabelled) text.

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

    Returns:
        The texts and their label names as strings.

    Raises:
        TailTuneError: For a missing or unreadable file, missing columns, empty cells and the like.
    """
    spec = str(spec)
    kind, location, split = _resolve_spec(spec)
    if kind == "file":
        table = _read_file(Path(location))
    elif kind == "disk":
        table = _read_disk(Path(location), split, spec)
    else:
        table = _read_hub(spec)
    return _to_dataset(table, text_column=text_column, label_column=label_column, require_labels=require_labels)


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
    # The 1-based file line each data row starts on, when the format has lines worth quoting; a callable
    # when working it out costs a second pass over the file, which only an error message needs.
    row_lines: list[int] | Callable[[], list[int] | None] | None = None
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
    try:
        # Everything as str and no NA guessing: a label "NA" or "None" is a real label, while an empty cell
        # stays "" and is reported by the validation below.
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        raise TailTuneError(f"{path}: the file holds no header and no rows") from None
    except pd.errors.ParserError as e:
        raise TailTuneError(f"{path}: cannot parse as {'CSV' if sep == ',' else 'TSV'} ({first_line(e)})") from None
    columns = {str(c): df[c].tolist() for c in df.columns}
    return _Table(columns, str(path), row_lines=lambda: _record_start_lines(text, sep, len(df)))


def _record_start_lines(text: str, sep: str, n_rows: int) -> list[int] | None:
    """1-based file line on which each data row starts, or None if it cannot be worked out reliably.

    Quoted fields may span lines and pandas skips blank lines, so a data row is not simply "line + 1".
    """
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    starts: list[int] = []
    prev = 0
    try:
        for record in reader:
            if record:  # blank lines come back as [] and pandas skips them too
                starts.append(prev + 1)
            prev = reader.line_num
    except csv.Error:
        return None
    # The first record is the header.
    return starts[1:] if len(starts) == n_rows + 1 else None


def _read_jsonl(path: Path, text: str) -> _Table:
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" and stripped.startswith("["):
        # A .json file holding one array of objects is common enough to accept as well as JSON lines.
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise TailTuneError(f"{path}: not valid JSON ({e})") from None
        lines = None
    else:
        records, lines = [], []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise TailTuneError(
                    f"{path} line {lineno}: not valid JSON ({e}); each line must be one JSON object"
                ) from None
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


def _read_parquet(path: Path) -> _Table:
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several unrelated types for a damaged file
        raise TailTuneError(f"{path}: cannot read as Parquet ({first_line(e)})") from None
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


def _to_dataset(table: _Table, *, text_column: str, label_column: str, require_labels: bool) -> TextDataset:
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

    texts = _column_as_str(table, text_column)
    bad = [i for i, t in enumerate(texts) if t is None or not t.strip()]
    if bad:
        raise TailTuneError(f"{src}: {_describe_rows(table, bad)} an empty text; fill it in or remove the row")

    labels: list[str] | None = None
    if label_column in table.columns:
        # Surrounding spaces in a label ("pos " from "text, pos") are never meant to make a new class.
        values = [None if v is None else v.strip() for v in _column_as_str(table, label_column)]
        bad = [i for i, v in enumerate(values) if not v]
        if not bad:
            labels = values  # type: ignore[assignment]
        elif require_labels:
            raise TailTuneError(f"{src}: {_describe_rows(table, bad)} an empty label; fill it in or remove the row")
        else:
            logger.warning("%s: %d rows have no label; reading the texts without labels", src, len(bad))
    return TextDataset(texts, labels, src)  # type: ignore[arg-type]


def _column_as_str(table: _Table, column: str) -> list[str | None]:
    names = (table.class_names or {}).get(column)
    out: list[str | None] = []
    for i, value in enumerate(table.columns[column]):
        if names is not None:
            # ClassLabel ids become names; -1 is the hub's "no label" marker (e.g. GLUE test splits).
            out.append(None if value is None or int(value) < 0 else names[int(value)])
            continue
        try:
            out.append(_cell_to_str(value))
        except TypeError:
            raise TailTuneError(
                f"{table.source}: {_describe_rows(table, [i])} a {type(value).__name__} in column "
                f"'{column}'; expected a single text or label per row"
            ) from None
    return out


def _cell_to_str(value: Any) -> str | None:
    """A cell as a string, ``None`` when missing. Whole numbers lose their ``.0``: ``1.0`` -> ``"1"``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, (list, dict, tuple, np.ndarray)):
        raise TypeError(type(value).__name__)
    return str(value)


def _describe_rows(table: _Table, bad: list[int]) -> str:
    shown = bad[:_MAX_ROWS_SHOWN]
    more = f" and {len(bad) - len(shown)} more" if len(bad) > len(shown) else ""
    noun = "data row" if len(bad) == 1 else "data rows"
    verb = "has" if len(bad) == 1 else "have"
    desc = f"{noun} {', '.join(str(i + 1) for i in shown)}{more}"
    lines = table.row_lines() if callable(table.row_lines) else table.row_lines
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
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise TailTuneError(
            f"{path}: cannot write '{suffix or '(no extension)'}' files; use one of {', '.join(SUPPORTED_EXTENSIONS)}"
        )
    columns: dict[str, list[str]] = {text_column: list(dataset.texts)}
    if dataset.labels is not None:
        columns[label_column] = list(dataset.labels)
    with atomic_path(path) as tmp:
        if suffix in (".csv", ".tsv"):
            # CRLF line ends (RFC 4180): the writer then quotes every field holding a CR or an LF. With "\n" a
            # bare CR inside a text went out unquoted and a reader took it for a line break.
            pd.DataFrame(columns).to_csv(tmp, sep="," if suffix == ".csv" else "\t", index=False, encoding="utf-8",
                                         lineterminator="\r\n")  # fmt: skip
        elif suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()}), tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for row in zip(*columns.values(), strict=True):
                    f.write(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False) + "\n")
