"""Atomic file writes: readers never see half a file, and a failure leaves the old file in place.

Tables (:func:`write_table`) are written here too, in the format their file name's extension names.

An output folder that tailtune replaces whole (a run directory, a saved model, an imbalanced split) is replaced
only when it is missing, empty, or an earlier output of the same kind, recognised by what tailtune writes into
it (:class:`FolderKind`, :func:`check_output_folder`): a folder of the user's is refused, never emptied.

A write the environment refuses (a full disk, a read-only file system, a folder without permission) is one
:class:`~tailtune.errors.TailTuneError` naming the file or folder and what to do (:func:`environment_fault`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailtune.errors import TailTuneError

if TYPE_CHECKING:
    import pandas as pd

#: Extensions :func:`write_table` writes: ``.json`` means JSON lines, as it does for reading.
TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")

_PERMISSION = "choose a folder you can write to, or check its permissions"
#: The errors of the environment rather than of tailtune, by errno, and what to do about each.
ENVIRONMENT_FAULTS = {
    errno.ENOSPC: "free some space on the disk, or choose a folder on another one",
    errno.EDQUOT: "free some space within your disk quota, or choose a folder on another disk",
    errno.EFBIG: "choose a folder on a file system that takes larger files",
    errno.EROFS: "choose a folder you can write to",
    errno.EACCES: _PERMISSION,
    errno.EPERM: _PERMISSION,
}
# Libraries written in Rust (safetensors, tokenizers) raise their own exception types; their message ends in the
# operating system's error number.
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")
# SQLite (a tune's study) reports a full disk, a read-only database and a refused permission by its own codes.
_SQLITE_CODES = {13: errno.ENOSPC, 8: errno.EROFS, 3: errno.EACCES}


def environment_fault(
    exc: BaseException, path: str | Path | None = None, *, staging: str | Path | None = None
) -> TailTuneError | None:
    """The one-line error for a fault of the environment (:data:`ENVIRONMENT_FAULTS`), or None for another error.

    The fault is looked for in ``exc`` and the exceptions it was raised from: an ``OSError``'s number, the
    ``(os error N)`` of a Rust library's message, an SQLite error code.

    Args:
        exc: The exception raised.
        path: What was being written, named where the exception names no file.
        staging: The temporary file or folder that becomes ``path``: a file in it is named as in ``path``.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and not isinstance(exc, TailTuneError):
        seen.add(id(exc))
        number = _fault_number(exc)
        if number in ENVIRONMENT_FAULTS:
            where = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
            where = _as_final(str(where or path or ""), staging, path)
            return TailTuneError(f"{where + ': ' if where else ''}{os.strerror(number)}; {ENVIRONMENT_FAULTS[number]}")
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "orig", None)
    return None


def _fault_number(exc: BaseException) -> int | None:
    if isinstance(exc, OSError):
        return exc.errno
    if isinstance(getattr(exc, "sqlite_errorcode", None), int):
        return _SQLITE_CODES.get(exc.sqlite_errorcode & 0xFF)  # the primary code: extended codes add high bits
    match = _RUST_OS_ERROR.search(str(exc))
    return int(match.group(1)) if match else None


def _as_final(text: str, staging: str | Path | None, path: str | Path | None) -> str:
    # What the user will see at the end is path, not the hidden staging name it is built under.
    return text if staging is None or path is None else text.replace(str(staging), str(path))


