"""TorchScript and ONNX writers. Every write is atomic (temporary file, then rename).

The INT8 ONNX comes from torch's TorchScript-based exporter applied to the very
module that is saved as TorchScript, so both carry the same INT8 weights, scales
and zero points (QuantizeLinear/DequantizeLinear around float ops: QDQ).
torch.onnx's dynamo exporter cannot export eager-mode quantized modules, which is
why ``dynamo=False`` is used; the migration to torch.export/torchao replaces this.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import onnx
import torch
from torch import nn

from exporter.errors import ShrinkwrapError
from runtimes.artifact import atomic_write_bytes

ONNX_OPSET = 17


def write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Trace, freeze and save; loadable with plain ``torch.jit.load``."""
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval(), example, check_trace=False)
        frozen = torch.jit.freeze(traced)
    buf = io.BytesIO()
    torch.jit.save(frozen, buf)
    atomic_write_bytes(path, buf.getvalue())


def export_onnx(model: nn.Module, example: torch.Tensor, input_name: str, output_name: str,
                opset: int = ONNX_OPSET) -> onnx.ModelProto:
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), (example,), buf, dynamo=False, opset_version=opset,
            input_names=[input_name], output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buf.getvalue())
    return _drop_noop_casts(proto)


def _drop_noop_casts(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The legacy exporter emits ``QuantizeLinear -> Cast(to=uint8)``: a cast to the type it
    already has. It hides the QDQ pair from ORT's QDQ fusion, so remove it."""
    g = proto.graph
    producers = {o: n for n in g.node for o in n.output}
    rename: dict[str, str] = {}
    keep = []
    for n in g.node:
        if n.op_type == "Cast" and n.input and n.input[0] in producers:
            src = producers[n.input[0]]
            to = next(a.i for a in n.attribute if a.name == "to")
            if src.op_type == "QuantizeLinear" and _qlinear_out_type(src, producers) == to:
                rename[n.output[0]] = n.input[0]
                continue
        keep.append(n)
    if not rename:
        return proto
    graph_outputs = {o.name for o in g.output}
    if graph_outputs & rename.keys():
        return proto
    for n in keep:
        for i, name in enumerate(n.input):
            while name in rename:
                name = rename[name]
            n.input[i] = name
    del g.node[:]
    g.node.extend(keep)
    return proto


def _qlinear_out_type(node: onnx.NodeProto, producers: dict) -> int | None:
    """Element type of a QuantizeLinear output = type of its zero point."""
    if len(node.input) < 3:
        return onnx.TensorProto.UINT8
    zp = producers.get(node.input[2])
    if zp is not None and zp.op_type == "Constant":
        return zp.attribute[0].t.data_type
    return None


def check_and_write_onnx(proto: onnx.ModelProto, path: Path) -> None:
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ShrinkwrapError(f"ONNX checker rejected {path.name}: {str(exc).splitlines()[0]}") from exc
    atomic_write_bytes(path, proto.SerializeToString())


def to_float16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """ONNX Runtime's own float16 converter; float32 I/O is kept so every artifact has one interface."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert_float_to_float16(proto, keep_io_types=True, disable_shape_infer=False)
        # The converter appends the I/O casts at the end of the node list; the checker
        # (rightly) wants topological order.
        wrapped = OnnxModel(half)
        wrapped.topological_sort()
        return wrapped.model


def ort_quantize_static(fp32_onnx: Path, out: Path, calib: torch.Tensor, input_name: str,
                        batch: int = 8) -> None:
    """The peer a user would otherwise reach for: ORT's quantize_static (QDQ, per-channel)."""
    import tempfile

    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, images: Iterable[np.ndarray]) -> None:
            self._it = iter(images)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    chunks = [calib[i:i + batch].numpy() for i in range(0, len(calib), batch)]
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_onnx), str(pre), skip_symbolic_shape=True)
        q = Path(tmp) / "q.onnx"
        quantize_static(str(pre), str(q), Reader(chunks), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        check_and_write_onnx(onnx.load(str(q)), out)


def float_copy(model: nn.Module) -> nn.Module:
    """An FP32 copy of a (possibly half) float model, bit-exact (fp16 -> fp32 is lossless)."""
    return copy.deepcopy(model).float()
