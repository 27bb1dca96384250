"""A 60-class long-tailed metrics.json with known confusions, for the tests of what shows many classes.

Training counts fall exponentially from 500 to 2 but are shuffled over the class ids, so head-to-tail order is
not id order; two classes share a count, so ties show. Every test example is predicted right except the
planted confusions of :data:`CONFUSIONS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tailtune.metrics import compute_metrics

N_CLASSES = 60
NAMES = [f"class-{i:02d}" for i in range(N_CLASSES)]
_SIZES = [max(2, round(500 * 250 ** (-i / (N_CLASSES - 1)))) for i in range(N_CLASSES)]
#: Training examples per class id: the exponential sizes, shuffled (seeded).
TRAIN_COUNTS = [int(n) for n in np.random.default_rng(7).permutation(_SIZES)]
#: Class ids from the most frequent in training to the rarest (equal counts: lower id first).
HEAD_TO_TAIL = sorted(range(N_CLASSES), key=lambda c: (-TRAIN_COUNTS[c], c))
HEAD, SECOND, RAREST = HEAD_TO_TAIL[0], HEAD_TO_TAIL[1], HEAD_TO_TAIL[-1]
MIDDLE = HEAD_TO_TAIL[30]
#: (true id, predicted id, examples): MIDDLE -> HEAD the most frequent, HEAD -> MIDDLE the other way and rarer.
CONFUSIONS = [(MIDDLE, HEAD, 6), (SECOND, HEAD, 4), (HEAD, MIDDLE, 3), (RAREST, SECOND, 2)]


def support(c: int) -> int:
    """Test examples of class ``c``: 10, fewer for a class with fewer training examples (as small as 2)."""
    return min(10, TRAIN_COUNTS[c])


def long_tail_metrics() -> dict[str, Any]:
    """``compute_metrics`` of the 60 classes, with ``split`` set as training sets it."""
    y_true: list[int] = []
    y_pred: list[int] = []
    wrong = {(t, p): n for t, p, n in CONFUSIONS}
    for c in range(N_CLASSES):
        planted = [p for (t, p), n in wrong.items() if t == c for _ in range(n)]
        y_true += [c] * support(c)
        y_pred += planted + [c] * (support(c) - len(planted))
    metrics = compute_metrics(y_true, y_pred, label_names=NAMES, train_counts=TRAIN_COUNTS)
    return {**metrics, "split": "test"}
