"""A made imbalanced split on disk: its folder (``counts.json`` beside one data file per role) and the check that
writing one replaces only a split written before."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from tailtune.data.imbalance import ImbalancedSplit
from tailtune.data.readers import SUPPORTED_EXTENSIONS, save_dataset
from tailtune.errors import TailTuneError
from tailtune.fileio import FolderKind, atomic_dir, check_output_folder, write_json

#: The roles of a written split's data files, ``<role><suffix>`` beside ``counts.json``.
SPLIT_ROLES = ("train", "test", "eval")
_COUNTS_FILE = "counts.json"


def _is_split_dir(path: Path) -> bool:
    """Whether ``path`` holds a split written before and nothing else: the ``counts.json`` this module writes,
    the data files of the roles it records and the temporary files of an interrupted write."""
    try:
        counts = json.loads((path / _COUNTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(counts, dict) or not isinstance(counts.get("train"), dict) or "seed" not in counts:
        return False
    roles = [role for role in SPLIT_ROLES if counts.get(role)]
    return all(_is_split_file(entry, roles) for entry in path.iterdir())


def _is_split_file(path: Path, roles: Sequence[str]) -> bool:
    name = path.name
    if name.startswith(".") and name.endswith(".tmp"):  # left by an interrupted atomic write
        return True
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    return path.is_file() and (name == _COUNTS_FILE or (stem in roles and suffix in SUPPORTED_EXTENSIONS))


#: An imbalanced split's folder, as an output folder that only an earlier split is replaced in.
SPLIT_FOLDER = FolderKind("an imbalanced split", "split", "name a folder to write the split into", _is_split_dir)


def check_split_folder(out_dir: str | Path, *, inputs: Mapping[str, str | None] | None = None) -> Path:
    """Refuse an output folder :func:`write_imbalanced` would not replace; call it before the work.

    A missing or empty folder is fine, and so is one holding only a split written before (its ``counts.json``,
    the data files of the roles it records and the temporary files of an interrupted write): that is replaced
    whole. Data files without that ``counts.json`` are the user's, not a split of ours.

    Args:
        out_dir: The output folder.
        inputs: The data the split is made from, by the name messages give it (``{"--input": path}``).

    Raises:
        TailTuneError: ``out_dir`` is a file, the current folder or one holding it, a folder holding one of
            ``inputs``, or a folder holding anything else.
    """
    return check_output_folder(out_dir, SPLIT_FOLDER, inputs=inputs)


def write_imbalanced(
    split: ImbalancedSplit,
    out_dir: str | Path,
    *,
    fmt_suffix: str,
    text_column: str = "text",
    label_column: str = "label",
) -> dict[str, Path]:
    """Write ``train<suffix>``, ``test<suffix>`` and ``eval<suffix>`` (when the split has them) and ``counts.json``.

    The whole set is written into a new folder beside ``out_dir``, which then takes ``out_dir``'s place: a split
    written there before is replaced as a whole (no test file of an earlier split stays beside a new training
    file that may hold its rows), and an interrupted write leaves the old set as it was. A folder holding other
    files, or the data the split was made from (``counts["source"]``), is refused (see :func:`check_split_folder`).
    ``out_dir``'s parent is created if needed.

    Returns:
        Paths by role: ``"train"``, ``"test"`` and ``"eval"`` (if written) and ``"counts"``.

    Raises:
        TailTuneError: For an unknown format or an output folder holding other files.
    """
    suffix = fmt_suffix if fmt_suffix.startswith(".") else f".{fmt_suffix}"
    if suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise TailTuneError(f"unknown output format '{fmt_suffix}'; use one of {', '.join(SUPPORTED_EXTENSIONS)}")
    out = check_split_folder(out_dir, inputs={"the source data": split.counts.get("source")})
    names = {role: f"{role}{suffix}" for role in SPLIT_ROLES if getattr(split, role) is not None}
    with atomic_dir(out.resolve(), SPLIT_FOLDER) as tmp:  # resolved: the staging folder goes beside the real one
        for role, name in names.items():
            save_dataset(getattr(split, role), tmp / name, text_column=text_column, label_column=label_column)
        write_json(tmp / _COUNTS_FILE, split.counts)
    return {**{role: out / name for role, name in names.items()}, "counts": out / _COUNTS_FILE}
