"""How many tokens a run reads: its ``max_length`` from the training texts, and the windows of a longer text.

**The length** (when none is given), by :func:`choose_max_length`: the token lengths of the training texts
(special tokens included; at most :data:`SAMPLE_SIZE` texts, a fixed sample of larger sets) give their
:data:`PERCENTILE` th percentile, rounded up to a multiple of :data:`ROUND_TO`; the result is at least
:data:`~tailtune.config.DEFAULT_MAX_LENGTH` (batches are padded to their own longest text, so a budget above
what short texts need costs them nothing), at most :data:`COST_CAP`, and never above the model's limit.
A text of ``n`` tokens costs about ``n`` times a token's compute in a small encoder (attention's share is small
at these lengths), so the cap bounds the cost of a long text at about twice that of the former default of 128.
Training reads the first ``max_length`` tokens of each text.

**The windows** (:func:`window_starts`): evaluation and prediction read a text longer than ``max_length`` whole,
in windows of ``max_length`` tokens, each with the tokenizer's special tokens, as few as cover the text
(``ceil(n / width)`` for ``n`` tokens of text and ``width`` per window) and spread evenly from its first token
to its last, so every window is full and they overlap only as much as that needs (not at all when ``width``
divides ``n``). The model's logits are averaged over a text's windows. At most :data:`MAX_WINDOWS` windows are
read per text, which bounds a text's cost at that many short ones; tokens after them are not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tailtune.config import DEFAULT_MAX_LENGTH

#: The share of training texts (in percent) that the length read from the data should hold whole.
PERCENTILE = 95
#: The length read from the data is a multiple of this.
ROUND_TO = 64
#: The most tokens a length read from the data may be: about twice the compute per long text of 128.
COST_CAP = 256
#: At most this many training texts are measured; larger sets are measured on a fixed sample of them.
SAMPLE_SIZE = 10_000
#: The most windows evaluation and prediction read of one text.
MAX_WINDOWS = 8


@dataclass(frozen=True)
class LengthChoice:
    """A ``max_length`` chosen when none was given, and why (:func:`choose_max_length`).

    Attributes:
        max_length: The length.
        reason: One line for the log, naming the numbers the choice rests on.
        percentile_tokens: The :data:`PERCENTILE` th percentile of the measured token lengths (None: no texts).
        covered: The share of the measured texts no longer than ``max_length`` (None: no texts).
        measured: How many texts were measured.
    """

    max_length: int
    reason: str
    percentile_tokens: int | None = None
    covered: float | None = None
    measured: int = 0


def length_sample(texts: Sequence[str]) -> list[str]:
    """The texts to measure: all of them, or a fixed sample of :data:`SAMPLE_SIZE` (the same for the same texts)."""
    if len(texts) <= SAMPLE_SIZE:
        return list(texts)
    keep = np.sort(np.random.default_rng(0).choice(len(texts), size=SAMPLE_SIZE, replace=False))
    return [texts[i] for i in keep]


def choose_max_length(lengths: np.ndarray | None, limit: int | None) -> LengthChoice:
    """The ``max_length`` of a run that gives none: see the module docstring for the rule.

    Args:
        lengths: Token counts of the training texts, special tokens included; None where no texts are at hand
            (then :data:`~tailtune.config.DEFAULT_MAX_LENGTH`, as before any data is read).
        limit: The model's limit (:func:`tailtune.models.transformer.position_limit`); None where it states none.
    """
    floor = DEFAULT_MAX_LENGTH
    if lengths is None or len(lengths) == 0:
        if limit is not None and limit < floor:
            return LengthChoice(limit, f"max_length {limit}, this model's limit (the default {floor} is above it)")
        return LengthChoice(floor, f"max_length {floor}, the default")
    lengths = np.asarray(lengths)
    # The smallest length that at least PERCENTILE% of the texts fit in (no interpolation between two texts).
    wanted = int(np.percentile(lengths, PERCENTILE, method="inverted_cdf"))
    rounded = -(-wanted // ROUND_TO) * ROUND_TO
    bounded = min(max(rounded, floor), COST_CAP)
    if rounded > COST_CAP:
        why = f"above the cost cap of {COST_CAP}"
    elif rounded < floor:
        why = f"below the least length of {floor}"
    else:
        why = f"rounded up to a multiple of {ROUND_TO}"
    max_length = bounded if limit is None else min(bounded, limit)
    if max_length < bounded:
        why += f"; {bounded} is above this model's limit of {limit}"
    covered = float(np.mean(lengths <= max_length))
    reason = (f"max_length {max_length} from the training texts: {PERCENTILE}% of the {len(lengths):,} measured have "
              f"at most {wanted} tokens ({why}); {covered:.0%} of them fit whole, longer ones are cut to it in "
              "training")  # fmt: skip
    return LengthChoice(max_length, reason, wanted, covered, len(lengths))


def window_starts(n_tokens: int, width: int, max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """Where each window of a text begins, in tokens of its text (special tokens not counted).

    As few windows of ``width`` tokens as cover ``n_tokens``, the first at 0 and the last ending at the text's
    end, evenly spread; past ``max_windows`` windows, the first ``max_windows * width`` tokens, end to end.
    A text that fits one window has the one window at 0.

    Args:
        n_tokens: The text's tokens, special tokens not counted.
        width: Tokens of text per window (``max_length`` less the special tokens), at least 1.
        max_windows: The most windows to read.
    """
    if width < 1:
        raise ValueError(f"a window needs room for at least one token of text, got width {width}")
    count = max(1, -(-n_tokens // width))
    if count > max_windows:
        return np.arange(max_windows, dtype=np.int64) * width
    if count == 1:
        return np.zeros(1, dtype=np.int64)
    # Floor division keeps consecutive starts at most width apart, since (n - width) / (count - 1) <= width.
    return np.arange(count, dtype=np.int64) * (n_tokens - width) // (count - 1)
