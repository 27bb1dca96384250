"""The FLOP ceiling of the speed benchmark: measured matmul throughput over the model's training FLOPs per token.

Training FLOPs per token of a BERT-style encoder (forward + backward):

    F(T) = 6 * N + 12 * n_layers * T * hidden

- ``N``: the parameters of the encoder layers, the weights every token goes through (embeddings are table
  look-ups, and the pooler and head run once per text, so they are left out). The forward pass does one
  multiply-add (2 FLOPs) per weight per token and the backward pass twice that, hence 6 * N.
- ``12 * n_layers * T * hidden``: attention scores (Q K^T) and their weighted sum (A V) cost 2 * T * hidden
  FLOPs each per token and layer in the forward pass, times 3 for forward + backward; ``T`` is the length of
  the sequence a token attends over.

With ``G`` the measured matmul throughput in FLOP/s, the ceiling is ``G / F(T)`` tokens per second: what
training would reach if every FLOP ran at matmul speed and nothing else took time.
"""

from __future__ import annotations

import time

import numpy as np
import torch


def matmul_flops_per_second(
    device: torch.device, dtype: torch.dtype, *, size: int, repeats: int = 4, warmup: int = 1
) -> float:
    """Best-of-``repeats`` throughput (FLOP/s) of a ``size x size`` by ``size x size`` matrix product.

    The best rather than the mean: the ceiling is what the hardware can do, and on a shared machine the slow
    repeats measure the neighbours.
    """
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    flops = 2.0 * size**3
    best = 0.0
    for i in range(warmup + repeats):
        _sync(device)
        start = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        elapsed = time.perf_counter() - start
        if i >= warmup:
            best = max(best, flops / elapsed)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def encoder_shape(model: torch.nn.Module) -> dict[str, int]:
    """``n_layers``, ``hidden`` and ``layer_params`` (parameters of all encoder layers) of a supported model."""
    from tailtune.models.scopes import encoder_layers

    layers = encoder_layers(model)
    return {
        "n_layers": len(layers),
        "hidden": int(model.config.hidden_size),
        "layer_params": sum(p.numel() for p in layers.parameters()),
    }


def attention_length(lengths: np.ndarray) -> float:
    """Token-weighted mean sequence length, ``sum(L^2) / sum(L)``: the mean length a *token* attends over."""
    lengths = np.asarray(lengths, dtype=np.float64)
    return float((lengths**2).sum() / lengths.sum())


def training_flops_per_token(shape: dict[str, int], seq_len: float) -> float:
    """``6 * N + 12 * n_layers * seq_len * hidden`` (see the module docstring)."""
    return 6.0 * shape["layer_params"] + 12.0 * shape["n_layers"] * seq_len * shape["hidden"]


def ceiling_tokens_per_second(flops_per_second: float, shape: dict[str, int], seq_len: float) -> float:
    """Training tokens per second if all training FLOPs ran at the measured matmul throughput."""
    return flops_per_second / training_flops_per_token(shape, seq_len)
