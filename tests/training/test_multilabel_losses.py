from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tailtune.errors import TailTuneError
from tailtune.training.multilabel_losses import (
    MULTILABEL_LOSSES,
    build_multilabel_loss,
    multilabel_loss_needs,
    multilabel_loss_params,
    rebalancing_weights,
)

# Two texts, three labels. Label 0 is on half the 100 training texts (prior 1/2, so its NTR bias is 0), label 2
# on two. Text 0 carries labels 0 and 2, text 1 label 1 only.
LOGITS = [[1.5, -0.5, 0.2], [-1.0, 2.0, -2.5]]
TARGETS = [[1, 0, 1], [0, 1, 0]]
COUNTS = [50, 10, 2]
N = 100


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _entries(loss) -> list[float]:  # noqa: ANN001 - a function of (z, y, label)
    """The per-entry losses of LOGITS/TARGETS, row by row."""
    return [
        loss(z, y, i)
        for row, target in zip(LOGITS, TARGETS, strict=True)
        for i, (z, y) in enumerate(zip(row, target, strict=True))
    ]


def _mean(loss) -> float:  # noqa: ANN001
    values = _entries(loss)
    return sum(values) / len(values)


def _bce(z: float, y: int, i: int = 0) -> float:
    p = _sigmoid(z)
    return -math.log(p) if y else -math.log(1 - p)


def _focal(z: float, y: int, gamma: float = 2.0) -> float:
    p = _sigmoid(z)
    return -((1 - p) ** gamma) * math.log(p) if y else -(p**gamma) * math.log(1 - p)


def _cb_weights(beta: float) -> list[float]:
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    return [w * len(raw) / sum(raw) for w in raw]


def _ntr(z: float, y: int, i: int, kappa: float = 0.05, lam: float = 2.0, gamma: float = 2.0) -> float:
    p_i = COUNTS[i] / N
    nu = kappa * math.log(1 / p_i - 1)
    if y:
        q = _sigmoid(z - nu)
        return -((1 - q) ** gamma) * math.log(q)
    q = _sigmoid(lam * (z - nu))
    return -(1 / lam) * q**gamma * math.log(1 - q)


def _r_hat(k: int, i: int, alpha: float = 0.1, beta: float = 10.0, mu: float = 0.3) -> float:
    p_class = (1 / 3) * (1 / COUNTS[i])
    p_instance = (1 / 3) * sum(1 / n for n, y in zip(COUNTS, TARGETS[k], strict=True) if y)
    return alpha + _sigmoid(beta * (p_class / p_instance - mu))


def _loss(name: str, **params: float) -> float:
    loss_fn = build_multilabel_loss(name, label_counts=COUNTS, num_texts=N, **params)
    return loss_fn(torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(TARGETS, dtype=torch.float64)).item()


# ---- hand-computed values -------------------------------------------------------------------------------------


def test_bce_by_hand() -> None:
    # -log sigmoid(1.5) = log(1 + e^-1.5) = 0.20141; -log(1 - sigmoid(-0.5)) = log(1 + e^-0.5) = 0.47408; ...
    entries = [0.201413, 0.474077, 0.598139, 0.313262, 0.126928, 0.078890]
    assert _entries(_bce) == pytest.approx(entries, abs=1e-6)
    assert _loss("bce") == pytest.approx(sum(entries) / 6, abs=1e-6)
    assert _loss("bce") == pytest.approx(0.298785, abs=1e-6)


def test_focal_by_hand() -> None:
    assert _loss("focal") == pytest.approx(_mean(lambda z, y, i: _focal(z, y, 2.0)), rel=1e-12)
    assert _loss("focal", gamma=0.5) == pytest.approx(_mean(lambda z, y, i: _focal(z, y, 0.5)), rel=1e-12)
    # alpha weights positives, 1 - alpha negatives (Lin et al.'s alpha_t).
    alpha_t = _mean(lambda z, y, i: (0.25 if y else 0.75) * _focal(z, y, 2.0))
    assert _loss("focal", alpha=0.25) == pytest.approx(alpha_t, rel=1e-12)
    assert _loss("focal") < _loss("bce")


