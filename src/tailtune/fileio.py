"""Atomic file writes: readers never see half a file, and a failure leaves the old file in place.

Tables (:func:`write_table`) are written here too, in the format their file name's extension names.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailtune.errors import TailTuneError

if TYPE_CHECKING:
    import pandas as pd

#: Extensions :func:`write_table` writes: ``.json`` means JSON lines, as it does for reading.
TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it over ``path`` in one step.

    Raises:
        TailTuneError: ``path`` is a folder, or its folder cannot be written.
    """
    path = check_file_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise TailTuneError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it the permissions a plain open() would have.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_file_target(path: str | Path) -> Path:
    """Refuse an output file path that names a folder (call it before long work, not only when writing)."""
    path = Path(path)
    if path.is_dir():
        raise TailTuneError(f"{path}: is a folder; name a file to write")
    return path


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def write_json(path: str | Path, data: Any) -> None:
    """Write indented JSON atomically (NaN is refused: it is not JSON)."""
    write_atomic(path, json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n")


def check_table_target(path: str | Path) -> str:
    """Refuse a table path :func:`write_table` cannot write (call it before long work); return its extension.

    Raises:
        TailTuneError: ``path`` is a folder, or its extension is not one of :data:`TABLE_EXTENSIONS`.
    """
    path = check_file_target(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_EXTENSIONS:
        raise TailTuneError(
            f"{path}: cannot write '{suffix or '(no extension)'}' files; use one of {', '.join(TABLE_EXTENSIONS)}"
        )
    return suffix


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` atomically, without its index, in the format ``path``'s extension names.

    ``.csv``/``.tsv``: standard quoting and CRLF line ends; ``.jsonl``/``.json``: one JSON object per row
    (missing values are ``null``); ``.parquet``: Arrow's types, a column mixing kinds (numbers and texts) as text.

    Raises:
        TailTuneError: For a folder or an unknown extension (see :func:`check_table_target`).
    """
    write_atomic(path, table_bytes(frame, check_table_target(path)))


def table_bytes(frame: pd.DataFrame, suffix: str) -> bytes:
    """``frame`` encoded as :func:`write_table` writes it into a file ending in ``suffix`` (e.g. for stdout)."""
    if frame.columns.has_duplicates:  # JSON objects and Parquet schemas would keep only one of them
        raise TailTuneError(f"two columns share a name: {sorted(set(frame.columns[frame.columns.duplicated()]))}")
    if suffix in (".csv", ".tsv"):
        # CRLF line ends (RFC 4180): the writer then quotes every field holding a CR or an LF. With "\n" a bare
        # CR inside a text went out unquoted and a reader took it for a line break.
        text = frame.to_csv(sep="," if suffix == ".csv" else "\t", index=False, lineterminator="\r\n")
        return text.encode("utf-8")
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({str(name): _arrow_column(frame[name]) for name in frame.columns}), sink)
        return sink.getvalue().to_pybytes()
    if suffix not in (".jsonl", ".json"):
        raise TailTuneError(f"cannot write '{suffix}' files; use one of {', '.join(TABLE_EXTENSIONS)}")
    names = [str(name) for name in frame.columns]
    lines = (
        json.dumps(
            dict(zip(names, map(_json_value, row), strict=True)), ensure_ascii=False, allow_nan=False, default=str
        )  # dates and other values JSON has no type for: as text
        for row in frame.itertuples(index=False, name=None)
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _json_value(value: Any) -> Any:
    # Missing cells (None, NaN, NA) are null; NumPy scalars and arrays become what json knows.
    if _is_missing(value):
        return None
    return value.tolist() if hasattr(value, "tolist") else value


def _arrow_column(values: pd.Series) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # A column mixing kinds (numbers and texts from JSON lines) has no Parquet type: its values as text.
        return pa.array([None if _is_missing(v) else str(v) for v in values], type=pa.string())


def _is_missing(value: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path`` (removed first if present)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def waiting_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing), waiting for any other holder to finish.

    For short critical sections shared by cooperating processes, such as making a data set once; the
    operating system releases the lock of a killed holder. The lock file stays, so every process locks the
    same file.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
