"""The CPU this process runs on, as /proc/cpuinfo names its ISA flags (read once).

Best effort by design: an unreadable /proc/cpuinfo (not Linux, a sandbox) reads as no flags, which every caller
treats as "cannot tell", never as an error.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


# The flags that give INT8 kernels an exact u8*s8 dot product into int32 (VNNI, AMX).
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
# ISA caps the kernel libraries honour, and the values of each that leave VNNI out: under such a cap fbgemm or
# oneDNN sums u8*s8 products in int16 pairs even on a VNNI CPU (how a test run shows an older x86 on a newer one).
_NO_VNNI_CAPS = {
    "FBGEMM_ENABLE_INSTRUCTIONS": {"AVX2", "AVX512", "AVX512_256"},
    "ONEDNN_MAX_CPU_ISA": {"SSE41", "AVX", "AVX2", "AVX512_CORE"},
    "DNNL_MAX_CPU_ISA": {"SSE41", "AVX", "AVX2", "AVX512_CORE"},
}


def int8_kernel_flags() -> frozenset[str]:
    """This CPU's flags as the INT8 kernels will use them: without the exact-dot ones under a cap that hides them."""
    capped = any(os.environ.get(var, "").upper() in values for var, values in _NO_VNNI_CAPS.items())
    return cpu_flags() - INT8_DOT_FLAGS if capped else cpu_flags()
