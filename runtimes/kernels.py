"""Which kernels a runtime really runs for a loaded artifact: integer, float, and the conversions between.

A quantized file says what its author asked for; the runtime decides what executes. ONNX Runtime fuses
QuantizeLinear → Conv → DequantizeLinear into ``QLinearConv`` only where it has an integer kernel, and leaves
a float ``HardSigmoid`` + ``Mul`` behind a dequantize/re-quantize pair where it has not. OpenVINO reports each
executed layer's runtime precision. PyTorch dispatches on the tensor's dtype. "Where INT8 is slower than FP32"
(exporter/report/int8_slower.py) needs exactly this, read from the runtime after load:

* ONNX Runtime: the graph after its own optimizations (the session's ``optimized_model_filepath``);
* OpenVINO: the compiled model's runtime graph, each layer's ``layerType`` and ``runtimePrecision``;
* PyTorch (eager, TorchScript, libtorch): one recorded forward, each top-level operator by its input's dtype.

The functions that classify are pure (graph → :class:`KernelCensus`); the runtimes only hand them what they
loaded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass(frozen=True)
class KernelCensus:
    """Executed kernels by type (count), in three groups; data movement and constants are not counted."""

    source: str  # what was read, e.g. "onnxruntime 1.31.1 optimized graph"
    integer_kernels: dict[str, int] = field(default_factory=dict)  # compute on 8-bit integers
    float_kernels: dict[str, int] = field(default_factory=dict)  # compute on floats inside the model
    conversions: dict[str, int] = field(default_factory=dict)  # quantize, dequantize, precision reorders

    @property
    def integer_count(self) -> int:
        return sum(self.integer_kernels.values())

    @property
    def float_count(self) -> int:
        return sum(self.float_kernels.values())

    @property
    def conversion_count(self) -> int:
        return sum(self.conversions.values())

    def summary(self) -> str:
        """One sentence for a report cell."""
        parts = [f"{self.integer_count} integer kernels"]
        if self.float_kernels:
            parts.append(f"{self.float_count} float ({_listed(self.float_kernels)})")
        else:
            parts.append("no float kernels")
        if self.conversions:
            parts.append(f"{self.conversion_count} conversions between them ({_listed(self.conversions)})")
        return f"{self.source}: " + ", ".join(parts)


def _listed(counts: dict[str, int], most: int = 4) -> str:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{k} ×{n}" for k, n in top[:most])
    return text + (", …" if len(top) > most else "")


def _census(source: str, integer: Counter, floats: Counter, conversions: Counter) -> KernelCensus:
    return KernelCensus(source, dict(sorted(integer.items())), dict(sorted(floats.items())),
                        dict(sorted(conversions.items())))


# ---------------------------------------------------------------- ONNX Runtime

# Operators that compute on integers (ORT's QLinear* contrib ops, the *Integer ops and QGemm).
_ONNX_INTEGER_PREFIXES = ("QLinear", "QGemm", "ConvInteger", "MatMulInteger", "QAttention", "QEmbed", "QOrdered")
_ONNX_CONVERSIONS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast"})
# Data movement, shapes and constants: neither integer nor float work.
_ONNX_NOT_COMPUTE = frozenset({"Constant", "ConstantOfShape", "Shape", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
                               "Transpose", "Identity", "Gather", "Concat", "Slice", "Split", "Expand",
                               "ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost", "Dropout"})


def census_of_onnx(node_types: Iterable[str], source: str) -> KernelCensus:
    """Classify the operator types of an (optimized) ONNX graph."""
    integer, floats, conversions = Counter(), Counter(), Counter()
    for op in node_types:
        if op in _ONNX_NOT_COMPUTE:
            continue
        if op in _ONNX_CONVERSIONS:
            conversions[op] += 1
        elif op.startswith(_ONNX_INTEGER_PREFIXES) or op.endswith("Integer") or op.endswith("IntegerToFloat"):
            integer[op] += 1
        else:
            floats[op] += 1
    return _census(source, integer, floats, conversions)


# ---------------------------------------------------------------- OpenVINO

_OV_INTEGER_PRECISIONS = frozenset({"u8", "i8", "u4", "i4"})
# FakeQuantize and Convert change precision; a Reorder changes layout or precision between layers.
_OV_CONVERSIONS = frozenset({"FakeQuantize", "Convert", "Reorder"})
_OV_NOT_COMPUTE = frozenset({"Const", "Input", "Parameter", "Output", "Result", "Reshape", "Squeeze", "Unsqueeze",
                             "Transpose", "Concatenation", "Split", "Gather", "StridedSlice", "ShapeOf"})


def census_of_openvino(layers: Iterable[tuple[str, str]], source: str) -> KernelCensus:
    """Classify (layerType, runtimePrecision) pairs of OpenVINO's runtime model."""
    integer, floats, conversions = Counter(), Counter(), Counter()
    for layer_type, precision in layers:
        if layer_type in _OV_NOT_COMPUTE:
            continue
        if layer_type in _OV_CONVERSIONS:
            conversions[layer_type] += 1
        elif precision in _OV_INTEGER_PRECISIONS:
            integer[layer_type] += 1
        else:
            floats[f"{layer_type} ({precision})"] += 1
    return _census(source, integer, floats, conversions)


