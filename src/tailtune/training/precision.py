"""What ``mixed_precision: auto`` means on this machine: bf16 where the hardware computes it natively, else fp32.

- A GPU: bf16 when it supports it.
- A CPU: bf16 when it has native bf16 instructions (AMX-BF16 or AVX512-BF16, read from the CPU flags). CPUs
  without them emulate bf16, which is slower than fp32 there.

The rule reads the hardware's features only, never a timing, so the same command on the same machine always
trains at the same precision (and gives the same numbers). ``benchmarks/README.md`` has the measurements behind
it. Weights stay float32 either way (autocast only runs the matmuls in bf16), so the optimiser's updates are not
lost to bf16 rounding.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

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


def auto_decision(device_type: str) -> tuple[str, str]:
    """``(choice, reason)``: what ``auto`` resolves to for a ``cuda`` or ``cpu`` device (``bf16`` or ``no``), and
    why, in words. A function of the device's features alone."""
    if device_type == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return "bf16", "the GPU supports bf16"
        return "no", "the GPU does not support bf16"
    if device_type != "cpu":
        return "no", f"no bf16 rule for {device_type} devices"
    model, flags = cpu_info()
    native = sorted(set(NATIVE_BF16_FLAGS) & flags)
    if native:
        return "bf16", f"{model} has native bf16 ({', '.join(native)})"
    return "no", f"{model} has no native bf16 ({' or '.join(NATIVE_BF16_FLAGS)}); emulated bf16 is slower than fp32"


@functools.cache
def auto_precision(device_type: str) -> str:
    """``bf16`` or ``no``: what ``auto`` resolves to for a ``cuda`` or ``cpu`` device (logged once per process)."""
    choice, reason = auto_decision(device_type)
    logger.info("mixed precision auto: %s (%s)", choice, reason)
    return choice
