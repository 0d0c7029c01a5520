"""Which precision this machine computes fast, so one config runs well on CPUs with and without bfloat16 units.

bfloat16 halves memory traffic and, where the hardware has bfloat16 matrix instructions (AVX512-BF16 or
AMX on x86 CPUs, any recent GPU), doubles the matmul rate: the default config's bfloat16 vLLM engine and
GRPO update were measured 2x faster than float32 on an AMD EPYC with AVX512-BF16. Without those
instructions torch emulates bfloat16: on an AVX2-only AMD EPYC a (760 x 576) @ (576 x 1536) matmul ran at
1.2 GFLOPS in bfloat16 against 134 in float32, and the demo's first evaluation had not finished after
10 minutes. ``bfloat16_if_fast`` (``sampling.dtype``, ``grpo.autocast``) picks bfloat16 only where it is
native.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

IF_FAST = "bfloat16_if_fast"
"""The config value that resolves to bfloat16 where it is native (:func:`fast_bfloat16`), else to the
float32 path."""

BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def fast_bfloat16(device_type: str | None = None) -> bool:
    """Does ``device_type`` ("cpu" or "cuda"; ``None``: the GPU if there is one) compute bfloat16 matmuls natively?"""
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return _cpu_has_bfloat16()


@lru_cache(maxsize=1)
def _cpu_has_bfloat16() -> bool:
    """torch's own probe of the CPU (private in torch 2.x, so guarded), else Linux's /proc/cpuinfo flags."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(callable(probe) for probe in probes):
        return any(probe() for probe in probes)
    return bool(cpu_flags() & set(BFLOAT16_CPU_FLAGS))


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The first CPU's feature flags (empty where /proc/cpuinfo does not exist)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def resolve_bfloat16(value: str, otherwise: str, device_type: str | None = None) -> str:
    """``bfloat16_if_fast`` -> ``"bfloat16"`` where native, else ``otherwise``; any other value as it is."""
    if value != IF_FAST:
        return value
    return "bfloat16" if fast_bfloat16(device_type) else otherwise
