"""What ``mixed_precision: auto`` means on this machine: bf16 where it is measurably faster, else fp32.

- A GPU: bf16 when it supports it.
- A CPU: bf16 only when it has native bf16 instructions (AMX-BF16 or AVX512-BF16, read from the CPU flags)
  *and* a short probe, a transformer-sized matmul with its backward pass, runs at least
  :data:`MIN_SPEEDUP` times faster under bf16 autocast than in fp32 here. CPUs without native bf16 emulate
  it and are slower, so they are not probed.

Weights stay float32 either way (autocast only runs the matmuls in bf16), so the optimiser's updates are not
lost to bf16 rounding.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

# bf16 must beat fp32 by this factor on the probe: small gains are not worth the lower precision.
MIN_SPEEDUP = 1.2
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and feature flags (Linux ``/proc/cpuinfo``; ``("?", set())`` where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "?", set()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", "?"), set(fields.get("flags", "").split())


def cpu_bf16_speedup(repeats: int = 3) -> float:
    """fp32 time over bf16-autocast time of one ``[2048 x 384] @ [384 x 1536]`` matmul with its backward pass.

    The shape is a MiniLM-sized feed-forward layer on 16 texts of 128 tokens; the best of ``repeats`` timings
    (after one warm-up each) is compared, so a busy machine biases neither side much.
    """
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(2048, 384, generator=generator)
    weight = torch.randn(1536, 384, generator=generator, requires_grad=True)

    def best_time(bf16: bool) -> float:
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = torch.nn.functional.linear(inputs, weight)
            out.float().sum().backward()
            times.append(time.perf_counter() - start)
        return min(times[1:])

    return best_time(False) / best_time(True)


@functools.cache
def auto_precision(device_type: str) -> str:
    """``bf16`` or ``no``: what ``auto`` resolves to for a ``cuda`` or ``cpu`` device (decided once per process)."""
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if device_type != "cpu":
        return "no"
    model, flags = cpu_info()
    native = sorted(set(NATIVE_BF16_FLAGS) & flags)
    if not native:
        return "no"
    speedup = cpu_bf16_speedup()
    choice = "bf16" if speedup >= MIN_SPEEDUP else "no"
    logger.info(
        "mixed precision auto: %s (%s has %s; bf16 probe %.2fx fp32)",
        choice, model, ", ".join(native), speedup,
    )  # fmt: skip
    return choice