def test_class_balanced_by_hand() -> None:
    # (1 - 0.9999) / (1 - 0.9999^n) for n = 50, 10, 2: 0.020049, 0.100045, 0.500025 (sum 0.620119); times 3/sum.
    weights = _cb_weights(0.9999)
    assert weights == pytest.approx([0.096993, 0.483996, 2.419011], abs=1e-6)
    assert _loss("cb") == pytest.approx(_mean(lambda z, y, i: weights[i] * _bce(z, y)), rel=1e-6)
    weights = _cb_weights(0.99)
    expected = _mean(lambda z, y, i: weights[i] * _focal(z, y, 2.0))
    assert _loss("cb-focal", beta=0.99) == pytest.approx(expected, rel=1e-6)


def test_ntr_focal_by_hand() -> None:
    # nu = 0.05 * log(100/n - 1): 0, 0.109861, 0.194591.
    nus = [0.05 * math.log(N / n - 1) for n in COUNTS]
    assert nus == pytest.approx([0.0, 0.109861, 0.194591], abs=1e-6)
    assert _loss("ntr-focal") == pytest.approx(_mean(_ntr), rel=1e-6)
    expected = _mean(lambda z, y, i: _ntr(z, y, i, kappa=0.3, lam=5.0, gamma=1.0))
    assert _loss("ntr-focal", kappa=0.3, lam=5.0, gamma=1.0) == pytest.approx(expected, rel=1e-6)


def test_distribution_balanced_by_hand() -> None:
    # Text 0 (labels 0 and 2): r = (1/n_i) / (1/50 + 1/2) = 0.038462, 0.192308, 0.961538.
    # Text 1 (label 1 only):   r = (1/n_i) / (1/10)       = 0.2, 1, 5.
    r_hat = [[_r_hat(k, i) for i in range(3)] for k in range(2)]
    assert r_hat[0] == pytest.approx([0.168155, 0.354089, 1.098662], abs=1e-6)
    assert r_hat[1] == pytest.approx([0.368941, 1.099089, 1.1], abs=1e-6)
    expected = sum(r_hat[k][i] * _ntr(LOGITS[k][i], TARGETS[k][i], i) for k in range(2) for i in range(3)) / 6
    assert _loss("db") == pytest.approx(expected, rel=1e-6)
    other = {"alpha": 0.2, "beta": 4.0, "mu": 0.5, "kappa": 0.1, "lam": 3.0, "gamma": 0.0}
    expected = (
        sum(
            _r_hat(k, i, alpha=0.2, beta=4.0, mu=0.5) * _ntr(LOGITS[k][i], TARGETS[k][i], i, 0.1, 3.0, 0.0)
            for k in range(2)
            for i in range(3)
        )
        / 6
    )
    assert _loss("db", **other) == pytest.approx(expected, rel=1e-6)


def test_cb_ntr_by_hand() -> None:
    weights = _cb_weights(0.9999)
    assert _loss("cb-ntr") == pytest.approx(_mean(lambda z, y, i: weights[i] * _ntr(z, y, i)), rel=1e-6)


def test_asymmetric_by_hand() -> None:
    def asl(z: float, y: int, gamma_pos: float = 0.0, gamma_neg: float = 4.0, m: float = 0.05) -> float:
        p = _sigmoid(z)
        if y:
            return -((1 - p) ** gamma_pos) * math.log(p)
        p_m = max(p - m, 0.0)
        return -(p_m**gamma_neg) * math.log(1 - p_m)

    # The negative at z = -2.5 has p = 0.0759; shifted by 0.05 it keeps p_m = 0.0259 and costs 0.0259^4 * 0.0262.
    assert asl(-2.5, 0) == pytest.approx(0.025860**4 * -math.log(1 - 0.025860), rel=1e-3)
    assert _loss("asl") == pytest.approx(_mean(lambda z, y, i: asl(z, y)), rel=1e-9)
    expected = _mean(lambda z, y, i: asl(z, y, 1.0, 2.0, 0.2))
    assert _loss("asl", gamma_pos=1.0, gamma_neg=2.0, margin=0.2) == pytest.approx(expected, rel=1e-9)
    # A margin above every negative's probability leaves only the positives.
    positives = sum(-math.log(_sigmoid(z)) for z in (1.5, 0.2, 2.0)) / 6
    assert _loss("asl", margin=0.9) == pytest.approx(positives, rel=1e-9)


