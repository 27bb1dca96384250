"""Per-class weights computed from training-set class counts.

Every scheme returns a float32 tensor of length K normalised to sum to K, as the two-stage fine-tuning
authors do (ValizadehAslani et al. 2022), so a weighted loss keeps roughly the scale of its unweighted
version whatever the scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from tailtune.errors import TailTuneError


def counts_tensor(counts: Sequence[int]) -> torch.Tensor:
    """Check training-set class counts and return them as a float64 tensor.

    Args:
        counts: Number of training examples of each class, indexed by class id.

    Returns:
        A float64 tensor of shape ``[K]``.

    Raises:
        TailTuneError: If there are no classes, a count is not a whole number, or a class has no
            training example (its weight, margin or log-prior would be infinite).
    """
    values = [float(c) for c in counts]
    if not values:
        raise TailTuneError("class counts are empty: the training data must contain at least one class")
    for class_id, c in enumerate(values):
        if c != int(c) or c < 0:
            raise TailTuneError(f"class {class_id} has count {c}; class counts must be whole numbers >= 0")
        if c == 0:
            raise TailTuneError(
                f"class {class_id} has no training example; every class needs at least one training example"
            )
    return torch.tensor(values, dtype=torch.float64)


def _none(n: torch.Tensor, *, beta: float) -> torch.Tensor:
    return torch.ones_like(n)


def _inverse(n: torch.Tensor, *, beta: float) -> torch.Tensor:
    return 1.0 / n


def _inverse_sqrt(n: torch.Tensor, *, beta: float) -> torch.Tensor:
    return 1.0 / n.sqrt()


def _effective(n: torch.Tensor, *, beta: float) -> torch.Tensor:
    # 1 - beta**n is the effective number times (1 - beta); computed in float64 because with beta close
    # to 1 (the default 0.9999) float32 loses most of the digits that tell classes apart.
    return (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n))


WEIGHTINGS: dict[str, Callable[..., torch.Tensor]] = {
    "none": _none,
    "inverse": _inverse,
    "inverse-sqrt": _inverse_sqrt,
    "effective": _effective,
}
"""Weighting schemes by name; each maps float64 counts ``n`` (and ``beta``) to unnormalised weights."""


def class_weights(counts: Sequence[int], scheme: str = "none", *, beta: float = 0.9999) -> torch.Tensor:
    """Per-class loss weights from training-set class counts.

    Unnormalised weights for class ``j`` with ``n_j`` training examples:

    * ``"none"``: ``w_j = 1``.
    * ``"inverse"``: ``w_j = 1 / n_j``.
    * ``"inverse-sqrt"``: ``w_j = 1 / sqrt(n_j)``.
    * ``"effective"``: ``w_j = (1 - beta) / (1 - beta ** n_j)``, the inverse of the effective number of
      samples (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples"). ``beta = 0``
      gives uniform weights and ``beta -> 1`` approaches ``"inverse"``.

    The weights are then rescaled to sum to K, as in ValizadehAslani et al. (2022).

    Args:
        counts: Number of training examples of each class, indexed by class id.
        scheme: One of the names in ``WEIGHTINGS``.
        beta: Effective-number hyperparameter, in ``[0, 1)``; only ``"effective"`` uses it.

    Returns:
        A float32 tensor of shape ``[K]`` summing to K.

    Raises:
        TailTuneError: If ``scheme`` is unknown, ``beta`` is outside ``[0, 1)``, or a class count is zero.
    """
    if scheme not in WEIGHTINGS:
        raise TailTuneError(f"unknown weighting {scheme!r}; valid weightings: {', '.join(WEIGHTINGS)}")
    if not 0.0 <= beta < 1.0:
        raise TailTuneError(f"beta must be in [0, 1), got {beta}", setting="beta")
    n = counts_tensor(counts)
    w = WEIGHTINGS[scheme](n, beta=beta)
    return (w * (len(n) / w.sum())).to(torch.float32)
