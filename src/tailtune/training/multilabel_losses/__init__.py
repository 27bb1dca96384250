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

from collections.abc import Sequence
from typing import Any

from tailtune.errors import TailTuneError
from tailtune.training.losses import check_params, keyword_defaults
from tailtune.training.multilabel_losses.balanced import ClassBalancedNTRLoss, DistributionBalancedLoss, NTRFocalLoss
from tailtune.training.multilabel_losses.base import MultiLabelLoss, rebalancing_weights
from tailtune.training.multilabel_losses.plain import (
    AsymmetricLoss,
    BCELoss,
    ClassBalancedFocalLoss,
    ClassBalancedLoss,
    FocalLoss,
)

__all__ = [
    "MULTILABEL_LOSSES", "AsymmetricLoss", "BCELoss", "ClassBalancedFocalLoss", "ClassBalancedLoss",
    "ClassBalancedNTRLoss", "DistributionBalancedLoss", "FocalLoss", "MultiLabelLoss", "NTRFocalLoss",
    "build_multilabel_loss", "multilabel_loss_needs", "multilabel_loss_params", "rebalancing_weights",
]  # fmt: skip


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
    return keyword_defaults(_loss_class(name))


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
    check_params(name, params, multilabel_loss_params(name))
    return _loss_class(name)(label_counts, num_texts, **params)