def test_text_without_labels_takes_the_smoothing_limit() -> None:
    loss_fn = build_multilabel_loss("db", label_counts=COUNTS, num_texts=N)
    targets = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    weights = loss_fn.smoothed_weights(targets)
    assert weights[0].tolist() == pytest.approx([1.1, 1.1, 1.1])
    assert weights[1].tolist() == pytest.approx([0.1 + _sigmoid(10 * (r - 0.3)) for r in (0.2, 1.0, 5.0)])
    flat = build_multilabel_loss("db", label_counts=COUNTS, num_texts=N, beta=0.0).smoothed_weights(targets)
    assert flat.flatten().tolist() == pytest.approx([0.6] * 6)
    logits = torch.tensor([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]], requires_grad=True)
    loss = loss_fn(logits, targets)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


# ---- properties --------------------------------------------------------------------------------------------------


@st.composite
def _batches(draw: st.DrawFn, low: float = -30.0, high: float = 30.0) -> tuple[np.ndarray, np.ndarray, list[int], int]:
    """Logits, 0/1 targets, positives per label and a number of training texts that fits them."""
    n = draw(st.integers(1, 4))
    k = draw(st.integers(1, 4))
    values = st.floats(low, high, allow_nan=False, allow_infinity=False)
    logits = np.array(draw(st.lists(values, min_size=n * k, max_size=n * k))).reshape(n, k)
    targets = np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n * k, max_size=n * k))).reshape(n, k)
    counts = draw(st.lists(st.integers(1, 500), min_size=k, max_size=k))
    num_texts = max(counts) + draw(st.integers(1, 1000))
    return logits, targets, counts, num_texts


def _call(name: str, batch: tuple, dtype: torch.dtype = torch.float64, **params: float) -> torch.Tensor:
    logits, targets, counts, num_texts = batch
    loss_fn = build_multilabel_loss(name, label_counts=counts, num_texts=num_texts, **params)
    return loss_fn(torch.tensor(logits, dtype=dtype), torch.tensor(targets, dtype=dtype))


PROPERTY = settings(max_examples=40, deadline=None)


@PROPERTY
@given(_batches())
def test_bce_is_torch_bce(batch: tuple) -> None:
    logits, targets = torch.tensor(batch[0]), torch.tensor(batch[1])
    expected = F.binary_cross_entropy_with_logits(logits, targets)
    # abs: torch's own value at a single logit of -28 (target 0) is 1.3e-15 off log(1 + e^-28) = 6.9144e-13.
    assert _call("bce", batch).item() == pytest.approx(expected.item(), rel=1e-12, abs=1e-14)


@PROPERTY
@given(_batches(), st.floats(0.0, 5.0))
def test_special_cases_reduce_to_bce_and_focal(batch: tuple, gamma: float) -> None:
    bce = _call("bce", batch).item()
    focal = _call("focal", batch, gamma=gamma).item()

    def close(value: torch.Tensor, expected: float) -> bool:
        return value.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)

    assert close(_call("focal", batch, gamma=0.0), bce)
    assert close(_call("focal", batch, gamma=0.0, alpha=0.5), bce / 2)
    assert close(_call("asl", batch, gamma_pos=0.0, gamma_neg=0.0, margin=0.0), bce)
    assert close(_call("asl", batch, gamma_pos=gamma, gamma_neg=gamma, margin=0.0), focal)
    assert close(_call("ntr-focal", batch, kappa=0.0, lam=1.0, gamma=0.0), bce)
    assert close(_call("ntr-focal", batch, kappa=0.0, lam=1.0, gamma=gamma), focal)
    # beta = 0: every effective number is 1, so the class-balanced weights are all 1.
    assert close(_call("cb", batch, beta=0.0), bce)
    assert close(_call("cb-focal", batch, beta=0.0, gamma=gamma), focal)
    assert close(_call("cb-ntr", batch, beta=0.0, kappa=0.0, lam=1.0, gamma=gamma), focal)
    # beta = 0 makes the smoothed re-balancing weight the constant alpha + 1/2.
    assert close(_call("db", batch, alpha=0.5, beta=0.0, kappa=0.0, lam=1.0, gamma=gamma), focal)
    assert close(_call("cb-focal", batch, gamma=0.0), _call("cb", batch).item())


@PROPERTY
@given(_batches())
def test_rebalancing_weights_of_a_text_positives_sum_to_one(batch: tuple) -> None:
    _, targets, counts, _ = batch
    y = torch.tensor(targets)
    r = rebalancing_weights(y, torch.tensor(counts, dtype=torch.float64))
    labelled = y.sum(dim=1) > 0
    assert torch.isinf(r[~labelled]).all()
    sums = (r * y).sum(dim=1)[labelled]
    assert torch.allclose(sums, torch.ones_like(sums))
    single = y.sum(dim=1) == 1
    assert torch.allclose(r[single][y[single] == 1], torch.ones(int(single.sum()), dtype=torch.float64))
    # Equal counts: every label of a text weighs 1 / (its number of labels).
    equal = rebalancing_weights(y, torch.full((len(counts),), 7.0, dtype=torch.float64))
    assert torch.allclose(equal[labelled], (1 / y.sum(dim=1, keepdim=True)[labelled]).expand(-1, len(counts)))


