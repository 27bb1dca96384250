"""Making class-imbalanced training sets from balanced ones, with exact, seeded counts.

Everything here is a pure function of its inputs and ``seed`` (a fresh :func:`numpy.random.default_rng`
each call), so a split can be rebuilt from the numbers recorded in ``counts.json``.

Within a class, examples are kept in the order of a seeded shuffle that does not depend on how many are
kept, so for a fixed seed a harsher imbalance keeps a subset of what a milder one kept.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tailtune.data.types import TextDataset
from tailtune.errors import TailTuneError

logger = logging.getLogger(__name__)

# floor(100 * 0.29) must be 29, but 100 * 0.29 == 28.999999999999996 in floating point.
_FLOOR_TOLERANCE = 1e-9
# Whole counts seldom give the requested ratio exactly (a head of 17 and ratio 2 keeps 8 at the tail, 2.125);
# beyond this relative difference the split is not what was asked for, and a warning says so.
_RATIO_TOLERANCE = 0.1


def _floor(x: float) -> int:
    return math.floor(x + _FLOOR_TOLERANCE)


def _exp_profile(n_max: int, ratio: float, k: int) -> list[int]:
    # rank i keeps n_max * ratio^(-i / (K - 1)): the head keeps n_max and the last class n_max / ratio.
    return [_floor(n_max * ratio ** (-i / (k - 1))) for i in range(k)]


def _step_profile(n_max: int, ratio: float, k: int) -> list[int]:
    # The first ceil(K/2) ranks are head classes, so with an odd K the head is the larger half (K=5: 3 + 2).
    n_head = math.ceil(k / 2)
    return [n_max if i < n_head else _floor(n_max / ratio) for i in range(k)]


#: Long-tail profiles by name: ``f(n_max, ratio, K) -> per-rank counts`` (head first).
PROFILES: dict[str, Callable[[int, float, int], list[int]]] = {"exp": _exp_profile, "step": _step_profile}


def class_counts(labels: Sequence[str] | Sequence[tuple[str, ...]]) -> dict[str, int]:
    """Count examples per class, ordered by count (largest first), then by name; a text with a tuple of labels
    (multi-label data) counts once for each of them."""
    counts = Counter(name for label in labels for name in (label if isinstance(label, tuple) else (label,)))
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _dedupe_key(text: str) -> str:
    return " ".join(text.split())


def dedupe_indices(texts: Sequence[str]) -> np.ndarray:
    """Indices of the first occurrence of each distinct text, in increasing order.

    Texts that differ only in whitespace (spaces, tabs, line breaks) count as the same: a tokenizer turns
    them into the same input, so keeping both would put one example on both sides of a train/test split.
    """
    seen: set[str] = set()
    keep: list[int] = []
    for i, text in enumerate(texts):
        key = _dedupe_key(text)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def conflicting_labels(texts: Sequence[str], labels: Sequence[str]) -> int:
    """How many distinct texts (as :func:`dedupe_indices` compares them) occur with more than one label."""
    seen: dict[str, set[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        seen.setdefault(_dedupe_key(text), set()).add(label)
    return sum(len(names) > 1 for names in seen.values())


def _class_indices(labels: Sequence[str]) -> dict[str, np.ndarray]:
    arr = np.asarray(labels, dtype=object)
    return {name: np.flatnonzero(arr == name) for name in sorted(set(labels))}


def _shuffled_by_class(labels: Sequence[str], seed: int) -> dict[str, np.ndarray]:
    """Each class's indices in a seeded random order; classes are drawn in name order for reproducibility."""
    rng = np.random.default_rng(seed)
    return {name: rng.permutation(idx) for name, idx in _class_indices(labels).items()}


