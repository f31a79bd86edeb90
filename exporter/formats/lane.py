"""What every file of the pt2e INT8 lane shares, whatever its format (``.pt2``, or ONNX with
``--int8-onnx-lane pt2e``): the lane's own eager reference and its quantization record.

The reference is the ``convert_pt2e`` program saved as an ExportedProgram (``<variant>.pt2e-program.pt2``),
written once per variant and named by every file of that lane, so parity compares each of them with the
model the lane built rather than with the variant's fbgemm one.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from exporter.builders.base import BuiltVariant
from exporter.compress import pt2e
from runtimes.manifest import QuantRecord
from runtimes.records import atomic_write_bytes

LANE_REFERENCE_SUFFIX = ".pt2e-program.pt2"  # torch.export.load wants a name ending in .pt2


def write_lane_reference(built: BuiltVariant, example: torch.Tensor, artifact: Path) -> str:
    """Save the variant's pt2e program next to ``artifact`` (once: another writer of the same variant may
    have saved it already); its file name."""
    name = artifact.name.split(".", 1)[0] + LANE_REFERENCE_SUFFIX
    path = artifact.with_name(name)
    if not path.exists():
        buf = io.BytesIO()
        # Not strictly: the converted GraphModule is already an ATen graph. Any batch size.
        torch.export.save(pt2e.capture(built.pt2e.quantized(example).module, example, strict=False), buf)
        atomic_write_bytes(path, buf.getvalue())
    return name


def pt2e_quant_record(built: BuiltVariant) -> QuantRecord:
    """The quantization record of a file the pt2e lane quantized (the variant's own record is its fbgemm
    model's)."""
    src, base = built.pt2e, built.quant
    bits = "7-bit (reduce_range)" if src.reduce_range else "UINT8"
    return QuantRecord(backend="x86-inductor (oneDNN)", scheme="per-channel symmetric INT8 weights, per-tensor "
                       f"affine {bits} activations (X86InductorQuantizer default)", calib_method="histogram",
                       calib_source=base.calib_source, calib_images=int(len(src.calib_images)),
                       keep_float=list(src.keep_float), lane=pt2e.LANE, reduce_range=src.reduce_range, target=base.target)
