"""The peer row: ONNX Runtime's own ``quantize_static`` of the FP32 ONNX, on the same calibration images.

What a user would otherwise reach for, built and measured side by side with our
INT8. It is compared with the FP32 reference (its record's ``compare_with``), so
its parity includes its own quantization error.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import onnx
import torch

from exporter.builders.base import BuildContext, BuilderParams, BuiltVariant, register_builder
from exporter.options import CompressionOptions
from runtimes.manifest import PruneRecord, QuantRecord

PEER_SCHEME = "quantize_static QDQ, per-channel INT8 weights, UINT8 activations, MinMax calibration"


@dataclass(frozen=True)
class PeerParams(BuilderParams):
    base: str = "fp32"  # the variant whose ONNX is quantized (and whose reference it is compared with)

    def compare_with(self) -> str | None:
        return self.base


def ort_quantize_static(proto: onnx.ModelProto, calib: torch.Tensor, batch: int = 8) -> onnx.ModelProto:
    """ORT's quantize_static (QDQ, per-channel INT8 weights, UINT8 activations, MinMax)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = proto.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self, images: Iterable[np.ndarray]) -> None:
            self._it = iter(images)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    chunks = [calib[i:i + batch].numpy() for i in range(0, len(calib), batch)]
    with tempfile.TemporaryDirectory(prefix="shrinkwrap-peer-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp32, pre, q = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "q.onnx"
        onnx.save(proto, str(fp32))
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(q), Reader(chunks), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        return onnx.load(str(q))


def quantize_pass(calib: torch.Tensor) -> Callable[[onnx.ModelProto], onnx.ModelProto]:
    def peer_quantize_static(proto: onnx.ModelProto) -> onnx.ModelProto:
        return ort_quantize_static(proto, calib)

    return peer_quantize_static


def peer_variant(ctx: BuildContext, params: PeerParams, opts: CompressionOptions, quant: QuantRecord,
                 onnx_pass: Callable[[onnx.ModelProto], onnx.ModelProto]) -> BuiltVariant:
    """What every peer row is: the base variant's model and ONNX, with another tool's quantizer as a last
    ONNX pass (the model itself stays the base's float model: a peer has no TorchScript of its own)."""
    base = ctx.build_named(params.base, opts)
    return BuiltVariant(base.model, quant, PruneRecord(None, None, None, 0.0), base.sparsity,
                        base.params, base.nonzero_params,
                        decisions={"peer": True},
                        onnx_source=base.onnx_source,
                        onnx_passes=(*base.onnx_passes, onnx_pass))


@register_builder
class OrtQuantizeStaticBuilder:
    name = "ort-quantize-static"
    params_type = PeerParams
    quantizes = False  # works on any ONNX: needs no INT8 lane of ours
    needs_eval = False
    sweepable = False

    def build(self, ctx: BuildContext, params: PeerParams, opts: CompressionOptions) -> BuiltVariant:
        quant = QuantRecord(backend="onnxruntime", scheme=PEER_SCHEME, calib_method="minmax",
                            calib_source=ctx.calib_source, calib_images=int(len(ctx.calib_images)))
        return peer_variant(ctx, params, opts, quant, quantize_pass(ctx.calib_images))
