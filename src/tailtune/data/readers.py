"""Reading and writing labelled text: CSV, TSV, JSON lines, Parquet, ``save_to_disk`` folders and the hub.

Every reader returns a :class:`TextDataset` whose labels are label *names* as strings, whatever the file
stored (integers, whole floats, ``datasets`` ``ClassLabel`` ids), so that the rest of tailtune deals with one
kind of label. Every source, and the Python API through
:func:`~tailtune.data.values.dataset_from_values`, goes through the same checks and label normalisation
(:mod:`tailtune.data.values`).

CSV and TSV are read strictly as RFC 4180 quoting: every row must hold exactly the header's fields, a
quoted field must close, and a double quote inside an unquoted field is refused when other fields of the
file are quoted (there it means a quote went astray and field ends are ambiguous); a header that does not
split on the file's separator but does on another (``;`` or a tab in a ``.csv``, a comma or ``;`` in a
``.tsv``) is refused naming that separator. Problems in the user's data raise
:class:`~tailtune.errors.TailTuneError` with a one-line message naming the file and the rows or lines at fault.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from tailtune.data.delimited import read_delimited
from tailtune.data.types import TextDataset, quote_names
from tailtune.data.values import Table, to_dataset
from tailtune.data.visible import is_empty_text
from tailtune.errors import TailTuneError, first_line
from tailtune.fileio import TABLE_EXTENSIONS, write_table

logger = logging.getLogger(__name__)

#: File extensions :func:`read_dataset` and :func:`save_dataset` understand (``.json`` means JSON lines).
SUPPORTED_EXTENSIONS = TABLE_EXTENSIONS

# Extensions that mark a spec as a local file even when it is not one we can read, so that a typo'd path
# gets "file not found" instead of a confusing attempt to fetch it from the hub.
_FILE_LIKE_EXTENSIONS = SUPPORTED_EXTENSIONS + (".txt", ".xlsx", ".xls", ".gz", ".zip", ".arrow", ".feather")


# --------------------------------------------------------------------------------------------- reading


def read_dataset(
    spec: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    require_labels: bool = True,
    allow_empty_texts: bool = False,
    label_separator: str | None = None,
) -> TextDataset:
    """Read labelled (or, with ``require_labels=False``, unlabelled) text from a file, a folder or the hub.

    A label column holding lists (JSON lines, Parquet, ``datasets`` sequences) is read as label sets (multi-label:
    a sorted tuple of names per text, ``()`` for ``[]``); so is a CSV/TSV label column, or a JSON column of
    strings, when ``label_separator`` is given (see :mod:`tailtune.data.label_sets`).

    Args:
        spec: One of: a ``.csv``, ``.tsv``, ``.jsonl``/``.json`` (JSON lines) or ``.parquet`` file; a folder
            written by ``datasets``' ``save_to_disk``, optionally ``folder:split``; or a Hugging Face hub
            dataset ``name[/config][:split]`` such as ``glue/sst2:train`` (needs the ``datasets`` package
            and a network connection). A ``DatasetDict`` with no split given uses ``train`` if present,
            else its only split.
        text_column: Column holding the text.
        label_column: Column holding the label; None reads no labels (a column of that name stays in ``columns``
            as read, unchecked).
        require_labels: If False, the label column may be missing (``labels`` is then ``None``); if it is
            present, labels are read when every row has one and dropped with a warning otherwise.
        allow_empty_texts: Accept empty and whitespace-only texts (for prediction, where every row gets an
            answer); missing (null) texts are refused either way.
        label_separator: Split each label cell that is a string on this (``"|"``): its parts, stripped, are the
            text's labels; empty parts are dropped and an empty cell is a text with no label. Lists are read as
            they are. Without it, a label that joins labels of other rows with ``|``, ``;`` or ``,`` is refused.

    Returns:
        The texts and their label names as strings, with every column of the source in ``columns``.

    Raises:
        TailTuneError: For a missing or unreadable file, a malformed CSV/TSV row, missing columns, empty
            cells, a label column mixing lists and single labels, and the like.
    """
    spec = str(spec)
    kind, location, split = _resolve_spec(spec)
    if kind == "file":
        table = _read_file(Path(location))
    elif kind == "disk":
        table = _read_disk(Path(location), split, spec)
    else:
        table = _read_hub(spec)
    dataset = to_dataset(table, text_column=text_column, label_column=label_column, require_labels=require_labels,
                          allow_empty_texts=allow_empty_texts, label_separator=label_separator)  # fmt: skip
    dataset.columns = table.columns
    return dataset


#: The name :func:`read_dataset` had before; kept so that existing imports work. The commands read data with
#: :func:`tailtune.data.builtin.load_data`, which also knows the ``builtin:`` corpora.
load_dataset = read_dataset


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


def _read_file(path: Path) -> Table:
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
    if is_empty_text(text):
        raise TailTuneError(f"{path}: the file holds only whitespace (or invisible characters), no data")
    if suffix in (".csv", ".tsv"):
        return read_delimited(path, text, sep="," if suffix == ".csv" else "\t")
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


def _read_jsonl(path: Path, text: str) -> Table:
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
    return Table(columns, str(path), row_lines=lines)


class _DuplicateKey(ValueError):
    """A JSON object that names a key twice: json keeps the last value without a word."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise _DuplicateKey(f"an object names the key(s) {quote_names(repeated)} more than once")
    return dict(pairs)


