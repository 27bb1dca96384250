"""Tokenise once, then cut seeded batches with dynamic padding.

Texts are tokenised a single time, in batches, with the fast tokenizer, without padding; every stage,
epoch and evaluation reuses the token ids. Batches are padded only to their own longest text, and
(optionally) grouped by length so that little padding is left: a ``max_length`` above what short texts need
costs them nothing. Training reads the first ``max_length`` tokens of a text; evaluation and prediction may read a
longer text whole, in windows (:func:`encode` with ``long_texts="chunks"``, :mod:`tailtune.models.lengths`).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tailtune.errors import TailTuneError
from tailtune.models.lengths import MAX_WINDOWS, window_starts

logger = logging.getLogger(__name__)

_MEGABATCH = 50  # length grouping sorts within windows of this many batches, so order stays random


# Texts tokenised per call: bounds the tokenizer's per-text objects (kept only for one chunk) while staying
# large enough for its batched, parallel path.
ENCODE_CHUNK = 8192


@dataclass
class Encoded:
    """Token ids of a data set, unpadded, in two flat arrays (no Python object per row).

    A row is a text, or, for data encoded with ``long_texts="chunks"``, one window of a text (``owners``).

    Attributes:
        ids: Every row's token ids (special tokens included), one after another, in the smallest unsigned integer
            type that holds the tokenizer's ids.
        offsets: ``ids[offsets[r]:offsets[r + 1]]`` are row ``r``'s ids (int64, one more than the rows).
        labels: Label ids, one per text (a 0/1 row of labels per text for multi-label data), or None for
            unlabelled data.
        pad_id: The tokenizer's padding id.
        owners: The text each row reads (int64, non-decreasing, every text at least once); None: row ``i`` is
            text ``i``.
        pad_left: Pad a batch's shorter rows on the left, as the tokenizer does (XLNet's head reads the last
            position, which must be a text's own last token).
    """

    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray | None
    pad_id: int
    owners: np.ndarray | None = None
    pad_left: bool = False

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]], labels: np.ndarray | None, pad_id: int) -> Encoded:
        """Build from one id sequence per text."""
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        flat = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(lengths.sum()))
        dtype = id_dtype(max(int(flat.max(initial=0)), pad_id) + 1)
        return cls(flat.astype(dtype), np.concatenate([[0], np.cumsum(lengths)]), labels, pad_id)

    def __len__(self) -> int:
        """The rows (texts, or windows of texts)."""
        return len(self.offsets) - 1

    @property
    def n_texts(self) -> int:
        """The texts the rows read."""
        if self.owners is None:
            return len(self)
        return int(self.owners[-1]) + 1 if len(self.owners) else 0

    def row(self, i: int) -> np.ndarray:
        """Row ``i``'s token ids (a view)."""
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
        if self.owners is not None:
            digest.update(np.ascontiguousarray(self.owners, dtype="<i8").data)
        return digest.hexdigest()[:16]

    def collate(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """Pad the given examples to their longest one (on the side the tokenizer pads)."""
        rows = np.asarray(indices, dtype=np.int64)
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        width = int(lengths.max())
        columns = np.arange(width)
        first = (width - lengths if self.pad_left else np.zeros_like(lengths))[:, None]  # where a row's tokens start
        real = (columns >= first) & (columns < first + lengths[:, None])
        ids = np.full(real.shape, self.pad_id, dtype=np.int64)
        ids[real] = self.ids[(starts[:, None] + columns - first)[real]]
        batch = {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(real.astype(np.int64)),
            "index": torch.from_numpy(rows),
        }
        if self.labels is not None:
            texts = rows if self.owners is None else self.owners[rows]
            # Class ids for one label per text; a 0/1 row per text for several.
            dtype = torch.long if self.labels.ndim == 1 else torch.float32
            batch["labels"] = torch.as_tensor(self.labels[texts], dtype=dtype)
        return batch


def id_dtype(n_ids: int) -> np.dtype:
    """The smallest unsigned integer type holding ids ``0 .. n_ids - 1``."""
    return np.dtype(np.uint16 if n_ids <= 1 << 16 else np.uint32)


def encode(
    tokenizer, texts: Sequence[str], labels: np.ndarray | None, *, max_length: int, long_texts: str = "truncate",
    max_windows: int = MAX_WINDOWS,
) -> Encoded:  # fmt: skip
    """Tokenise all texts with the fast tokenizer's batched call (not padding), chunk by chunk.

    Args:
        tokenizer: A fast tokenizer.
        texts: The texts.
        labels: Label ids, one per text, or None.
        max_length: Tokens per row, special tokens included.
        long_texts: ``truncate``: each text's first ``max_length`` tokens (as training reads it). ``chunks``: a
            text longer than that in windows of ``max_length`` tokens, each with the tokenizer's special tokens, one
            row each (:func:`~tailtune.models.lengths.window_starts`); a text that fits is one row, the same as
            truncated.
        max_windows: The most windows of one text; the tokens after them are not read.

    Raises:
        TailTuneError: With ``chunks``, a tokenizer whose special tokens are not a fixed prefix and suffix.
    """
    pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    dtype = id_dtype(max(len(tokenizer), pad_id + 1))
    windows = _Windows(tokenizer, max_length, max_windows) if long_texts == "chunks" else None
    # With windows the tokenizer still cuts, after the most tokens the windows read, keeping its special tokens.
    limit = max_length if windows is None else windows.read_limit
    pieces, lengths, owners = [], [], []
    for start, rows in _tokenized(tokenizer, texts, truncation=True, max_length=limit):
        if windows is not None:
            rows, owner = windows.split(rows, start)
            owners.append(owner)
        lengths.append(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)))
        pieces.append(np.fromiter(itertools.chain.from_iterable(rows), dtype=dtype, count=int(lengths[-1].sum())))
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]) if lengths else np.zeros(1, np.int64)
    ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype)
    pad_left = getattr(tokenizer, "padding_side", "right") == "left"
    encoded = Encoded(ids, offsets.astype(np.int64), labels, pad_id, pad_left=pad_left)
    if windows is not None:
        encoded.owners = np.concatenate(owners) if owners else np.zeros(0, np.int64)
        windows.log(len(texts))
    return encoded


