from __future__ import annotations

import math

import pytest
import torch

from tailtune.config import WEIGHTING_SCHEMES
from tailtune.errors import TailTuneError
from tailtune.training.weights import WEIGHTINGS, class_weights

COUNTS = [100, 10, 1]


def _normalised(raw: list[float]) -> list[float]:
    return [w * len(raw) / sum(raw) for w in raw]


def test_config_names_the_weightings_the_registry_computes() -> None:
    """config.WEIGHTING_SCHEMES, which configs are checked against without torch, lists exactly WEIGHTINGS."""
    assert tuple(WEIGHTINGS) == WEIGHTING_SCHEMES


def test_none_is_ones() -> None:
    w = class_weights(COUNTS)
    assert w.dtype == torch.float32
    assert w.tolist() == [1.0, 1.0, 1.0]


def test_inverse_by_hand() -> None:
    # 1/100, 1/10, 1/1 sum to 1.11, so the weights are 3/1.11 * (0.01, 0.1, 1).
    expected = [3 / 1.11 * 0.01, 3 / 1.11 * 0.1, 3 / 1.11 * 1.0]
    assert class_weights(COUNTS, "inverse").tolist() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx([0.0270270, 0.270270, 2.702703], rel=1e-5)


def test_inverse_sqrt_by_hand() -> None:
    raw = [0.1, 1 / math.sqrt(10), 1.0]
    assert class_weights(COUNTS, "inverse-sqrt").tolist() == pytest.approx(_normalised(raw), rel=1e-6)


def test_effective_by_hand() -> None:
    beta = 0.9999
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    expected = _normalised(raw)
    assert class_weights(COUNTS, "effective", beta=beta).tolist() == pytest.approx(expected, rel=1e-6)
    # beta = 0.9 saturates: classes with many examples get nearly the same weight.
    raw = [(1 - 0.9) / (1 - 0.9**n) for n in COUNTS]
    assert class_weights(COUNTS, "effective", beta=0.9).tolist() == pytest.approx(_normalised(raw), rel=1e-6)


def test_effective_beta_zero_is_uniform() -> None:
    assert class_weights(COUNTS, "effective", beta=0.0).tolist() == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize("scheme", list(WEIGHTINGS))
def test_every_scheme_sums_to_k_and_favours_rare_classes(scheme: str) -> None:
    w = class_weights([500, 50, 5, 1], scheme)
    assert w.shape == (4,)
    assert w.sum().item() == pytest.approx(4.0, rel=1e-6)
    assert all(a <= b for a, b in zip(w.tolist(), w.tolist()[1:], strict=False))


def test_unknown_scheme_lists_valid_ones() -> None:
    with pytest.raises(TailTuneError, match="inverse-sqrt") as info:
        class_weights(COUNTS, "balanced")
    assert "effective" in str(info.value)


@pytest.mark.parametrize("beta", [1.0, -0.1, 1.5, float("nan")])
def test_bad_beta(beta: float) -> None:
    with pytest.raises(TailTuneError, match=r"^beta must be in \[0, 1\)") as info:
        class_weights(COUNTS, "effective", beta=beta)
    assert info.value.setting == "beta"


def test_zero_count_is_an_error() -> None:
    with pytest.raises(TailTuneError, match="class 1 has no training example"):
        class_weights([5, 0, 3], "inverse")


@pytest.mark.parametrize("counts", [[], [3, -1], [2.5, 1]])
def test_bad_counts(counts: list[float]) -> None:
    with pytest.raises(TailTuneError):
        class_weights(counts, "none")