@PROPERTY
@given(_batches(), st.sampled_from([torch.float32, torch.float64]))
def test_every_loss_is_finite_non_negative_and_differentiable(batch: tuple, dtype: torch.dtype) -> None:
    logits, targets, counts, num_texts = batch
    for name in MULTILABEL_LOSSES:
        z = torch.tensor(logits, dtype=dtype, requires_grad=True)
        loss_fn = build_multilabel_loss(name, label_counts=counts, num_texts=num_texts)
        loss = loss_fn(z, torch.tensor(targets, dtype=dtype))
        assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() >= 0, name
        loss.backward()
        assert torch.isfinite(z.grad).all(), name


@PROPERTY
@given(_batches(), st.data())
def test_raising_a_positive_logit_lowers_every_loss(batch: tuple, data: st.DataObject) -> None:
    logits, targets, counts, num_texts = batch
    positives = np.argwhere(targets == 1)
    if not len(positives):
        targets = targets.copy()
        targets[0, 0] = 1.0
        positives = np.array([[0, 0]])
    k, i = positives[data.draw(st.integers(0, len(positives) - 1))]
    raised = logits.copy()
    raised[k, i] += data.draw(st.floats(0.5, 5.0))
    for name in MULTILABEL_LOSSES:
        z = torch.tensor(logits, requires_grad=True)
        loss_fn = build_multilabel_loss(name, label_counts=counts, num_texts=num_texts)
        loss = loss_fn(z, torch.tensor(targets))
        loss.backward()
        assert z.grad[k, i] < 0, name
        after = loss_fn(torch.tensor(raised), torch.tensor(targets))
        # Far above zero a positive's loss is below float64 resolution of the mean: no change is then visible.
        assert after < loss if logits[k, i] <= 5 else after <= loss, name
        # Lowering a negative's logit never costs more.
        assert (z.grad[torch.tensor(targets) == 0] >= 0).all(), name


# ---- registry, counts and checks ---------------------------------------------------------------------------------


def test_registry_names_and_published_defaults() -> None:
    assert list(MULTILABEL_LOSSES) == ["bce", "focal", "cb", "cb-focal", "ntr-focal", "db", "cb-ntr", "asl"]
    assert multilabel_loss_params("bce") == {}
    assert multilabel_loss_params("focal") == {"gamma": 2.0, "alpha": None}
    assert multilabel_loss_params("cb") == {"beta": 0.9999}
    assert multilabel_loss_params("cb-focal") == {"beta": 0.9999, "gamma": 2.0}
    assert multilabel_loss_params("ntr-focal") == {"kappa": 0.05, "lam": 2.0, "gamma": 2.0}
    assert multilabel_loss_params("db") == {
        "alpha": 0.1,
        "beta": 10.0,
        "mu": 0.3,
        "kappa": 0.05,
        "lam": 2.0,
        "gamma": 2.0,
    }
    assert multilabel_loss_params("cb-ntr") == {"beta": 0.9999, "kappa": 0.05, "lam": 2.0, "gamma": 2.0}
    assert multilabel_loss_params("asl") == {"gamma_pos": 0.0, "gamma_neg": 4.0, "margin": 0.05}
    assert multilabel_loss_needs("bce") == ()
    assert multilabel_loss_needs("cb") == ("label_counts",)
    assert multilabel_loss_needs("db") == ("label_counts", "num_texts")


@pytest.mark.parametrize("name", ["bce", "focal", "asl"])
def test_losses_without_counts_need_none(name: str) -> None:
    loss_fn = build_multilabel_loss(name)
    logits, targets = torch.tensor(LOGITS), torch.tensor(TARGETS, dtype=torch.float32)
    assert loss_fn(logits, targets).item() == pytest.approx(_loss(name), rel=1e-6)


