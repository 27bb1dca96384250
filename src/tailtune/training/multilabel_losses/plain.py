"""Multi-label losses that weigh labels, not texts: BCE, focal, class-balanced (and class-balanced focal) and
asymmetric loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tailtune.errors import TailTuneError
from tailtune.training.multilabel_losses.base import (
    MultiLabelLoss,
    _negative_term,
    _param,
    _positive_term,
    _softplus,
)
from tailtune.training.weights import class_weights


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
