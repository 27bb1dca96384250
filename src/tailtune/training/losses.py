"""Classification losses for long-tailed data, and a registry to build them by name.

Every loss is an ``nn.Module`` whose ``forward(logits, labels)`` takes logits of shape ``[B, K]`` and
integer labels of shape ``[B]`` and returns the scalar mean loss. All of them accept an optional per-class
``weight`` (e.g. from :func:`tailtune.training.weights.class_weights`). Class-dependent tensors are registered as
buffers, so ``.to(device)`` moves them. Losses are computed in at least float32: half-precision logits
(e.g. under bf16 autocast) are upcast, and the buffers are cast to the logits' dtype.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tailtune.errors import TailTuneError
from tailtune.training.weights import counts_tensor


def _number(what: str, value: Any) -> float:
    # Values may come from a config file or the command line, so accept anything float() understands.
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number):
        raise TailTuneError(f"{what} must be a number, got {value!r}")
    return number


class _ClassLoss(nn.Module):
    """Shared set-up: class counts, optional per-class weight, and dtype handling."""

    weight: torch.Tensor | None

    def __init__(self, class_counts: Sequence[int], weight: torch.Tensor | None = None) -> None:
        super().__init__()
        # float64 counts for subclasses to derive their buffers from; kept off the module's state.
        self._counts = counts_tensor(class_counts)
        self.num_classes = len(self._counts)
        if weight is not None:
            weight = torch.as_tensor(weight).detach()
            if weight.shape != (self.num_classes,):
                shape = tuple(weight.shape)
                raise ValueError(f"weight has shape {shape}, expected ({self.num_classes},): one per class")
            weight = weight.to(torch.float32)
        self.register_buffer("weight", weight)

    def _prepare(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"expected logits of shape [B, {self.num_classes}], got {tuple(logits.shape)}")
        # Softmax and log in bf16/fp16 lose too much precision for a loss; float64 stays float64.
        return logits.to(torch.promote_types(logits.dtype, torch.float32))

    def _weight(self, dtype: torch.dtype) -> torch.Tensor | None:
        return None if self.weight is None else self.weight.to(dtype)


class CrossEntropyLoss(_ClassLoss):
    """Cross-entropy, optionally class-weighted.

    ``loss = sum_i w_{y_i} * (-log softmax(z_i)_{y_i}) / sum_i w_{y_i}``, with ``w = 1`` when ``weight`` is
    None. The weighted mean divides by the sum of the target weights, as ``torch.nn.functional.cross_entropy``
    does. With weights from the ``"effective"`` scheme this is the class-balanced loss of Cui et al. (2019).

    Args:
        class_counts: Training examples per class (defines K).
        weight: Optional per-class weights, shape ``[K]``.
    """

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self._prepare(logits)
        return F.cross_entropy(logits, labels, weight=self._weight(logits.dtype))


class FocalLoss(_ClassLoss):
    """Focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection").

    ``FL_i = -alpha_{y_i} * (1 - p_i)^gamma * log p_i``, where ``p_i = softmax(z_i)_{y_i}`` and ``alpha`` is
    ``weight`` (1 when None). The loss is the plain mean of ``FL_i`` over the batch: unlike weighted
    cross-entropy it is *not* divided by the sum of the target weights, so with ``gamma = 0`` and a weight
    it equals weighted cross-entropy times ``sum_i alpha_{y_i} / B``.

    Args:
        class_counts: Training examples per class (defines K).
        weight: Optional per-class ``alpha``, shape ``[K]``.
        gamma: Focusing parameter, ``>= 0``; 0 gives (unweighted-mean) cross-entropy.
    """

    def __init__(self, class_counts: Sequence[int], weight: torch.Tensor | None = None, *, gamma: float = 2.0) -> None:
        super().__init__(class_counts, weight)
        gamma = _number("focal loss parameter gamma", gamma)
        if gamma < 0:
            raise TailTuneError(f"focal loss parameter gamma must be >= 0, got {gamma}")
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self._prepare(logits)
        log_pt = F.log_softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)
        # Rounding can make p_t a hair above 1, and a negative base to a fractional power is NaN.
        focus = (1.0 - log_pt.exp()).clamp(min=0.0) ** self.gamma
        loss = -focus * log_pt
        weight = self._weight(logits.dtype)
        if weight is not None:
            loss = loss * weight[labels]
        return loss.mean()


class LDAMLoss(_ClassLoss):
    """Label-distribution-aware margin loss (Cao et al. 2019, "Learning Imbalanced Datasets with
    Label-Distribution-Aware Margin Loss").

    Class ``j`` gets margin ``m_j = C / n_j^(1/4)``, with ``C`` chosen so the largest margin (the rarest
    class) equals ``max_margin``. The true-class logit is lowered by its margin and all logits are scaled:
    ``loss = CE(s * (z - m_y * onehot(y)), y; weight)``, a (weighted) cross-entropy with the weighted mean of
    :class:`CrossEntropyLoss`.

    The default ``scale = 1`` follows the two-stage fine-tuning authors (ValizadehAslani et al. 2022); Cao et
    al. use ``s = 30`` with their normalised-feature classifier.

    Args:
        class_counts: Training examples per class (defines K and the margins).
        weight: Optional per-class weights, shape ``[K]``.
        max_margin: Margin of the rarest class, ``> 0``.
        scale: Logit scale ``s``, ``> 0``.
    """

    margins: torch.Tensor

    def __init__(
        self,
        class_counts: Sequence[int],
        weight: torch.Tensor | None = None,
        *,
        max_margin: float = 0.5,
        scale: float = 1.0,
    ) -> None:
        super().__init__(class_counts, weight)
        max_margin = _number("ldam loss parameter max_margin", max_margin)
        scale = _number("ldam loss parameter scale", scale)
        if max_margin <= 0:
            raise TailTuneError(f"ldam loss parameter max_margin must be > 0, got {max_margin}")
        if scale <= 0:
            raise TailTuneError(f"ldam loss parameter scale must be > 0, got {scale}")
        self.max_margin = max_margin
        self.scale = scale
        margins = self._counts**-0.25
        self.register_buffer("margins", (margins * (max_margin / margins.max())).to(torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self._prepare(logits)
        # Subtract the margin at the true class only; a one-hot product keeps it differentiable.
        onehot = F.one_hot(labels, self.num_classes).to(logits.dtype)
        adjusted = logits - onehot * self.margins.to(logits.dtype)[labels][:, None]
        return F.cross_entropy(self.scale * adjusted, labels, weight=self._weight(logits.dtype))


class LogitAdjustedLoss(_ClassLoss):
    """Logit-adjusted cross-entropy (Menon et al. 2021, "Long-Tail Learning via Logit Adjustment").

    ``loss = CE(z + tau * log(pi), y; weight)`` with the class prior ``pi_j = n_j / sum_k n_k``, and the
    weighted mean of :class:`CrossEntropyLoss`. Training this way and predicting with ``argmax z`` targets
    the balanced error.

    Args:
        class_counts: Training examples per class (defines K and the prior).
        weight: Optional per-class weights, shape ``[K]``.
        tau: Adjustment strength, ``>= 0``; 0 gives plain cross-entropy.
    """

    log_prior: torch.Tensor

    def __init__(self, class_counts: Sequence[int], weight: torch.Tensor | None = None, *, tau: float = 1.0) -> None:
        super().__init__(class_counts, weight)
        tau = _number("logit-adjusted loss parameter tau", tau)
        if tau < 0:
            raise TailTuneError(f"logit-adjusted loss parameter tau must be >= 0, got {tau}")
        self.tau = tau
        prior = self._counts / self._counts.sum()
        self.register_buffer("log_prior", prior.log().to(torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self._prepare(logits)
        adjusted = logits + self.tau * self.log_prior.to(logits.dtype)
        return F.cross_entropy(adjusted, labels, weight=self._weight(logits.dtype))


class BalancedSoftmaxLoss(_ClassLoss):
    """Balanced softmax cross-entropy (Ren et al. 2020, "Balanced Meta-Softmax for Long-Tailed Visual
    Recognition").

    ``loss = CE(z + log(n), y; weight)`` with ``n`` the training class counts, and the weighted mean of
    :class:`CrossEntropyLoss`. Since softmax ignores a constant shift this equals the logit-adjusted loss with
    ``tau = 1``.

    Args:
        class_counts: Training examples per class (defines K).
        weight: Optional per-class weights, shape ``[K]``.
    """

    log_counts: torch.Tensor

    def __init__(self, class_counts: Sequence[int], weight: torch.Tensor | None = None) -> None:
        super().__init__(class_counts, weight)
        self.register_buffer("log_counts", self._counts.log().to(torch.float32))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self._prepare(logits)
        adjusted = logits + self.log_counts.to(logits.dtype)
        return F.cross_entropy(adjusted, labels, weight=self._weight(logits.dtype))


LOSSES: dict[str, type[_ClassLoss]] = {
    "ce": CrossEntropyLoss,
    "focal": FocalLoss,
    "ldam": LDAMLoss,
    "logit-adjusted": LogitAdjustedLoss,
    "balanced-softmax": BalancedSoftmaxLoss,
}
"""Loss classes by name. Each takes ``class_counts``, ``weight`` and its own keyword-only parameters."""


def keyword_defaults(cls: type) -> dict[str, Any]:
    """A loss class's own parameters (the keyword-only ones of its ``__init__``) and their defaults."""
    signature = inspect.signature(cls.__init__)
    return {p.name: p.default for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def check_params(name: str, params: dict[str, Any], valid: dict[str, Any]) -> None:
    """Refuse the first of ``params`` that loss ``name`` does not take, listing those it does (``valid``)."""
    unknown = sorted(set(params) - set(valid))
    if unknown:
        allowed = ", ".join(valid) if valid else "none"
        raise TailTuneError(f"unknown parameter {unknown[0]!r} for loss {name!r}; valid parameters: {allowed}")


def _loss_class(name: str) -> type[_ClassLoss]:
    if name not in LOSSES:
        raise TailTuneError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    return LOSSES[name]


def loss_params(name: str) -> dict[str, Any]:
    """The tunable parameters of a loss and their defaults.

    Args:
        name: A name in ``LOSSES``.

    Returns:
        A dict mapping parameter name to default value, e.g. ``{"gamma": 2.0}`` for ``"focal"``; empty for
        losses without parameters.

    Raises:
        TailTuneError: If ``name`` is not a known loss.
    """
    return keyword_defaults(_loss_class(name))  # class_counts and weight are shared, not the loss's own


def build_loss(
    name: str, *, class_counts: Sequence[int], weight: torch.Tensor | None = None, **params: Any
) -> nn.Module:
    """Build a loss by name.

    Args:
        name: A name in ``LOSSES``: ``"ce"``, ``"focal"``, ``"ldam"``, ``"logit-adjusted"`` or
            ``"balanced-softmax"``.
        class_counts: Training examples per class, indexed by class id.
        weight: Optional per-class weights, shape ``[K]``.
        **params: The loss's own parameters (see :func:`loss_params`); missing ones take their defaults.

    Returns:
        The loss module.

    Raises:
        TailTuneError: If the name or a parameter is unknown, a parameter value is out of range, or a class
            count is zero.
    """
    check_params(name, params, loss_params(name))
    return _loss_class(name)(class_counts, weight, **params)
