"""Losses for multi-label classification on long-tailed data, and a registry to build them by name.

Every loss is an ``nn.Module`` whose ``forward(logits, targets)`` takes logits of shape ``[n, K]`` and a 0/1
target matrix of the same shape (``targets[k, i] = 1`` when text ``k`` carries label ``i``) and returns the
scalar mean of the per-entry losses over all ``n * K`` entries, as ``torch.nn.BCEWithLogitsLoss`` does. Losses
that depend on the label distribution take the training counts: ``label_counts[i]``, the training texts that
carry label ``i``, and ``num_texts``, the number of training texts ``N`` (texts without any label included).

Notation: ``z`` is a logit, ``p = sigmoid(z)``, ``y`` the 0/1 target, ``n_i`` the count of label ``i``.
Every loss is written from its paper's formula with that paper's defaults; each docstring names them. Losses are
computed in at least float32 (half-precision logits are upcast) and in the stable forms
``-log p = softplus(-z)``, ``-log(1 - p) = softplus(z)``, ``(1 - p)^gamma = exp(-gamma * softplus(z))``, so
they stay finite, with finite gradients, for any finite logit. Count-dependent tensors are buffers, so
``.to(device)`` moves them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tailtune.errors import TailTuneError
from tailtune.training.losses import _number
from tailtune.training.weights import class_weights, counts_tensor


def _param(
    loss: str, name: str, value: Any, *, minimum: float | None = None, above: float | None = None,
    below: float | None = None,
) -> float:  # fmt: skip
    """A loss parameter as a finite float within its range; a one-line TailTuneError naming it otherwise."""
    number = _number(f"{loss} loss parameter {name}", value)
    what = f"{loss} loss parameter {name} must be"
    if math.isinf(number):
        raise TailTuneError(f"{what} a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise TailTuneError(f"{what} >= {minimum:g}, got {number:g}")
    if above is not None and number <= above:
        raise TailTuneError(f"{what} > {above:g}, got {number:g}")
    if below is not None and number >= below:
        raise TailTuneError(f"{what} < {below:g}, got {number:g}")
    return number


def _softplus(z: torch.Tensor) -> torch.Tensor:
    """``log(1 + exp(z))`` to full precision (``F.softplus`` returns ``z`` itself above 20)."""
    return torch.logaddexp(torch.zeros_like(z), z)


def _positive_term(z: torch.Tensor, gamma: float) -> torch.Tensor:
    """``-(1 - p)^gamma * log p``, the focal loss of a positive entry (``gamma = 0``: ``-log p``)."""
    nll = _softplus(-z)
    return nll if gamma == 0 else torch.exp(-gamma * _softplus(z)) * nll


def _negative_term(z: torch.Tensor, gamma: float) -> torch.Tensor:
    """``-p^gamma * log(1 - p)``, the focal loss of a negative entry (``gamma = 0``: ``-log(1 - p)``)."""
    nll = _softplus(z)
    return nll if gamma == 0 else torch.exp(-gamma * _softplus(-z)) * nll


def rebalancing_weights(targets: torch.Tensor, label_counts: torch.Tensor) -> torch.Tensor:
    """The raw re-balancing weights ``r`` of the distribution-balanced loss (Wu et al. 2020, Sec. 3.2).

    ``r[k, i] = P^C_i / P^I_k`` with ``P^C_i = (1/K) * 1/n_i`` (how often class-aware sampling draws text ``k``
    for label ``i``) and ``P^I_k = (1/K) * sum_{j: y[k, j] = 1} 1/n_j`` (how often it draws text ``k`` at all), so
    ``r[k, i] = (1/n_i) / sum_{j positive in k} 1/n_j``. The weights of a text's positive labels sum to 1, and a
    text with a single label gets ``r = 1`` at that label. A text with no label is never drawn (``P^I = 0``): its
    ``r`` is infinite, which the smoothing maps to its upper limit.

    Args:
        targets: 0/1 targets, shape ``[n, K]``.
        label_counts: Training positives per label, shape ``[K]``, all ``>= 1``.

    Returns:
        ``r`` with the dtype of ``targets``, shape ``[n, K]``; ``inf`` on the rows of texts with no label.
    """
    inverse = 1.0 / label_counts.to(targets.dtype)
    instance = targets @ inverse  # sum of 1/n_j over each text's positive labels
    return inverse[None, :] / instance[:, None]


class MultiLabelLoss(nn.Module):
    """Shared set-up: the training counts (when a loss needs them), shape and target checks, dtype handling.

    Args:
        label_counts: Training texts carrying each label, indexed by label id; defines ``K`` when given.
        num_texts: Number of training texts ``N`` (including texts without any label).
    """

    #: Which counts the loss needs: ``()``, ``("label_counts",)`` or ``("label_counts", "num_texts")``.
    needs: tuple[str, ...] = ()
    #: The registry name, used in messages.
    name = "multi-label"

    def __init__(self, label_counts: Sequence[int] | None = None, num_texts: int | None = None) -> None:
        super().__init__()
        for needed, value in (("label_counts", label_counts), ("num_texts", num_texts)):
            if needed in self.needs and value is None:
                raise TailTuneError(
                    f"loss {self.name!r} needs the training counts: the positives per label and the number of "
                    "training texts"
                )
        # float64 counts to derive buffers from; kept off the module's state.
        self._counts = None if label_counts is None else counts_tensor(label_counts)
        self.num_labels = None if self._counts is None else len(self._counts)
        self.num_texts = None if num_texts is None else self._check_num_texts(num_texts)

    def _check_num_texts(self, num_texts: Any) -> int:
        number = _number("number of training texts", num_texts)
        if number != int(number) or number < 1:
            raise TailTuneError(f"the number of training texts must be a whole number >= 1, got {num_texts!r}")
        if self._counts is not None and self._counts.max() > number:
            label = int(self._counts.argmax())
            raise TailTuneError(
                f"label {label} has {int(self._counts[label])} training texts, more than the {int(number)} "
                "training texts in all; pass the count of texts, not of label assignments"
            )
        return int(number)

    def _prepare(self, logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if logits.ndim != 2 or (self.num_labels is not None and logits.shape[1] != self.num_labels):
            expected = "[n, K]" if self.num_labels is None else f"[n, {self.num_labels}]"
            raise ValueError(f"expected logits of shape {expected}, got {tuple(logits.shape)}")
        if targets.shape != logits.shape:
            raise ValueError(f"targets have shape {tuple(targets.shape)}, logits {tuple(logits.shape)}: expected equal")
        # Sigmoid and log in bf16/fp16 lose too much precision for a loss; float64 stays float64.
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        targets = targets.detach().to(logits.dtype)
        if not ((targets == 0) | (targets == 1)).all():
            raise ValueError("targets must be 0 or 1: one column per label, 1 where the text carries the label")
        return logits, targets


class BCELoss(MultiLabelLoss):
    """Binary cross-entropy on each label.

    ``L = y * (-log p) + (1 - y) * (-log(1 - p))``, averaged over labels and texts; equal to
    ``torch.nn.functional.binary_cross_entropy_with_logits``. Used for multi-label text as in Huang et al.
    (2021, "Balancing Methods for Multi-label Text Classification with Long-Tailed Class Distribution", Sec. 3).
    """

    name = "bce"

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z, y = self._prepare(logits, targets)
        return (y * _softplus(-z) + (1 - y) * _softplus(z)).mean()


class FocalLoss(MultiLabelLoss):
    """Binary focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection", Eqs. 4-5).

    ``L = -alpha_t * (1 - p_t)^gamma * log p_t`` with ``p_t = p`` and ``alpha_t = alpha`` for a positive,
    ``p_t = 1 - p`` and ``alpha_t = 1 - alpha`` for a negative, averaged over labels and texts. ``gamma = 2`` is
    the paper's default. ``alpha = None`` (the default here) leaves the terms unweighted, as Huang et al. (2021)
    use focal loss for multi-label text; Lin et al. pair ``gamma = 2`` with ``alpha = 0.25`` for detection.

    Args:
        gamma: Focusing parameter, ``>= 0``; 0 with no ``alpha`` is BCE.
        alpha: Weight of positives in ``[0, 1]`` (negatives get ``1 - alpha``), or None for no weighting.
    """

    name = "focal"

    def __init__(
        self, label_counts: Sequence[int] | None = None, num_texts: int | None = None, *, gamma: float = 2.0,
        alpha: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(label_counts, num_texts)
        self.gamma = _param(self.name, "gamma", gamma, minimum=0)
        self.alpha = None if alpha is None else _param(self.name, "alpha", alpha, minimum=0)
        if self.alpha is not None and self.alpha > 1:
            raise TailTuneError(f"focal loss parameter alpha must be <= 1, got {self.alpha:g}")

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z, y = self._prepare(logits, targets)
        positive, negative = _positive_term(z, self.gamma), _negative_term(z, self.gamma)
        if self.alpha is not None:
            positive, negative = self.alpha * positive, (1 - self.alpha) * negative
        return (y * positive + (1 - y) * negative).mean()


class ClassBalancedLoss(MultiLabelLoss):
    """Class-balanced binary cross-entropy (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of
    Samples", Sec. 4, class-balanced sigmoid cross-entropy).

    Each label's loss, on its positives and its negatives alike, is weighted by the inverse effective number of
    its training texts, ``w_i = (1 - beta) / (1 - beta^{n_i})``, and the weights are normalised to sum to ``K``
    as Cui et al. do, so the loss keeps the scale of BCE: ``L = w_i * BCE(z, y)``, averaged over labels and texts.
    ``beta = 0.9999`` is the largest of the values Cui et al. study (0.9, 0.99, 0.999, 0.9999) and the one for the
    heaviest imbalance; ``beta = 0`` gives BCE and ``beta -> 1`` inverse-frequency weights.

    Args:
        label_counts: Training texts carrying each label.
        beta: Effective-number hyperparameter, in ``[0, 1)``.
    """

    name = "cb"
    needs = ("label_counts",)
    label_weight: torch.Tensor

    def __init__(
        self, label_counts: Sequence[int] | None = None, num_texts: int | None = None, *, beta: float = 0.9999
    ) -> None:
        super().__init__(label_counts, num_texts)
        self.beta = _param(self.name, "beta", beta, minimum=0, below=1)
        counts = [int(c) for c in self._counts.tolist()]
        self.register_buffer("label_weight", class_weights(counts, "effective", beta=self.beta))

    def _terms(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y * _softplus(-z) + (1 - y) * _softplus(z)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z, y = self._prepare(logits, targets)
        return (self.label_weight.to(z.dtype) * self._terms(z, y)).mean()


class ClassBalancedFocalLoss(ClassBalancedLoss):
    """Class-balanced focal loss (Cui et al. 2019, Sec. 4; the "CB" loss of Huang et al. 2021, Sec. 3).

    ``L = w_i * FL(z, y)`` with the class-balanced weights ``w_i`` of :class:`ClassBalancedLoss` (sum ``K``) and
    the unweighted binary focal loss of :class:`FocalLoss`, averaged over labels and texts.

    Args:
        label_counts: Training texts carrying each label.
        beta: Effective-number hyperparameter, in ``[0, 1)``.
        gamma: Focusing parameter, ``>= 0``; 0 gives :class:`ClassBalancedLoss`.
    """

    name = "cb-focal"

    def __init__(
        self, label_counts: Sequence[int] | None = None, num_texts: int | None = None, *, beta: float = 0.9999,
        gamma: float = 2.0,
    ) -> None:  # fmt: skip
        super().__init__(label_counts, num_texts, beta=beta)
        self.gamma = _param(self.name, "gamma", gamma, minimum=0)

    def _terms(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y * _positive_term(z, self.gamma) + (1 - y) * _negative_term(z, self.gamma)


class NTRFocalLoss(MultiLabelLoss):
    """Focal loss with negative-tolerant regularisation (NTR; Wu et al. 2020, "Distribution-Balanced Loss for
    Multi-Label Classification in Long-Tailed Datasets", Sec. 3.3; the "NTR-FL" of Huang et al. 2021).

    Each label gets a bias ``nu_i = kappa * log(1/p_i - 1)`` from its prior ``p_i = n_i / N``, i.e. ``-kappa``
    times the prior log-odds (the constant logit BCE would learn for the label). The loss sees the shifted logit
    ``z - nu_i``, and negatives are scaled by ``lambda``::

        positive: -(1 - q)^gamma * log q            with q = sigmoid(z - nu_i)
                  = (1 - q)^gamma * log(1 + exp(-(z - nu_i)))
        negative: -(1/lambda) * q^gamma * log(1 - q) with q = sigmoid(lambda * (z - nu_i))
                  = (1/lambda) * q^gamma * log(1 + exp(lambda * (z - nu_i)))

    averaged over labels and texts. A rare label (``p_i < 1/2``) has ``nu_i > 0``: at a zero logit it already
    looks negative, and the ``lambda``-scaled negative term stops pushing its logit down once it is below the
    bias, so the many negatives of a tail label do not over-suppress it. ``kappa = 0, lambda = 1`` gives the focal
    loss, and with ``gamma = 0`` BCE. Defaults ``kappa = 0.05``, ``lambda = 2``, ``gamma = 2``: those of Wu et al.
    and of Huang et al.'s text setting.

    Args:
        label_counts: Training texts carrying each label; each must be below ``num_texts``.
        num_texts: Number of training texts ``N``.
        kappa: Scale of the prior bias, ``>= 0``.
        lam: ``lambda``, the scale of the negatives' logits, ``> 0``.
        gamma: Focusing parameter, ``>= 0``.
    """

    name = "ntr-focal"
    needs = ("label_counts", "num_texts")
    nu: torch.Tensor

    def __init__(
        self, label_counts: Sequence[int] | None = None, num_texts: int | None = None, *, kappa: float = 0.05,
        lam: float = 2.0, gamma: float = 2.0,
    ) -> None:  # fmt: skip
        super().__init__(label_counts, num_texts)
        self.kappa = _param(self.name, "kappa", kappa, minimum=0)
        self.lam = _param(self.name, "lam", lam, above=0)
        self.gamma = _param(self.name, "gamma", gamma, minimum=0)
        everywhere = (self._counts >= self.num_texts).nonzero()
        if len(everywhere):
            label = int(everywhere[0])
            # log(1/p - 1) is -inf when a label is on every text: no negative to tolerate, no finite bias.
            raise TailTuneError(
                f"label {label} is carried by all {self.num_texts} training texts; negative-tolerant "
                f"regularisation (loss {self.name!r}) needs at least one training text without each label"
            )
        prior = self._counts / self.num_texts
        self.register_buffer("nu", (self.kappa * torch.log(1.0 / prior - 1.0)).to(torch.float32))

    def _ntr_terms(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shifted = z - self.nu.to(z.dtype)
        negative = _negative_term(self.lam * shifted, self.gamma) / self.lam
        return y * _positive_term(shifted, self.gamma) + (1 - y) * negative

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z, y = self._prepare(logits, targets)
        return self._ntr_terms(z, y).mean()


class DistributionBalancedLoss(NTRFocalLoss):
    """Distribution-balanced loss (Wu et al. 2020, Sec. 3.2-3.4; the "DB" loss of Huang et al. 2021, Sec. 3).

    The NTR focal loss of :class:`NTRFocalLoss`, each entry weighted by the smoothed re-balancing weight::

        r[k, i]     = P^C_i / P^I_k = (1/n_i) / sum_{j positive in text k} (1/n_j)   (rebalancing_weights)
        r_hat[k, i] = alpha + sigmoid(beta * (r[k, i] - mu))
        L[k, i]     = r_hat[k, i] * NTR-FL(z[k, i], y[k, i])

    averaged over labels and texts. ``r`` undoes the over-sampling that label co-occurrence causes: a text
    carrying a head label beside a tail label counts less for the head label. The weight applies to every label
    of the text, positive or negative. A text with no label (``P^I = 0``, ``r`` infinite) takes the limit
    ``r_hat = alpha + 1`` (``alpha + 1/2`` when ``beta = 0``). Defaults: smoothing ``alpha = 0.1``,
    ``beta = 10``, ``mu = 0.3``; NTR ``kappa = 0.05``, ``lambda = 2``; ``gamma = 2``: Huang et al.'s text
    setting, after Wu et al.

    Args:
        label_counts: Training texts carrying each label; each must be below ``num_texts``.
        num_texts: Number of training texts ``N``.
        alpha: Smoothing floor, ``>= 0``.
        beta: Smoothing steepness, ``>= 0``; 0 makes ``r_hat`` the constant ``alpha + 1/2``.
        mu: Smoothing centre.
        kappa: Scale of the NTR prior bias, ``>= 0``.
        lam: NTR ``lambda``, the scale of the negatives' logits, ``> 0``.
        gamma: Focusing parameter, ``>= 0``.
    """

    name = "db"
    inverse_counts: torch.Tensor

    def __init__(
        self, label_counts: Sequence[int] | None = None, num_texts: int | None = None, *, alpha: float = 0.1,
        beta: float = 10.0, mu: float = 0.3, kappa: float = 0.05, lam: float = 2.0, gamma: float = 2.0,
    ) -> None:  # fmt: skip
        super().__init__(label_counts, num_texts, kappa=kappa, lam=lam, gamma=gamma)
        self.alpha = _param(self.name, "alpha", alpha, minimum=0)
        self.beta = _param(self.name, "beta", beta, minimum=0)
        self.mu = _param(self.name, "mu", mu)
        self.register_buffer("label_counts", self._counts.to(torch.float32))

    def smoothed_weights(self, targets: torch.Tensor) -> torch.Tensor:
        """``r_hat`` for 0/1 ``targets`` of shape ``[n, K]`` (no gradient flows through it)."""
        r = rebalancing_weights(targets, self.label_counts)
        labelled = torch.isfinite(r)
        # Smooth a finite stand-in where r is infinite (no 0 * inf when beta = 0); the limit replaces it there.
        smooth = self.alpha + torch.sigmoid(self.beta * (torch.where(labelled, r, 0.0) - self.mu))
        limit = self.alpha + (1.0 if self.beta > 0 else 0.5)
        return torch.where(labelled, smooth, limit)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z, y = self._prepare(logits, targets)
        return (self.smoothed_weights(y) * self._ntr_terms(z, y)).mean()


class ClassBalancedNTRLoss(NTRFocalLoss):
    """Class-balanced loss with negative-tolerant regularisation (the "CB-NTR" loss of Huang et al. 2021, Sec. 3).

    ``L = w_i * NTR-FL(z, y)``: the NTR focal loss of :class:`NTRFocalLoss` weighted per label by the
    class-balanced weights ``w_i = (1 - beta) / (1 - beta^{n_i})`` of :class:`ClassBalancedLoss` (normalised to
    sum ``K``) in place of the distribution-balanced ``r_hat``, averaged over labels and texts. Defaults
    ``beta = 0.9999``, ``kappa = 0.05``, ``lambda = 2``, ``gamma = 2``.

    Args:
        label_counts: Training texts carrying each label; each must be below ``num_texts``.
        num_texts: Number of training texts ``N``.
        beta: Effective-number hyperparameter, in ``[0, 1)``.
        kappa: Scale of the NTR prior bias, ``>= 0``.
        lam: NTR ``lambda``, the scale of the negatives' logits, ``> 0``.
        gamma: Focusing parameter, ``>= 0``.
    """

    name = "cb-ntr"
    label_weight: torch.Tensor

    def __init__(
        self, label_counts: Sequence[int] | None = None, num_texts: int | None = None, *, beta: float = 0.9999,
        kappa: float = 0.05, lam: float = 2.0, gamma: float = 2.0,
    ) -> None:  # fmt: skip
        super().__init__(label_counts, num_texts, kappa=kappa, lam=lam, gamma=gamma)
        self.beta = _param(self.name, "beta", beta, minimum=0, below=1)
        counts = [int(c) for c in self._counts.tolist()]
        self.register_buffer("label_weight", class_weights(counts, "effective", beta=self.beta))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z, y = self._prepare(logits, targets)
        return (self.label_weight.to(z.dtype) * self._ntr_terms(z, y)).mean()


class AsymmetricLoss(MultiLabelLoss):
    """Asymmetric loss (Ridnik et al. 2021, "Asymmetric Loss For Multi-Label Classification", ICCV, Sec. 3).

    Positives and negatives get their own focusing, and negatives a probability margin ``m`` that discards easy
    ones outright::

        positive: -(1 - p)^gamma_pos * log p
        negative: -p_m^gamma_neg * log(1 - p_m)    with p_m = max(p - m, 0)

    averaged over labels and texts (the paper sums; the mean keeps the scale of BCE). A negative with
    ``p <= m`` costs nothing. Defaults ``gamma_pos = 0``, ``gamma_neg = 4``, ``m = 0.05``: the paper's.
    ``gamma_pos = gamma_neg = 0, m = 0`` gives BCE; ``gamma_pos = gamma_neg = gamma, m = 0`` the focal loss.

    Args:
        gamma_pos: Focusing of positives, ``>= 0``.
        gamma_neg: Focusing of negatives, ``>= 0``.
        margin: Probability margin ``m`` of negatives, in ``[0, 1)``.
    """

    name = "asl"

    def __init__(
        self, label_counts: Sequence[int] | None = None, num_texts: int | None = None, *, gamma_pos: float = 0.0,
        gamma_neg: float = 4.0, margin: float = 0.05,
    ) -> None:  # fmt: skip
        super().__init__(label_counts, num_texts)
        self.gamma_pos = _param(self.name, "gamma_pos", gamma_pos, minimum=0)
        self.gamma_neg = _param(self.name, "gamma_neg", gamma_neg, minimum=0)
        self.margin = _param(self.name, "margin", margin, minimum=0, below=1)

    def _negative(self, z: torch.Tensor) -> torch.Tensor:
        if self.margin == 0:
            return _negative_term(z, self.gamma_neg)
        shifted = torch.sigmoid(z) - self.margin
        kept = shifted > 0
        # Where p <= m the term is exactly 0; the stand-in 1/2 keeps log and pow (and their gradients) finite there.
        p_m = torch.where(kept, shifted, 0.5)
        # 1 - p_m = sigmoid(-z) + m >= m > 0, computed without the cancellation of 1 - (p - m).
        term = -(p_m**self.gamma_neg) * torch.log(torch.sigmoid(-z) + self.margin)
        return torch.where(kept, term, 0.0)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z, y = self._prepare(logits, targets)
        return (y * _positive_term(z, self.gamma_pos) + (1 - y) * self._negative(z)).mean()


MULTILABEL_LOSSES: dict[str, type[MultiLabelLoss]] = {
    loss.name: loss
    for loss in (
        BCELoss,
        FocalLoss,
        ClassBalancedLoss,
        ClassBalancedFocalLoss,
        NTRFocalLoss,
        DistributionBalancedLoss,
        ClassBalancedNTRLoss,
        AsymmetricLoss,
    )
}
"""Multi-label loss classes by name. Each takes ``label_counts``, ``num_texts`` and its own keyword-only
parameters, whose defaults are the published ones."""


def _loss_class(name: str) -> type[MultiLabelLoss]:
    if name not in MULTILABEL_LOSSES:
        raise TailTuneError(
            f"unknown multi-label loss {name!r}; valid multi-label losses: {', '.join(MULTILABEL_LOSSES)}"
        )
    return MULTILABEL_LOSSES[name]


def multilabel_loss_params(name: str) -> dict[str, Any]:
    """The tunable parameters of a multi-label loss and their (published) defaults.

    Args:
        name: A name in ``MULTILABEL_LOSSES``.

    Returns:
        A dict mapping parameter name to default value, e.g. ``{"gamma": 2.0, "alpha": None}`` for ``"focal"``;
        empty for ``"bce"``.

    Raises:
        TailTuneError: If ``name`` is not a known multi-label loss.
    """
    signature = inspect.signature(_loss_class(name).__init__)
    return {p.name: p.default for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def multilabel_loss_needs(name: str) -> tuple[str, ...]:
    """Which training counts a multi-label loss needs: a subset of ``("label_counts", "num_texts")``."""
    return _loss_class(name).needs


def build_multilabel_loss(
    name: str, *, label_counts: Sequence[int] | None = None, num_texts: int | None = None, **params: Any
) -> MultiLabelLoss:
    """Build a multi-label loss by name.

    Args:
        name: A name in ``MULTILABEL_LOSSES``: ``"bce"``, ``"focal"``, ``"cb"``, ``"cb-focal"``,
            ``"ntr-focal"``, ``"db"``, ``"cb-ntr"`` or ``"asl"``.
        label_counts: Training texts carrying each label, indexed by label id (see :func:`multilabel_loss_needs`).
        num_texts: Number of training texts, texts without any label included.
        **params: The loss's own parameters (see :func:`multilabel_loss_params`); missing ones take their defaults.

    Returns:
        The loss module.

    Raises:
        TailTuneError: If the name or a parameter is unknown, a parameter value is out of range, or the loss needs
            counts that are missing or invalid (a label with no training text, or for the NTR losses a label on
            every training text).
    """
    cls = _loss_class(name)
    valid = multilabel_loss_params(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        allowed = ", ".join(valid) if valid else "none"
        raise TailTuneError(f"unknown parameter {unknown[0]!r} for loss {name!r}; valid parameters: {allowed}")
    return cls(label_counts, num_texts, **params)
