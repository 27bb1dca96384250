"""Fingerprints of data by content: what a resumed search, a resumed experiment or a pooled report checks, so
that results on other data are never mixed with results on this data.

A fingerprint is a SHA-256 digest over a dataset's texts and labels as tailtune read them (after the readers'
normalisation), row by row in order. Where the data came from does not enter it: the same rows under another
path fingerprint alike, while the same file edited in place does not, even where its labels and class counts
stay the same (rows reordered, texts changed or moved to other labels).
"""

from __future__ import annotations

import hashlib
from typing import Any

from tailtune.data.types import Splits, TextDataset

#: The roles of a run's data, in the order runs record them.
ROLES = ("train", "eval", "test")
_PREFIX = "sha256:"


def fingerprint(dataset: TextDataset | None) -> str | None:
    """The content fingerprint of ``dataset`` (``"sha256:<hex>"``), or None for no dataset.

    Each text and label enters with its length, so no two different row sequences share the digest by
    concatenation; unlabelled data hashes its texts alone and differs from the same texts labelled. A label set
    (multi-label) enters as its number of names, then each name with its length.
    """
    if dataset is None:
        return None
    kind = b"label sets\n" if dataset.multi_label else b"labelled\n" if dataset.labels is not None else b"unlabelled\n"
    digest = hashlib.sha256(kind)
    labels = dataset.labels if dataset.labels is not None else [None] * len(dataset.texts)
    for text, label in zip(dataset.texts, labels, strict=True):
        if isinstance(label, tuple):
            digest.update(len(label).to_bytes(8, "little"))
        for value in (text,) if label is None else (text, label) if isinstance(label, str) else (text, *label):
            encoded = str(value).encode("utf-8", "surrogatepass")
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
    return _PREFIX + digest.hexdigest()


def split_fingerprints(splits: Splits, roles: tuple[str, ...] = ROLES) -> dict[str, str | None]:
    """The fingerprint of each split of ``splits`` by role (None for a split not given)."""
    return {role: fingerprint(getattr(splits, role)) for role in roles}


def changed_roles(recorded: Any, current: dict[str, str | None]) -> list[str] | None:
    """The roles whose data differs between a recorded fingerprint mapping and the current one.

    A split given on one side only counts as changed. A role the record lacks is not compared (recorded by
    another tailtune version).

    Returns:
        The changed roles in :data:`ROLES` order (empty when none), or None when nothing was recorded (a record
        written before tailtune fingerprinted data): then whether the data changed is unknown.
    """
    if not isinstance(recorded, dict):
        return None
    return [role for role in current if role in recorded and recorded[role] != current[role]]


def describe_change(role: str, splits: Splits, recorded: dict[str, Any]) -> str:
    """Words for one changed split, e.g. ``the train data now given (data/train.csv) differs in content``."""
    part = getattr(splits, role, None)
    if part is None:
        return f"{role} data was given then and is not now"
    if recorded.get(role) is None:
        return f"{role} data is given now ({part.source}) and was not then"
    return f"the {role} data now given ({part.source}) differs in content"


def short(value: Any) -> str:
    """A fingerprint as shown in messages: its first 12 hex digits (``none`` for a split not given)."""
    if value is None:
        return "none"
    text = str(value)
    return text[len(_PREFIX) : len(_PREFIX) + 12] if text.startswith(_PREFIX) else text[:12]
