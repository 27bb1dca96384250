"""Fingerprints of pretrained models by content: what a feature cache's key, a resumed search and a resumed
experiment compare, so that work done from other weights saved under the same path is never taken for work done
from these.

A local model folder is fingerprinted by the bytes of its ``config.json``, its tokenizer files and its weight files
(its ``*.safetensors`` files, else its ``*.bin`` files, as ``from_pretrained`` loads them): neither the folder's path
nor its files' times enter it, so a copy elsewhere fingerprints alike, while weights saved again in the same second
or copied with their times kept (``cp -p``, tar, rsync) do not. A hub id is fingerprinted by the id itself: the
hub is not asked which weights it names.

Nothing here imports torch or transformers, so ``tailtune compare --dry-run`` stays quick.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

_PREFIX = "sha256:"
_CHUNK = 1 << 20


def weight_files(folder: str | Path) -> list[Path]:
    """The weight files of a saved model folder, by name: its ``*.safetensors`` files, else its ``*.bin`` files
    (where both are there, ``from_pretrained`` loads the safetensors)."""
    for pattern in ("*.safetensors", "*.bin"):
        found = sorted(path for path in Path(folder).glob(pattern) if path.is_file())
        if found:
            return found
    return []


#: The files a tokenizer is saved in (transformers' names: fast, WordPiece, BPE and SentencePiece tokenizers).
_TOKENIZER_FILES = ("tokenizer*.json", "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt",
                    "*.model", "*.tiktoken")  # fmt: skip


def tokenizer_files(folder: str | Path) -> list[Path]:
    """The tokenizer files of a saved model folder, by name: a vocabulary or a setting such as ``do_lower_case``
    edited in place reads the same texts as other tokens."""
    found = {path for pattern in _TOKENIZER_FILES for path in Path(folder).glob(pattern) if path.is_file()}
    return sorted(found)


def model_fingerprint(model: str | os.PathLike[str] | None) -> str | None:
    """The content fingerprint of a pretrained model: ``"sha256:<hex>"`` for a local folder, else the hub id as
    given (None for no model).

    A folder's digest covers ``config.json``, the tokenizer files (:func:`tokenizer_files`) and the weight files
    (:func:`weight_files`), each entering with its name and its own SHA-256, so no two different sets of files share
    it by concatenation. Each file is read once
    a process while it stays the same file (see :func:`_file_digest`), so fingerprinting a model again is cheap.
    """
    if model is None:
        return None
    folder = Path(model)
    if not folder.is_dir():
        return str(model)
    config = folder / "config.json"
    digest = hashlib.sha256(b"tailtune model\n")
    for path in ([config] if config.is_file() else []) + tokenizer_files(folder) + weight_files(folder):
        name = path.name.encode("utf-8", "surrogateescape")
        digest.update(len(name).to_bytes(8, "little") + name)
        digest.update(_file_digest(path))
    return _PREFIX + digest.hexdigest()


def model_changed(recorded: Any, current: str | None) -> bool | None:
    """Whether the model fingerprinted ``current`` differs from the one ``recorded``.

    Returns:
        None when that is unknown: nothing recorded (work done before tailtune fingerprinted models), no model now,
        or one side fingerprinted by content and the other by hub id (the model's name and path are compared with
        the run settings).
    """
    if not isinstance(recorded, str) or current is None:
        return None
    if recorded.startswith(_PREFIX) != current.startswith(_PREFIX):
        return None
    return recorded != current


def _file_digest(path: Path) -> bytes:
    """The SHA-256 of a file's bytes, remembered while its identity, size and times stay the same.

    The change time is part of what is compared: a file rewritten in place with its size and modification time
    restored (``os.utime``, ``cp -p``) still gets a new one, which no one can set back.
    """
    stat = path.stat()
    stamp = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    return _hash_file(str(path.resolve()), stamp)


@functools.lru_cache(maxsize=256)
def _hash_file(path: str, stamp: tuple[int, ...]) -> bytes:
    # The stamp is only the cache's key: a file that changed is hashed again under its new one.
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()