def downsample_binary(labels: Sequence[str], *, minority: str, rate: float, seed: int) -> np.ndarray:
    """Shrink one class to a fraction of the largest other class (the SST-2 imbalance recipe).

    Keeps ``floor(n_major * rate)`` randomly chosen examples of ``minority``, where ``n_major`` is the size
    of the largest other class, and every example of the other classes.

    Args:
        labels: Label name per example.
        minority: The class to shrink.
        rate: Minority size as a fraction of ``n_major``, in (0, 1].
        seed: Seed for the random choice.

    Returns:
        Sorted indices of the kept examples.

    Raises:
        TailTuneError: For a bad rate, an unknown class, or a class too small for the requested size.
    """
    if not 0 < rate <= 1:
        raise TailTuneError(f"rate must be in (0, 1], got {rate}", setting="rate")
    counts = class_counts(labels)
    if minority not in counts:
        raise TailTuneError(
            f"minority '{minority}' is not a label; the labels are {_names(counts)}", setting="minority"
        )
    others = {name: n for name, n in counts.items() if name != minority}
    if not others:
        raise TailTuneError(
            f"minority '{minority}' is the only label; downsampling needs at least two classes", setting="minority"
        )
    n_major = max(others.values())
    n_keep = _floor(n_major * rate)
    if n_keep < 1:
        raise TailTuneError(
            f"rate {rate} of {n_major} keeps no '{minority}' example; use a larger rate", setting="rate"
        )
    if n_keep > counts[minority]:
        raise TailTuneError(
            f"rate {rate} needs {n_keep} '{minority}' examples ({rate} x {n_major}) but only "
            f"{counts[minority]} exist; use a smaller rate",
            setting="rate",
        )
    by_class = _shuffled_by_class(labels, seed)
    by_class[minority] = by_class[minority][:n_keep]
    return np.sort(np.concatenate(list(by_class.values())))


def long_tail_targets(
    counts: dict[str, int],
    *,
    ratio: float,
    profile: str = "exp",
    order: Sequence[str] | None = None,
    seed: int = 0,
    max_per_class: int | None = None,
) -> dict[str, int]:
    """How many examples each class keeps in a long-tailed version of a dataset.

    Classes are ranked 0..K-1 (head first) by ``order`` or, without it, by a seeded random permutation.
    ``n_max`` is ``max_per_class`` if given, else the smallest class count, so that every target is
    reachable whatever the ranking.

    - ``exp``: rank ``i`` keeps ``floor(n_max * ratio ** (-i / (K - 1)))``.
    - ``step``: the first ``ceil(K / 2)`` ranks keep ``n_max``, the rest ``floor(n_max / ratio)``.

    Every class keeps at least one example.

    Args:
        counts: Available examples per class.
        ratio: Imbalance ratio, head size over tail size; at least 1.
        profile: A key of :data:`PROFILES`.
        order: The classes head first; must name every class exactly once.
        seed: Seed for the random ranking when ``order`` is not given.
        max_per_class: Size of the head class(es).

    Returns:
        Target count per class, in rank order (head first).

    Raises:
        TailTuneError: For a bad ratio, profile or order, or a target above what a class has.
    """
    if profile not in PROFILES:
        raise TailTuneError(f"profile '{profile}' is unknown; choose one of: {', '.join(PROFILES)}", setting="profile")
    if not ratio >= 1:  # also catches NaN
        raise TailTuneError(f"ratio must be >= 1 (head size / tail size), got {ratio}", setting="ratio")
    if len(counts) < 2:
        raise TailTuneError(f"a long-tailed split needs at least two classes; the data has {_names(counts)}")
    if max_per_class is not None and max_per_class < 1:
        raise TailTuneError(f"max_per_class must be at least 1, got {max_per_class}", setting="max_per_class")
    ranked = _rank(counts, order, seed)
    n_max = max_per_class if max_per_class is not None else min(counts.values())
    sizes = PROFILES[profile](n_max, ratio, len(ranked))
    targets = {name: max(1, n) for name, n in zip(ranked, sizes, strict=True)}
    for name, n in targets.items():
        if n > counts[name]:
            raise TailTuneError(
                f"class '{name}' needs {n} examples for ratio {ratio} (profile {profile}) but has only "
                f"{counts[name]}; {min(counts.values())} or less always works as max_per_class",
                setting="max_per_class",
            )
    return targets