def _read_parquet(path: Path) -> Table:
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several unrelated types for a damaged file
        raise TailTuneError(f"{path}: cannot read as Parquet ({first_line(e)})") from None
    # pandas stores a named index (an id column set as the index) as a column of the file and reads it back as
    # the index: it is a column of the data, and prediction writes it back out.
    named = [name for name in df.index.names if name is not None]
    if named:
        df = df.reset_index(level=named)
    return Table({str(c): df[c].tolist() for c in df.columns}, str(path))


def _import_datasets(what: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise TailTuneError(
            f"{what} needs the datasets package: pip install datasets (or pip install 'tailtune[hub]')"
        ) from None
    return datasets


def _read_disk(path: Path, split: str | None, spec: str) -> Table:
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


def _read_hub(spec: str) -> Table:
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
                f"{spec}: holds splits {quote_names(splits)} and none is 'train'; pick one with {spec}:SPLIT"
            )
    if split not in splits:
        raise TailTuneError(f"{spec}: no split '{split}'; available splits: {quote_names(splits)}")
    return loaded[split]


def _hf_to_table(ds: Any, spec: str) -> Table:
    from datasets import ClassLabel

    # A ClassLabel column, or a sequence of ClassLabel ids (multi-label): its ids become names.
    found = {name: getattr(f, "feature", f) for name, f in ds.features.items()}
    class_names = {name: list(f.names) for name, f in found.items() if isinstance(f, ClassLabel)}
    columns = {name: list(ds[name]) for name in ds.column_names}
    return Table(columns, spec, class_names=class_names)


# --------------------------------------------------------------------------------------------- writing


def save_dataset(
    dataset: TextDataset,
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    label_separator: str = "|",
) -> None:
    """Write a dataset to a file whose format follows its extension, atomically.

    ``.csv``/``.tsv`` use standard CSV quoting and CRLF line ends (fields with separators, quotes, CR or LF are
    quoted);
    ``.jsonl``/``.json`` write one JSON object per line; ``.parquet`` writes string columns. Unlabelled
    datasets get only the text column. Label sets (multi-label) are JSON lists in JSON lines and Parquet, and
    joined with ``label_separator`` in CSV/TSV (an empty cell for a text with no label), so that
    :func:`read_dataset` with the same ``label_separator`` reads the same dataset back.

    Raises:
        TailTuneError: For an unsupported extension, or a label holding ``label_separator`` in CSV/TSV.
    """
    columns: dict[str, list[Any]] = {text_column: list(dataset.texts)}
    if dataset.labels is not None:
        columns[label_column] = list(dataset.labels)
        if dataset.multi_label:
            columns[label_column] = _label_cells(dataset, Path(path), label_separator)
    write_table(pd.DataFrame(columns, dtype=object), path)


def _label_cells(dataset: TextDataset, path: Path, separator: str) -> list[Any]:
    if path.suffix.lower() not in (".csv", ".tsv"):
        return [list(row) for row in dataset.labels or []]
    if not separator:
        raise TailTuneError("label_separator must not be empty; give the character between labels, such as '|'",
                            setting="label_separator")  # fmt: skip
    held = sorted({name for row in dataset.labels or [] for name in row if separator in name})
    if held:
        raise TailTuneError(
            f"{path}: cannot join label sets with {separator!r}: label(s) {quote_names(held)} hold it; pick another "
            "label_separator",
            setting="label_separator",
        )
    return [separator.join(row) for row in dataset.labels or []]
