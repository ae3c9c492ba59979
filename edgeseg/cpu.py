"""What this machine's CPU can do, asked in one place."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):  # x86, Arm
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16() -> bool:
    """AMX or AVX-512 BF16: bfloat16 matmuls and convolutions run natively (elsewhere they are
    emulated, slower than fp32). Training autocasts to bf16, the demo compiles bf16 and OpenVINO
    runs int8 graphs' float layers in bf16 only where this holds."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