# ---------------------------------------------------------------- PyTorch

_TORCH_CONVERSIONS = frozenset({"aten::quantize_per_tensor", "aten::quantize_per_channel", "aten::dequantize",
                                "quantized_decomposed::quantize_per_tensor",
                                "quantized_decomposed::dequantize_per_tensor"})
# Bookkeeping and data movement that the profiler records beside the real work.
_TORCH_NOT_COMPUTE = frozenset({"aten::q_scale", "aten::q_zero_point", "aten::qscheme", "aten::q_per_channel_scales",
                                "aten::q_per_channel_zero_points", "aten::q_per_channel_axis",
                                "aten::_empty_affine_quantized", "aten::_empty_per_channel_affine_quantized",
                                "aten::empty", "aten::empty_like", "aten::resize_", "aten::view", "aten::reshape",
                                "aten::_reshape_alias", "aten::flatten", "aten::contiguous", "aten::clone",
                                "aten::copy_", "aten::to", "aten::_to_copy", "aten::detach", "aten::alias",
                                "aten::size", "aten::dim", "aten::permute", "aten::transpose", "aten::t",
                                "aten::squeeze", "aten::unsqueeze", "aten::expand", "aten::as_strided",
                                "aten::select", "aten::slice", "aten::cat", "aten::dropout", "aten::feature_dropout",
                                "aten::lift_fresh", "aten::zeros", "aten::fill_", "aten::zero_", "aten::item",
                                "aten::_local_scalar_dense"})
_TORCH_INTEGER_DTYPES = ("torch.quint8", "torch.qint8", "torch.qint32", "torch.quint4x2", "torch.uint8",
                         "torch.int8")


def census_of_torch(ops: Iterable[tuple[str, str]], source: str) -> KernelCensus:
    """Classify (operator, first tensor argument's dtype) pairs of one forward's top-level operators."""
    integer, floats, conversions = Counter(), Counter(), Counter()
    for name, dtype in ops:
        if name in _TORCH_NOT_COMPUTE or not name:
            continue
        if name in _TORCH_CONVERSIONS:
            conversions[name] += 1
        elif name.startswith("quantized::") or dtype in _TORCH_INTEGER_DTYPES:
            integer[name] += 1
        else:
            floats[name] += 1
    return _census(source, integer, floats, conversions)


def profile_torch_module(module: Any, example: Any) -> list[tuple[str, str]]:
    """(operator, first tensor argument's dtype) of every operator one forward of ``module`` dispatches at the
    top level. A dispatch mode sees what eager and TorchScript modules call alike, and not the calls an
    operator makes inside its own kernel (the mode is off while it handles one)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Recorder(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: list[tuple[str, str]] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            self.ops.append((func.name().split(".")[0], str(first.dtype) if first is not None else ""))
            return func(*args, **(kwargs or {}))

    with torch.inference_mode():
        module(example)  # the first call of a TorchScript module runs its profiling executor: leave it out
        recorder = Recorder()
        with recorder:
            module(example)
    return recorder.ops
