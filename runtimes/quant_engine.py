"""Which quantized kernels run INT8 artifacts (no torch import until an engine is set).

The qconfig/observer recipe is fbgemm's and is recorded in the manifest as the
quantization backend. The kernels that run quantized ops are PyTorch's ``x86``
engine: fbgemm kernels, with oneDNN where it is faster; it runs fbgemm-quantized
models unchanged and measured ~13% faster than plain ``fbgemm`` for INT8 ResNet-18
on this project's 2-core AVX-512 VNNI machine. ``SHRINKWRAP_QENGINE=fbgemm``
selects plain fbgemm; the engine is recorded in every benchmark cell.
"""

from __future__ import annotations

import os

from runtimes.errors import BadInputError

QUANT_BACKEND = "fbgemm"
QUANT_ENGINE = os.environ.get("SHRINKWRAP_QENGINE", "x86")


def set_quantized_engine() -> str:
    """Select the quantized engine (packed weights are packed for the engine active at load)."""
    import torch

    if QUANT_ENGINE not in torch.backends.quantized.supported_engines:
        raise BadInputError(f"quantized engine {QUANT_ENGINE!r} is not supported here; "
                            f"supported: {', '.join(torch.backends.quantized.supported_engines)}")
    torch.backends.quantized.engine = QUANT_ENGINE
    return torch.backends.quantized.engine