@contextlib.contextmanager
def writing(path: str | Path, *, staging: str | Path | None = None) -> Iterator[None]:
    """Writing ``path`` (or ``staging``, the temporary file or folder that becomes it) in the block: a fault of the
    environment becomes one :class:`TailTuneError` (:func:`environment_fault`), and an error naming ``staging``
    names ``path`` instead."""
    try:
        yield
    except TailTuneError as exc:
        if staging is None or str(staging) not in str(exc):
            raise
        raise type(exc)(_as_final(str(exc), staging, path), setting=exc.setting) from None
    except Exception as exc:
        error = environment_fault(exc, path, staging=staging)
        if error is None:
            raise
        raise error from None


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
        raise _cannot_create(exc, path) from None
    os.close(fd)
    try:
        with writing(path, staging=tmp):
            yield Path(tmp)
            # mkstemp makes the file private (0600); give it the permissions a plain open() would have.
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cannot_create(exc: OSError, path: Path) -> TailTuneError:
    # The error of making the temporary file or folder that becomes path: named as path, not as the temporary name.
    fault = environment_fault(OSError(exc.errno, exc.strerror), path)
    return fault or TailTuneError(f"{path}: cannot write there ({exc.strerror or exc})")


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
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # A column mixing kinds (numbers and texts from JSON lines), or of integers past 64 bits, has no Parquet
        # type: its values as text.
        return pa.array([None if _is_missing(v) else str(v) for v in values], type=pa.string())


def _is_missing(value: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


@dataclass(frozen=True)
class FolderKind:
    """A kind of output folder that tailtune replaces whole, and how to recognise one it wrote.

    Attributes:
        name: What such a folder is, in messages (``"a tailtune run"``).
        noun: Its short name (``"run"``).
        elsewhere: What to do instead, in messages (``"choose another --output"``).
        is_ours: Whether a folder that is not empty holds nothing but an earlier output of this kind (its
            marker file, written by tailtune).
    """

    name: str
    noun: str
    elsewhere: str
    is_ours: Callable[[Path], bool]


def check_output_folder(
    path: str | Path, kind: FolderKind, *, inputs: Mapping[str, str | Path | None] | None = None
) -> Path:
    """Refuse to replace a folder that tailtune did not write there; call it before the work that fills it.

    A missing or empty folder is fine, and so is an earlier output of the same kind (``kind.is_ours``).

    Args:
        path: The output folder.
        kind: What is written there.
        inputs: What the work reads, by the name messages give it (``{"--input": "data/all.csv"}``): a local
            file or folder inside ``path`` would be deleted with it. Values that are no local path are skipped.

    Raises:
        TailTuneError: ``path`` is a file, the current folder or a folder holding it, a folder holding one of
            ``inputs``, or a folder holding anything but an earlier output of ``kind``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TailTuneError(f"{path}: exists and is not a folder; {kind.elsewhere}")
    resolved = path.resolve()
    if Path.cwd().resolve().is_relative_to(resolved):  # replacing it would pull the ground from under us
        raise TailTuneError(f"{path}: is the current folder or holds it; name a new folder for the {kind.noun}")
    for label, source in (inputs or {}).items():
        if source is not None and Path(source).exists() and Path(source).resolve().is_relative_to(resolved):
            raise TailTuneError(f"{label} {source} is inside {path}, which the {kind.noun} replaces whole; choose "
                                "another folder")  # fmt: skip
    if path.is_dir():
        entries = sorted(entry.name for entry in path.iterdir())
        if entries and not kind.is_ours(path):
            more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
            raise TailTuneError(
                f"{path}: holds files that are not part of {kind.name} ({', '.join(map(repr, entries[:5]))}{more}); "
                f"the {kind.noun} replaces the whole folder, so write it to a new or empty one"
            )
    return path


@contextlib.contextmanager
def atomic_dir(path: str | Path, kind: FolderKind) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path``.

    ``path`` is first checked with :func:`check_output_folder`: only an earlier output of ``kind`` is replaced.
    The old folder is moved aside before the new one takes its place and deleted after, so a failure at any
    point leaves either folder whole.
    """
    path = check_output_folder(path, kind)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise _cannot_create(exc, path) from None
    try:
        with writing(path, staging=tmp):
            yield tmp
            os.chmod(tmp, 0o777 & ~current_umask())
            aside = None
            if path.exists():
                aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                os.replace(path, aside)
            try:
                os.replace(tmp, path)
            except BaseException:
                if aside is not None:
                    os.replace(aside, path)
                raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def waiting_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing), waiting for any other holder to finish.

    For short critical sections shared by cooperating processes, such as making a data set once; the
    operating system releases the lock of a killed holder. The lock file stays, so every process locks the
    same file.
    """
    with writing(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 -- closed below, once locked
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
