"""What every multi-label loss shares: the checked parameters, the stable log terms, DB's rebalancing weights and
the :class:`MultiLabelLoss` base class (see :mod:`tailtune.training.multilabel_losses` for the notation)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tailtune.errors import TailTuneError
from tailtune.training.losses import _number
from tailtune.training.weights import counts_tensor


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