@pytest.mark.parametrize("name", ["cb", "cb-focal", "ntr-focal", "db", "cb-ntr"])
def test_missing_counts_are_refused(name: str) -> None:
    with pytest.raises(TailTuneError, match="needs the training counts"):
        build_multilabel_loss(name)
    if "num_texts" in multilabel_loss_needs(name):
        with pytest.raises(TailTuneError, match="needs the training counts"):
            build_multilabel_loss(name, label_counts=COUNTS)


@pytest.mark.parametrize("name", list(MULTILABEL_LOSSES))
def test_bad_counts_are_refused(name: str) -> None:
    with pytest.raises(TailTuneError, match="no training example"):
        build_multilabel_loss(name, label_counts=[10, 0, 1], num_texts=N)
    with pytest.raises(TailTuneError, match="more than the 20 training texts"):
        build_multilabel_loss(name, label_counts=[10, 30, 1], num_texts=20)


@pytest.mark.parametrize("name", ["ntr-focal", "db", "cb-ntr"])
def test_a_label_on_every_text_takes_the_prior_of_all_but_half_a_text(name: str) -> None:
    """log(1/p - 1) is -inf at p = 1: such a label's NTR bias is kappa * log(0.5 / 19.5), the others' as before."""
    loss = build_multilabel_loss(name, label_counts=[10, 20, 1], num_texts=20)
    kappa = loss.kappa
    expected = [kappa * math.log(20 / 10 - 1), kappa * math.log(0.5 / 19.5), kappa * math.log(20 / 1 - 1)]
    assert loss.nu.tolist() == pytest.approx(expected, rel=1e-6)
    logits = torch.tensor([[3.0, 5.0, -2.0], [-1.0, 4.0, 0.5]], requires_grad=True)
    value = loss(logits, torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def test_unknown_names_and_parameters() -> None:
    with pytest.raises(TailTuneError, match="unknown multi-label loss 'ce'.*cb-ntr"):
        build_multilabel_loss("ce")
    with pytest.raises(TailTuneError, match="'lambda'.*kappa, lam, gamma"):
        build_multilabel_loss("ntr-focal", label_counts=COUNTS, num_texts=N, **{"lambda": 2.0})
    with pytest.raises(TailTuneError, match="valid parameters: none"):
        build_multilabel_loss("bce", gamma=1.0)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("focal", {"gamma": -1.0}, "gamma must be >= 0"),
        ("focal", {"alpha": 1.5}, "alpha must be <= 1"),
        ("cb", {"beta": 1.0}, "beta must be < 1"),
        ("db", {"lam": 0.0}, "lam must be > 0"),
        ("db", {"kappa": -0.1}, "kappa must be >= 0"),
        ("db", {"mu": float("inf")}, "mu must be a finite number"),
        ("asl", {"margin": 1.0}, "margin must be < 1"),
        ("asl", {"gamma_neg": "four"}, "gamma_neg must be a number"),
    ],
)
def test_bad_parameter_values(name: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(TailTuneError, match=message):
        build_multilabel_loss(name, label_counts=COUNTS, num_texts=N, **params)


def test_numeric_strings_are_accepted() -> None:
    assert build_multilabel_loss("asl", gamma_neg="2").gamma_neg == 2.0


def test_shapes_and_targets_are_checked() -> None:
    loss_fn = build_multilabel_loss("db", label_counts=COUNTS, num_texts=N)
    with pytest.raises(ValueError, match=r"\[n, 3\]"):
        loss_fn(torch.zeros(2, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="targets have shape"):
        loss_fn(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="0 or 1"):
        loss_fn(torch.zeros(2, 3), torch.full((2, 3), 0.5))


@pytest.mark.parametrize("name", ["cb", "db", "cb-ntr"])
def test_buffers_follow_the_module(name: str) -> None:
    loss_fn = build_multilabel_loss(name, label_counts=COUNTS, num_texts=N).to("meta")
    assert list(loss_fn.buffers()) and all(b.device.type == "meta" for b in loss_fn.buffers())


@pytest.mark.parametrize("name", list(MULTILABEL_LOSSES))
def test_half_precision_logits(name: str) -> None:
    loss_fn = build_multilabel_loss(name, label_counts=COUNTS, num_texts=N)
    targets = torch.tensor(TARGETS, dtype=torch.bfloat16)
    bf16 = torch.tensor(LOGITS, dtype=torch.bfloat16, requires_grad=True)
    loss = loss_fn(bf16, targets)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(_loss(name), rel=2e-2)
    loss.backward()
    assert bf16.grad is not None and bf16.grad.dtype == torch.bfloat16 and torch.isfinite(bf16.grad).all()