def token_lengths(tokenizer, texts: Sequence[str]) -> np.ndarray:
    """Each text's token count, special tokens included, uncut (int64)."""
    counts = [np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
              for _, rows in _tokenized(tokenizer, texts, truncation=False)]  # fmt: skip
    return np.concatenate(counts) if counts else np.zeros(0, np.int64)


def special_layout(tokenizer) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before a text's tokens, and how many after them.

    Raises:
        TailTuneError: Its special tokens are not a fixed prefix and suffix of every text's tokens.
    """
    probe = "a b c"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    added = tokenizer.num_special_tokens_to_add()
    if bare and len(full) == len(bare) + added:
        for prefix in range(added + 1):
            if full[prefix : prefix + len(bare)] == bare:
                return prefix, added - prefix
    raise TailTuneError(f"{type(tokenizer).__name__}: its special tokens are not a fixed prefix and suffix of a "
                        "text's tokens, so a long text cannot be read in windows; give long_texts truncate",
                        setting="long_texts")  # fmt: skip


def _tokenized(tokenizer, texts: Sequence[str], **options) -> Iterator[tuple[int, list[list[int]]]]:
    """``(index of the first text, its chunk's token ids)`` for chunks of :data:`ENCODE_CHUNK` texts."""
    for start in range(0, len(texts), ENCODE_CHUNK):
        chunk = list(texts[start : start + ENCODE_CHUNK])
        # verbose=False: an uncut text longer than the model's limit is measured or windowed here, never run whole.
        yield start, tokenizer(chunk, padding=False, return_attention_mask=False, return_token_type_ids=False,
                               verbose=False, **options)["input_ids"]  # fmt: skip


class _Windows:
    """Cuts the token ids of texts longer than ``max_length`` into windows (:func:`encode`)."""

    def __init__(self, tokenizer, max_length: int, max_windows: int) -> None:
        self.prefix, self.suffix = special_layout(tokenizer)
        self.max_length, self.max_windows = max_length, max_windows
        self.width = max_length - self.prefix - self.suffix
        self.read_limit = max_windows * self.width + self.prefix + self.suffix
        self.long = self.capped = 0

    def split(self, rows: list[list[int]], first: int) -> tuple[list[list[int]], np.ndarray]:
        """The rows of texts ``first, first + 1, ...``: a text that fits as it is, a longer one as its windows."""
        out: list[list[int]] = []
        owners: list[int] = []
        for i, row in enumerate(rows):
            if len(row) <= self.max_length:
                windows = [row]
            else:
                self.long += 1
                self.capped += len(row) >= self.read_limit
                end = len(row) - self.suffix
                head, body, tail = row[: self.prefix], row[self.prefix : end], row[end:]
                windows = [head + body[start : start + self.width] + tail
                           for start in window_starts(len(body), self.width, self.max_windows)]  # fmt: skip
            out.extend(windows)
            owners.extend([first + i] * len(windows))
        return out, np.asarray(owners, dtype=np.int64)

    def log(self, n_texts: int) -> None:
        if self.long:
            logger.info("%d of %d texts are longer than max_length %d: read whole, in windows of %d tokens",
                        self.long, n_texts, self.max_length, self.max_length)  # fmt: skip
        if self.capped:
            logger.info("%d of %d texts fill all %d windows: their tokens after the first %d are not read",
                        self.capped, n_texts, self.max_windows, self.max_windows * self.width)  # fmt: skip


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
