from __future__ import annotations

import math

import pytest
import torch

from tailtune.config import LOSS_PARAMS, MULTILABEL_LOSS_PARAMS
from tailtune.errors import TailTuneError
from tailtune.training.losses import LOSSES, build_loss, loss_params

COUNTS = [100, 10, 1]
LOGITS = [[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [0.0, 0.3, 1.2]]
LABELS = [0, 2, 1]
WEIGHT = [0.2, 0.8, 2.0]


def test_config_names_the_losses_and_parameters_the_registry_builds() -> None:
    """config.LOSS_PARAMS, which configs are checked against without torch, lists exactly what LOSSES builds."""
    assert [(name, tuple(loss_params(name))) for name in LOSSES] == list(LOSS_PARAMS.items())


def test_config_names_the_multilabel_losses_and_parameters_the_registry_builds() -> None:
    from tailtune.training.multilabel_losses import MULTILABEL_LOSSES, multilabel_loss_params

    built = [(name, tuple(multilabel_loss_params(name))) for name in MULTILABEL_LOSSES]
    assert built == list(MULTILABEL_LOSS_PARAMS.items())


def _logits() -> torch.Tensor:
    return torch.tensor(LOGITS, dtype=torch.float64)


def _labels() -> torch.Tensor:
    return torch.tensor(LABELS)


def _nll(row: list[float], y: int) -> float:
    """-log softmax(row)[y] with plain math."""
    return -(row[y] - math.log(sum(math.exp(v) for v in row)))


def _ce(rows: list[list[float]], labels: list[int], weight: list[float] | None = None) -> float:
    w = [1.0] * len(rows[0]) if weight is None else weight
    return sum(w[y] * _nll(r, y) for r, y in zip(rows, labels, strict=True)) / sum(w[y] for y in labels)


def _loss(name: str, weight: list[float] | None = None, **params: float) -> float:
    w = None if weight is None else torch.tensor(weight)
    return build_loss(name, class_counts=COUNTS, weight=w, **params)(_logits(), _labels()).item()


def test_ce_by_hand() -> None:
    # Row 0: log(7.38906 + 2.71828 + 1.10517) - 2 = 0.41703;
    # row 1: log(1.64872 + 12.18249 + 0.36788) - (-1) = 3.65318;
    # row 2: log(1 + 1.34986 + 3.32012) - 0.3 = 1.43518.
    nll = [0.41703, 3.65318, 1.43518]
    assert [_nll(r, y) for r, y in zip(LOGITS, LABELS, strict=True)] == pytest.approx(nll, abs=1e-4)
    assert _loss("ce") == pytest.approx(sum(nll) / 3, abs=1e-4)
    assert _loss("ce") == pytest.approx(_ce(LOGITS, LABELS), rel=1e-9)


def test_weighted_ce_divides_by_sum_of_target_weights() -> None:
    # Targets 0, 2, 1 have weights 0.2, 2.0, 0.8.
    expected = (0.2 * _nll(LOGITS[0], 0) + 2.0 * _nll(LOGITS[1], 2) + 0.8 * _nll(LOGITS[2], 1)) / 3.0
    assert _loss("ce", WEIGHT) == pytest.approx(expected, rel=1e-6)
    assert _loss("ce", WEIGHT) != pytest.approx(_loss("ce"), rel=1e-3)
    # Uniform weights of any size change nothing, thanks to the weighted mean.
    assert _loss("ce", [3.0, 3.0, 3.0]) == pytest.approx(_loss("ce"), rel=1e-6)


def test_focal_by_hand() -> None:
    def fl(row: list[float], y: int, gamma: float, alpha: float = 1.0) -> float:
        p = math.exp(-_nll(row, y))
        return -alpha * (1 - p) ** gamma * math.log(p)

    rows = list(zip(LOGITS, LABELS, strict=True))
    expected = sum(fl(r, y, 2.0) for r, y in rows) / 3
    assert _loss("focal") == pytest.approx(expected, rel=1e-9)
    assert _loss("focal", gamma=0.5) == pytest.approx(sum(fl(r, y, 0.5) for r, y in rows) / 3, rel=1e-9)
    # alpha_t from the weight, then a plain mean over the batch.
    weighted = sum(fl(r, y, 2.0, WEIGHT[y]) for r, y in rows) / 3
    assert _loss("focal", WEIGHT) == pytest.approx(weighted, rel=1e-6)
    # Focusing shrinks the loss of well-classified examples.
    assert _loss("focal") < _loss("ce")


def test_focal_gamma_zero_is_ce() -> None:
    assert _loss("focal", gamma=0.0) == pytest.approx(_loss("ce"), rel=1e-9)


def test_ldam_by_hand() -> None:
    # m_j = n_j^(-1/4) = (0.3162, 0.5623, 1.0), rescaled so the largest (class 2, one example) is 0.5.
    margins = [0.5 * n**-0.25 for n in COUNTS]
    assert margins == pytest.approx([0.158114, 0.281171, 0.5], rel=1e-5)

    def adjusted(scale: float) -> list[list[float]]:
        rows = []
        for row, y in zip(LOGITS, LABELS, strict=True):
            rows.append([scale * (v - (margins[y] if j == y else 0.0)) for j, v in enumerate(row)])
        return rows

    assert _loss("ldam") == pytest.approx(_ce(adjusted(1.0), LABELS), rel=1e-6)
    assert _loss("ldam", scale=30.0) == pytest.approx(_ce(adjusted(30.0), LABELS), rel=1e-6)
    assert _loss("ldam", WEIGHT) == pytest.approx(_ce(adjusted(1.0), LABELS, WEIGHT), rel=1e-6)
    # The margin makes the true class harder to win, so the loss exceeds plain CE.
    assert _loss("ldam") > _loss("ce")


def test_ldam_with_tiny_margin_is_scaled_ce() -> None:
    scaled = [[4.0 * v for v in row] for row in LOGITS]
    assert _loss("ldam", max_margin=1e-12, scale=4.0) == pytest.approx(_ce(scaled, LABELS), rel=1e-9)


def test_logit_adjusted_by_hand() -> None:
    prior = [n / 111 for n in COUNTS]
    for tau in (1.0, 0.5):
        rows = [[v + tau * math.log(p) for v, p in zip(row, prior, strict=True)] for row in LOGITS]
        assert _loss("logit-adjusted", tau=tau) == pytest.approx(_ce(rows, LABELS), rel=1e-6)
    assert _loss("logit-adjusted", tau=0.0) == pytest.approx(_loss("ce"), rel=1e-9)


def test_balanced_softmax_by_hand() -> None:
    rows = [[v + math.log(n) for v, n in zip(row, COUNTS, strict=True)] for row in LOGITS]
    assert _loss("balanced-softmax") == pytest.approx(_ce(rows, LABELS), rel=1e-6)
    assert _loss("balanced-softmax", WEIGHT) == pytest.approx(_ce(rows, LABELS, WEIGHT), rel=1e-6)
    # Softmax ignores the constant log(sum n) between log counts and log prior.
    assert _loss("balanced-softmax") == pytest.approx(_loss("logit-adjusted", tau=1.0), rel=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_flows(name: str, weighted: bool) -> None:
    weight = torch.tensor(WEIGHT) if weighted else None
    loss_fn = build_loss(name, class_counts=COUNTS, weight=weight)
    logits = _logits().requires_grad_()
    loss = loss_fn(logits, _labels())
    assert loss.ndim == 0
    loss.backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    # Raising the true-class logit lowers every one of these losses.
    assert all(logits.grad[i, y] < 0 for i, y in enumerate(LABELS))


@pytest.mark.parametrize("name", list(LOSSES))
def test_buffers_follow_the_module(name: str) -> None:
    loss_fn = build_loss(name, class_counts=COUNTS, weight=torch.tensor(WEIGHT))
    assert "weight" in dict(loss_fn.named_buffers())
    moved = loss_fn.to("meta")
    assert all(b.device.type == "meta" for b in moved.buffers())


@pytest.mark.parametrize("name", list(LOSSES))
def test_half_precision_logits(name: str) -> None:
    loss_fn = build_loss(name, class_counts=COUNTS, weight=torch.tensor(WEIGHT))
    reference = loss_fn(_logits().float(), _labels())
    bf16 = _logits().to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(bf16, _labels())
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(reference.item(), rel=2e-2)
    loss.backward()
    assert bf16.grad is not None and bf16.grad.dtype == torch.bfloat16
    assert loss_fn(_logits().half(), _labels()).item() == pytest.approx(reference.item(), rel=1e-2)


def test_loss_params() -> None:
    assert loss_params("ce") == {}
    assert loss_params("focal") == {"gamma": 2.0}
    assert loss_params("ldam") == {"max_margin": 0.5, "scale": 1.0}
    assert loss_params("logit-adjusted") == {"tau": 1.0}
    assert loss_params("balanced-softmax") == {}
    assert set(LOSSES) == {"ce", "focal", "ldam", "logit-adjusted", "balanced-softmax"}


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(TailTuneError, match="balanced-softmax"):
        build_loss("cb-focal", class_counts=COUNTS)
    with pytest.raises(TailTuneError, match="logit-adjusted"):
        loss_params("nope")


def test_unknown_param_lists_the_loss_params() -> None:
    with pytest.raises(TailTuneError, match="'gama'.*gamma"):
        build_loss("focal", class_counts=COUNTS, gama=1.0)
    with pytest.raises(TailTuneError, match="'tau'.*max_margin, scale"):
        build_loss("ldam", class_counts=COUNTS, tau=1.0)
    with pytest.raises(TailTuneError, match="valid parameters: none"):
        build_loss("ce", class_counts=COUNTS, gamma=1.0)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("focal", {"gamma": -0.5}, "gamma must be >= 0"),
        ("ldam", {"max_margin": 0.0}, "max_margin must be > 0"),
        ("ldam", {"scale": -1.0}, "scale must be > 0"),
        ("logit-adjusted", {"tau": -1.0}, "tau must be >= 0"),
        ("focal", {"gamma": "two"}, "gamma must be a number"),
    ],
)
def test_bad_param_values(name: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(TailTuneError, match=message):
        build_loss(name, class_counts=COUNTS, **params)


def test_numeric_strings_are_accepted() -> None:
    assert build_loss("focal", class_counts=COUNTS, gamma="1.5").gamma == 1.5


@pytest.mark.parametrize("name", list(LOSSES))
def test_zero_count_is_an_error(name: str) -> None:
    with pytest.raises(TailTuneError, match="no training example"):
        build_loss(name, class_counts=[10, 0, 1])
