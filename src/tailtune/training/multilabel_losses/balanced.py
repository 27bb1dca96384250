"""Multi-label losses with negative-tolerant regularisation: NTR focal, distribution-balanced and CB-NTR."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tailtune.training.multilabel_losses.base import (
    MultiLabelLoss,
    _negative_term,
    _param,
    _positive_term,
    rebalancing_weights,
)
from tailtune.training.weights import class_weights


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
        label_counts: Training texts carrying each label, at most ``num_texts`` (a label on every text takes the
            prior ``(N - 1/2) / N``, where the formula's bias would be infinite).
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
        # log(1/p - 1) is -inf for a label on every text (the readers warn of one): it is given the prior of
        # N - 1/2 texts, as if half a text lacked it, so that its bias stays finite and the others' are unchanged.
        prior = self._counts.clamp(max=self.num_texts - 0.5) / self.num_texts
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
        label_counts: Training texts carrying each label, at most ``num_texts`` (see :class:`NTRFocalLoss`).
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
        label_counts: Training texts carrying each label, at most ``num_texts`` (see :class:`NTRFocalLoss`).
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
