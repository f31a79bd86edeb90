"""ONNX: self-contained, dynamic batch, named I/O, checked by ``onnx.checker`` (QDQ for INT8).

The INT8 ONNX comes from torch's TorchScript-based exporter applied to the very
module that is saved as TorchScript, so both carry the same INT8 weights, scales
and zero points (QuantizeLinear/DequantizeLinear around float ops: QDQ).
torch.onnx's dynamo exporter cannot export eager-mode quantized modules, which is
why ``dynamo=False`` is used for them. ``--int8-onnx-lane pt2e`` takes PyTorch 2's path instead: the pt2e
lane's graph through the dynamo exporter, compared by parity with that lane's own program (docs/pt2.md).

A built variant may name another module to export (``onnx_source``) and graph
passes to apply after export (``onnx_passes``): FP16 is exported from its exact
FP32 copy and converted by ONNX Runtime's float16 tool; the peer row is
quantized by ONNX Runtime's ``quantize_static``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from exporter.builders.base import BuiltVariant
from exporter.errors import ExportError, ShrinkwrapError
from exporter.formats.base import Int8OnnxLane, WriteResult, WriterSettings, register_format
from exporter.formats.lane import pt2e_quant_record, write_lane_reference
from runtimes.manifest import INPUT_NAME, OUTPUT_NAME, Format
from runtimes.records import atomic_write_bytes

ONNX_OPSET = 17


def _batch_norm_symbolic(relu: bool):
    """``quantized::batch_norm2d[_relu]`` as QDQ: DequantizeLinear → BatchNormalization (→ Relu) → QuantizeLinear
    with the op's own output scale and zero point, as torch's exporter writes ``quantized::group_norm``."""
    from torch.onnx.symbolic_helper import dequantize_helper, parse_args, quantize_helper

    @parse_args("v", "v", "v", "v", "v", "f", "v", "v")
    def symbolic(g, q_input, weight, bias, mean, var, eps, op_scale, op_zero_point):
        x, _, _, _ = dequantize_helper(g, q_input)
        out = g.op("BatchNormalization", x, weight, bias, mean, var, epsilon_f=eps)
        if relu:
            out = g.op("Relu", out)
        return quantize_helper(g, out, op_scale, op_zero_point)

    return symbolic


@functools.cache
def register_quantized_symbolics() -> None:
    """Quantized ops torch's TorchScript-based exporter has no symbolic for, but FX-lane models contain: a
    BatchNorm that follows no conv (DenseNet's pre-activation, MaxViT) runs as fbgemm's quantized BatchNorm."""
    for op, relu in (("quantized::batch_norm2d", False), ("quantized::batch_norm2d_relu", True)):
        torch.onnx.register_custom_op_symbolic(op, _batch_norm_symbolic(relu), ONNX_OPSET)


def export_onnx(model: nn.Module, example: torch.Tensor, input_name: str = INPUT_NAME,
                output_name: str = OUTPUT_NAME, opset: int = ONNX_OPSET) -> onnx.ModelProto:
    register_quantized_symbolics()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model.eval(), (example,), buf, dynamo=False, opset_version=opset,
                input_names=[input_name], output_names=[output_name],
                dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                do_constant_folding=True,
            )
        except (torch.onnx.errors.OnnxExporterError, RuntimeError) as exc:
            # torch appends the whole TorchScript graph to the message: keep its first line.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"ONNX export failed at input {tuple(example.shape[1:])}: {first}") from exc
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


def built_proto(built: BuiltVariant, example: torch.Tensor) -> onnx.ModelProto:
    """The variant's ONNX graph: exported from its ONNX source, then every pass applied in order."""
    proto = export_onnx(built.onnx_source if built.onnx_source is not None else built.model, example)
    for graph_pass in built.onnx_passes:
        proto = graph_pass(proto)
    return proto


def onnx_bytes(built: BuiltVariant, example: torch.Tensor) -> bytes:
    """The serialized ONNX of a built variant, in memory (the sweep measures it without a file)."""
    return built_proto(built, example).SerializeToString()


def export_pt2e_onnx(module: nn.Module, example: torch.Tensor, input_name: str = INPUT_NAME,
                     output_name: str = OUTPUT_NAME) -> onnx.ModelProto:
    """The pt2e lane's converted graph through torch's dynamo exporter: a QDQ graph (quantize/dequantize pairs
    around float ops) that ONNX Runtime fuses into integer kernels where its QDQ patterns match."""
    from exporter.compress.pt2e import MAX_BATCH

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                module, (example,), dynamo=True, input_names=[input_name], output_names=[output_name],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},), verbose=False)
        except Exception as exc:  # the dynamo exporter raises many types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"ONNX export of the pt2e graph failed: {type(exc).__name__}: {first[:300]}") from exc
    return program.model_proto


@register_format
class OnnxWriter:
    name = Format.ONNX
    suffix = ".onnx"
    description = "self-contained ONNX, dynamic batch (QDQ for INT8, float16 inside for FP16)"

    def write(self, built: BuiltVariant, example: torch.Tensor, path: Path,
              settings: WriterSettings = WriterSettings()) -> WriteResult | None:
        if settings.int8_onnx_lane is Int8OnnxLane.PT2E and built.pt2e is not None:
            # An INT8 variant whose recipe handed the pt2e lane a float model; the others (a peer's ONNX,
            # pruning inside the INT8 grid) keep the fbgemm export, and their record says which lane they carry.
            quantized = built.pt2e.quantized(example)
            # The dynamo exporter prints its progress ("[torch.onnx] Obtain model graph ... ✅") to stdout.
            with contextlib.redirect_stdout(io.StringIO()):
                proto = export_pt2e_onnx(quantized.module, example)
            check_and_write_onnx(proto, path)
            return WriteResult(quantization=pt2e_quant_record(built),
                               lane_reference=write_lane_reference(built, example, path))
        check_and_write_onnx(built_proto(built, example), path)
        return None

