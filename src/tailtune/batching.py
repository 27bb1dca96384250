"""Tokenise once, then cut seeded batches with dynamic padding.

Texts are tokenised a single time, in batches, with the fast tokenizer, without padding; every stage,
epoch and evaluation reuses the token ids. Batches are padded only to their own longest text, and
(optionally) grouped by length so that little padding is left.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

_MEGABATCH = 50  # length grouping sorts within windows of this many batches, so order stays random


@dataclass
class Encoded:
    """Token ids of a data set, unpadded.

    Attributes:
        input_ids: One int array per text, truncated to the max length (special tokens included).
        labels: Label ids, or None for unlabelled data.
        pad_id: The tokenizer's padding id.
    """

    input_ids: list[np.ndarray]
    labels: np.ndarray | None
    pad_id: int

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    @property
    def n_tokens(self) -> int:
        """Real (non-pad) tokens."""
        return int(self.lengths.sum())

    def fingerprint(self) -> str:
        """A stable hash of the token ids, used to key feature caches (features do not depend on labels)."""
        digest = hashlib.sha256()
        for ids in self.input_ids:
            digest.update(np.asarray(ids, dtype=np.int64).tobytes())
            digest.update(b"|")
        return digest.hexdigest()[:16]

    def collate(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """Pad the given examples to their longest one."""
        width = max(len(self.input_ids[i]) for i in indices)
        ids = np.full((len(indices), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(indices), width), dtype=np.int64)
        for row, i in enumerate(indices):
            n = len(self.input_ids[i])
            ids[row, :n] = self.input_ids[i]
            mask[row, :n] = 1
        batch = {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask),
            "index": torch.as_tensor(np.asarray(indices, dtype=np.int64)),
        }
        if self.labels is not None:
            batch["labels"] = torch.as_tensor(self.labels[np.asarray(indices)], dtype=torch.long)
        return batch


def encode(tokenizer, texts: Sequence[str], labels: np.ndarray | None, *, max_length: int) -> Encoded:
    """Tokenise all texts in one batched call of the fast tokenizer (truncating, not padding)."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    input_ids = [np.asarray(ids, dtype=np.int32) for ids in encoded["input_ids"]]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Encoded(input_ids=input_ids, labels=labels, pad_id=int(pad_id))


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
