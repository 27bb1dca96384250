"""Training texts the tokenizer cannot read: most of their tokens are its unknown token.

A model reads the scripts its vocabulary covers. The embedded MiniLM reads Thai, emoji and most Chinese characters
as ``[UNK]``: texts written in them all look alike to it, training learns little more than which class is most
frequent (three topics in Thai: macro-F1 0.19, one class predicted for every text), and nothing fails. Such texts
are said before training, with what reads them: the ``tfidf`` strategy (character n-grams where words have no
spaces between them) or a model whose vocabulary covers their script.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tailtune.training.batching import Encoded

logger = logging.getLogger(__name__)

#: A text is unreadable when at least this share of its own tokens (special tokens aside) is the unknown token.
UNKNOWN_SHARE = 0.5
#: The share of unreadable training texts from which they are warned of.
NOTABLE_TEXTS = 0.1

_said: set[tuple[str, str]] = set()  # (source, tokenizer): a refit encodes the same texts again


def unknown_shares(tokenizer: Any, encoded: Encoded) -> np.ndarray | None:
    """Each text's share of unknown tokens among its own (special tokens aside; over all its windows where it was
    encoded in windows; 1 for a text of none, which the model reads as nothing too), or None for a tokenizer without
    an unknown token (byte-level ones read every character)."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return None
    own = ~np.isin(encoded.ids, [i for i in tokenizer.all_special_ids if i != unk])
    rows = np.repeat(np.arange(len(encoded.offsets) - 1), np.diff(encoded.offsets))
    texts = rows if encoded.owners is None else encoded.owners[rows]
    count = len(encoded.offsets) - 1 if encoded.owners is None else int(encoded.owners.max(initial=-1)) + 1
    tokens = np.bincount(texts, weights=own, minlength=count)
    unknown = np.bincount(texts, weights=own & (encoded.ids == unk), minlength=count)
    return np.divide(unknown, tokens, out=np.ones_like(unknown), where=tokens > 0)


def warn_of_unreadable_texts(tokenizer: Any, encoded: Encoded, source: str) -> None:
    """Warn, once per data source and tokenizer, where :data:`NOTABLE_TEXTS` or more of the training texts are
    mostly unknown tokens."""
    from tailtune.data.builtin import model_spec

    shares = unknown_shares(tokenizer, encoded)
    name = model_spec(str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__))
    if shares is None or not len(shares) or (source, name) in _said:
        return
    unreadable = int((shares >= UNKNOWN_SHARE).sum())
    if unreadable >= NOTABLE_TEXTS * len(shares):
        _said.add((source, name))
        logger.warning(
            "%s: %d of %d training texts (%.0f%%) are mostly tokens the model's vocabulary does not hold (%s reads "
            "them as %s): it can hardly tell them apart. Train --strategy tfidf, or a model whose vocabulary covers "
            "their script", source, unreadable, len(shares), 100 * unreadable / len(shares), name,
            tokenizer.unk_token,
        )  # fmt: skip