def _rank(counts: dict[str, int], order: Sequence[str] | None, seed: int) -> list[str]:
    if order is None:
        return [str(x) for x in np.random.default_rng(seed).permutation(sorted(counts))]
    order = list(order)
    missing = [name for name in sorted(counts) if name not in order]
    extra = [name for name in order if name not in counts]
    dupes = sorted({name for name in order if order.count(name) > 1})
    if missing or extra or dupes:
        problems = []
        if missing:
            problems.append(f"missing {_names(missing)}")
        if extra:
            problems.append(f"unknown {_names(extra)}")
        if dupes:
            problems.append(f"repeated {_names(dupes)}")
        raise TailTuneError(
            f"order must list every label exactly once ({'; '.join(problems)}); the labels are {_names(counts)}",
            setting="order",
        )
    return order


def make_long_tailed(
    labels: Sequence[str],
    *,
    ratio: float,
    profile: str = "exp",
    order: Sequence[str] | None = None,
    seed: int = 0,
    max_per_class: int | None = None,
) -> np.ndarray:
    """Pick a long-tailed subset whose class counts are exactly :func:`long_tail_targets`.

    Returns:
        Sorted indices of the kept examples.
    """
    targets = long_tail_targets(
        class_counts(labels),
        ratio=ratio,
        profile=profile,
        order=order,
        seed=seed,
        max_per_class=max_per_class,
    )
    by_class = _shuffled_by_class(labels, seed)
    return np.sort(np.concatenate([idx[: targets[name]] for name, idx in by_class.items()]))


