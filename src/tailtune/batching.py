"""Tokenise once, then cut seeded batches with dynamic padding.

Texts are tokenised a single time, in batches, with the fast tokenizer, without padding; every stage,
epoch and evaluation reuses the token ids. Batches are padded only to their own longest text, and
(optionally) grouped by length so that little padding is left.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

_MEGABATCH = 50  # length grouping sorts within windows of this many batches, so order stays random


# Texts tokenised per call: bounds the tokenizer's per-text objects (kept only for one chunk) while staying
# large enough for its batched, parallel path.
ENCODE_CHUNK = 8192


@dataclass
class Encoded:
    """Token ids of a data set, unpadded, in two flat arrays (no Python object per text).

    Attributes:
        ids: Every text's token ids (truncated, special tokens included), one after another, in the smallest
            unsigned integer type that holds the tokenizer's ids.
        offsets: ``ids[offsets[i]:offsets[i + 1]]`` are text ``i``'s ids (int64, one more than the texts).
        labels: Label ids, or None for unlabelled data.
        pad_id: The tokenizer's padding id.
    """

    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray | None
    pad_id: int

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]], labels: np.ndarray | None, pad_id: int) -> Encoded:
        """Build from one id sequence per text."""
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(lengths.sum()))
        dtype = id_dtype(max(int(flat.max(initial=0)), pad_id) + 1)
        return cls(flat.astype(dtype), np.concatenate([[0], np.cumsum(lengths)]), labels, pad_id)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> np.ndarray:
        """Text ``i``'s token ids (a view)."""
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_tokens(self) -> int:
        """Real (non-pad) tokens."""
        return int(self.offsets[-1])

    def fingerprint(self) -> str:
        """A stable hash of the token ids, used to key feature caches (features do not depend on labels)."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.ids, dtype="<u4").data)
        digest.update(np.ascontiguousarray(self.offsets, dtype="<i8").data)
        return digest.hexdigest()[:16]

    def collate(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """Pad the given examples to their longest one."""
        rows = np.asarray(indices, dtype=np.int64)
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        columns = np.arange(int(lengths.max()))
        real = columns < lengths[:, None]
        ids = np.full(real.shape, self.pad_id, dtype=np.int64)
        ids[real] = self.ids[(starts[:, None] + columns)[real]]
        batch = {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(real.astype(np.int64)),
            "index": torch.from_numpy(rows),
        }
        if self.labels is not None:
            batch["labels"] = torch.as_tensor(self.labels[rows], dtype=torch.long)
        return batch


def id_dtype(n_ids: int) -> np.dtype:
    """The smallest unsigned integer type holding ids ``0 .. n_ids - 1``."""
    return np.dtype(np.uint16 if n_ids <= 1 << 16 else np.uint32)


def encode(tokenizer, texts: Sequence[str], labels: np.ndarray | None, *, max_length: int) -> Encoded:
    """Tokenise all texts with the fast tokenizer's batched call (truncating, not padding), chunk by chunk."""
    pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    dtype = id_dtype(max(len(tokenizer), pad_id + 1))
    pieces, lengths = [], []
    for start in range(0, len(texts), ENCODE_CHUNK):
        chunk = list(texts[start : start + ENCODE_CHUNK])
        rows = tokenizer(chunk, truncation=True, max_length=max_length, padding=False,
                         return_attention_mask=False, return_token_type_ids=False)["input_ids"]  # fmt: skip
        lengths.append(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)))
        pieces.append(np.fromiter(itertools.chain.from_iterable(rows), dtype=dtype, count=int(lengths[-1].sum())))
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]) if lengths else np.zeros(1, np.int64)
    ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype)
    return Encoded(ids, offsets.astype(np.int64), labels, pad_id)


def class_sampling_probabilities(labels: np.ndarray, scheme: str) -> np.ndarray:
    """Per-example draw probabilities giving class c a total mass proportional to n_c**q.

    ``class-balanced`` is q = 0 (every class equally likely), ``sqrt`` is q = 1/2.
    """
    counts = np.bincount(labels)
    q = {"class-balanced": 0.0, "sqrt": 0.5}[scheme]
    class_mass = np.where(counts > 0, counts.astype(float) ** q, 0.0)
    per_example = class_mass[labels] / counts[labels]
    return per_example / per_example.sum()


class BatchPlan:
    """Seeded batches of example indices; a fresh, reproducible order on every pass.

    Every process of a distributed run builds the same plan from the same seed, so sharding the batches
    across processes (as ``accelerate`` does) neither drops nor duplicates examples.

    Args:
        lengths: Token count of each example.
        batch_size: Examples per batch.
        seed: Base seed; pass ``k`` uses ``seed + k``.
        shuffle: Random order (training) or input order (evaluation).
        group_by_length: Sort by length within windows of 50 batches, then shuffle the batches.
        labels / sampler: With ``class-balanced`` or ``sqrt``, each pass draws len(labels) examples with
            replacement according to :func:`class_sampling_probabilities`.
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        group_by_length: bool = True,
        labels: np.ndarray | None = None,
        sampler: str = "random",
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.probabilities = None if sampler == "random" else class_sampling_probabilities(labels, sampler)
        self.passes = 0

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + self.passes)
        self.passes += 1
        n = len(self.lengths)
        if self.probabilities is not None:
            order = rng.choice(n, size=n, replace=True, p=self.probabilities)
        elif self.shuffle:
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        if self.group_by_length:
            window = self.batch_size * _MEGABATCH
            chunks = [order[i : i + window] for i in range(0, n, window)]
            # A stable sort keeps the random order among equal lengths.
            order = np.concatenate([c[np.argsort(-self.lengths[c], kind="stable")] for c in chunks])
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        if self.shuffle and self.group_by_length:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        yield from batches
