"""Pretrained weights replaced in place, as a user may replace them: other values in files of the same names, sizes
and modification times (weights saved again in the same second, or copied with ``cp -p``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def copy_model(source: str | Path, target: Path) -> Path:
    """A copy of a model folder with its files' times kept (as ``cp -p`` makes one); ``target``."""
    shutil.copytree(source, target)  # copy2: modification times kept
    return target


def reweigh(folder: str | Path, factor: float = 0.5) -> Path:
    """Scale one tensor of ``folder``'s ``model.safetensors`` by ``factor``, keeping the file's size and its access and
    modification times (nanoseconds); the file."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = Path(folder) / "model.safetensors"
    before = path.stat()
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()  # saved back as it was, so the header keeps its size
    tensors = load_file(str(path))
    name = next(name for name in sorted(tensors) if name.endswith("query.weight"))
    tensors[name] = tensors[name] * factor
    save_file(tensors, str(path), metadata=metadata)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    return path