def balanced_holdout(
    labels: Sequence[str], *, per_class: int, seed: int, setting: str = "test_per_class"
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``per_class`` random examples of every class, e.g. for a balanced test set.

    Callers should de-duplicate texts first (see :func:`dedupe_indices`), or a text could land on both
    sides. Every class must keep at least one example outside the holdout.

    Args:
        labels: Label name per example.
        per_class: Examples to hold out per class.
        seed: Seed for the random choice.
        setting: The setting ``per_class`` comes from, named in errors.

    Returns:
        ``(holdout_idx, rest_idx)``, both sorted.

    Raises:
        TailTuneError: If ``per_class`` is below 1 or a class has no more than ``per_class`` examples.
    """
    # A sum of settings ("test_per_class + eval_per_class") is named in the message but is no single setting.
    named = setting if setting.isidentifier() else None
    if per_class < 1:
        raise TailTuneError(f"{setting} must be at least 1, got {per_class}", setting=named)
    counts = class_counts(labels)
    short = {name: n for name, n in counts.items() if n <= per_class}
    if short:
        detail = ", ".join(f"'{name}' has {n}" for name, n in short.items())
        raise TailTuneError(
            f"{setting} {per_class} leaves nothing to train on ({detail}); use at most {min(counts.values()) - 1}",
            setting=named,
        )
    by_class = _shuffled_by_class(labels, seed)
    hold = np.concatenate([idx[:per_class] for idx in by_class.values()])
    rest = np.concatenate([idx[per_class:] for idx in by_class.values()])
    return np.sort(hold), np.sort(rest)


@dataclass
class ImbalancedSplit:
    """An imbalanced training set, optional balanced test and validation sets, and the numbers that describe them.

    Attributes:
        train: The imbalanced training set.
        test: The balanced test set, or ``None``.
        counts: ``{"train": {class: n}, "test": {class: n} | None, "ratio", "achieved_ratio", "profile", "seed",
            "rate", "minority", "order", "max_per_class", "test_per_class", "duplicates_removed",
            "conflicting_labels", "source"}``; options that do not apply are ``None``. ``ratio`` is the ratio asked
            for, ``achieved_ratio`` the largest training class over the smallest; ``conflicting_labels`` counts the
            texts found with more than one label (each kept with its first). ``order`` lists the classes head
            first. A split with a validation set adds ``"eval"`` and ``"eval_per_class"``, and one whose long
            tail was drawn with its own seed adds ``"tail_seed"``.
        eval: The balanced validation set, or ``None``.
    """

    train: TextDataset
    test: TextDataset | None
    counts: dict[str, Any]
    eval: TextDataset | None = None


#: How :func:`holdout_then_long_tail` draws the validation set: ``holdout`` holds out test and validation
#: examples together and splits them in two; ``rest`` draws the validation set after the test set, from what
#: the test set left.
EVAL_FROM = ("holdout", "rest")


def holdout_then_long_tail(
    dataset: TextDataset,
    *,
    ratio: float | None = None,
    profile: str = "exp",
    order: Sequence[str] | None = None,
    max_per_class: int | None = None,
    minority: str | None = None,
    rate: float | None = None,
    test_per_class: int | None = None,
    eval_per_class: int | None = None,
    eval_from: str = "holdout",
    seed: int = 0,
    tail_seed: int | None = None,
) -> ImbalancedSplit:
    """De-duplicate, hold out balanced test and validation sets, then make the rest imbalanced.

    Give either ``ratio`` (a long tail over all classes, see :func:`make_long_tailed`) or ``minority`` and
    ``rate`` (shrink one class, see :func:`downsample_binary`). The held-out sets are drawn before
    downsampling, so they stay balanced, and texts are de-duplicated first, so no text is in two sets.

    Args:
        dataset: Labelled data.
        ratio: Long tail: head size over tail size.
        profile: Long tail: a key of :data:`PROFILES`.
        order: Long tail: the classes head first (default: ranked by ``tail_seed``).
        max_per_class: Long tail: size of the head class (default: the smallest class).
        minority: Binary recipe: the class to shrink.
        rate: Binary recipe: its size as a fraction of the largest other class.
        test_per_class: Test examples held out per class; None for no test set.
        eval_per_class: Validation examples held out per class; None or 0 for no validation set.
        eval_from: How the validation set is drawn, one of :data:`EVAL_FROM`; both use ``seed + 1`` for it.
        seed: Seed of the holdouts, and of the long tail unless ``tail_seed`` is given.
        tail_seed: Seed of the long tail or of the binary downsampling.

    Returns:
        The split; ``counts`` records every number needed to make it again.

    Raises:
        TailTuneError: For unlabelled data, a wrong combination of options, or any error of the helpers.
    """
    if dataset.labels is None:
        raise TailTuneError(f"{dataset.source}: has no labels; an imbalanced split needs a label column")
    if dataset.multi_label:
        raise TailTuneError(f"{dataset.source}: has label sets; an imbalanced split needs one label a text")
    binary = minority is not None or rate is not None
    if ratio is not None and binary:
        raise TailTuneError("give either ratio or minority with rate, not both")
    if ratio is None and not (minority is not None and rate is not None):
        raise TailTuneError("give either ratio (long tail) or both minority and rate (one small class)")
    if eval_from not in EVAL_FROM:
        raise TailTuneError(f"eval_from must be one of {', '.join(EVAL_FROM)}, got {eval_from!r}", setting="eval_from")

    unique = dataset.subset(dedupe_indices(dataset.texts))
    removed = len(dataset) - len(unique)
    if removed:
        logger.info("%s: dropped %d duplicate texts", dataset.source, removed)
    conflicting = conflicting_labels(dataset.texts, dataset.labels)
    if conflicting:
        logger.warning("%s: %d text(s) occur with more than one label; each keeps the label of its first occurrence",
                       dataset.source, conflicting)  # fmt: skip
    test, evaluation, pool = _holdouts(unique, test_per_class or 0, eval_per_class or 0, eval_from, seed)

    tail_seed = seed if tail_seed is None else tail_seed
    pool_labels: list[str] = pool.labels  # type: ignore[assignment]
    if ratio is not None:
        ranked = list(
            long_tail_targets(
                class_counts(pool_labels),
                ratio=ratio,
                profile=profile,
                order=order,
                seed=tail_seed,
                max_per_class=max_per_class,
            )
        )
        keep = make_long_tailed(
            pool_labels, ratio=ratio, profile=profile, order=ranked, seed=tail_seed, max_per_class=max_per_class
        )
    else:
        keep = downsample_binary(pool_labels, minority=minority, rate=rate, seed=tail_seed)  # type: ignore[arg-type]
    train = pool.subset(keep)
    train_counts = class_counts(train.labels)  # type: ignore[arg-type]
    achieved = max(train_counts.values()) / min(train_counts.values())
    if ratio is not None and abs(achieved / ratio - 1) > _RATIO_TOLERANCE:
        head, tail = max(train_counts.values()), min(train_counts.values())
        logger.warning("%s: ratio %g requested, but whole counts give %g (%d examples at the head, %d at the tail); "
                       "a larger max_per_class (more data per class) or a lower ratio comes closer",
                       dataset.source, ratio, round(achieved, 4), head, tail)  # fmt: skip
    if ratio is None:
        ranked = [name for name in train_counts if name != minority] + [minority]  # type: ignore[list-item]

    counts = {
        "train": train_counts,
        "test": class_counts(test.labels) if test is not None else None,  # type: ignore[arg-type]
        "ratio": ratio,
        "achieved_ratio": round(achieved, 4),  # the largest class over the smallest, as trained on
        "profile": profile if ratio is not None else None,
        "seed": seed,
        # Recorded only when it differs, so that splits made with one seed keep their counts.json unchanged.
        **({"tail_seed": tail_seed} if tail_seed != seed else {}),
        "rate": rate,
        "minority": minority,
        "order": ranked,
        "max_per_class": max_per_class,
        "test_per_class": test_per_class,
        "duplicates_removed": removed,
        "conflicting_labels": conflicting,
        "source": dataset.source,
    }
    if evaluation is not None:
        counts["eval"] = class_counts(evaluation.labels)  # type: ignore[arg-type]
        counts["eval_per_class"] = eval_per_class
    return ImbalancedSplit(train=train, test=test, counts=counts, eval=evaluation)


#: The name the ``make-imbalanced`` command gives the recipe.
make_imbalanced = holdout_then_long_tail


def _holdouts(
    data: TextDataset, per_test: int, per_eval: int, eval_from: str, seed: int
) -> tuple[TextDataset | None, TextDataset | None, TextDataset]:
    """``(test, validation, pool)``: the balanced held-out sets and what is left to downsample."""
    test = evaluation = None
    if eval_from == "rest":
        pool = data
        if per_test:
            hold, rest = balanced_holdout(pool.labels, per_class=per_test, seed=seed)  # type: ignore[arg-type]
            test, pool = pool.subset(hold), pool.subset(rest)
        if per_eval:
            hold, rest = balanced_holdout(
                pool.labels,  # type: ignore[arg-type]
                per_class=per_eval,
                seed=seed + 1,
                setting="eval_per_class",
            )
            evaluation, pool = pool.subset(hold), pool.subset(rest)
        return test, evaluation, pool
    if not per_test + per_eval:
        return None, None, data
    # One holdout of test + validation examples per class, split in two below: both stay out of the pool.
    setting = " + ".join(name for name, n in (("test_per_class", per_test), ("eval_per_class", per_eval)) if n)
    hold, rest = balanced_holdout(data.labels, per_class=per_test + per_eval, seed=seed, setting=setting)  # type: ignore[arg-type]
    held, pool = data.subset(hold), data.subset(rest)
    if per_test and per_eval:
        eval_idx, test_idx = balanced_holdout(
            held.labels,  # type: ignore[arg-type]
            per_class=per_eval,
            seed=seed + 1,
            setting="eval_per_class",
        )
        evaluation, test = held.subset(eval_idx), held.subset(test_idx)
    elif per_eval:
        evaluation = held
    else:
        test = held
    return test, evaluation, pool


def _names(values: Any) -> str:
    return ", ".join(f"'{v}'" for v in values)


#: Names that moved to :mod:`tailtune.data.split_folder` (a made split on disk); importing them from here keeps
#: working.
_MOVED_TO_SPLIT_FOLDER = ("SPLIT_FOLDER", "SPLIT_ROLES", "check_split_folder", "write_imbalanced")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_SPLIT_FOLDER:
        from tailtune.data import split_folder

        return getattr(split_folder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
