"""Which ONNX tensor holds the output of which eager module: the exporter's scope names.

torch's TorchScript-based ONNX exporter names every node after the module scope it
was traced in, e.g. ``/layer1/layer1.0/conv1/Conv`` (float graphs) or
``/layer1/0/conv1/QuantizeLinear`` (graphs exported from quantized modules): the
path of modules, each segment either the child's attribute name or its qualified
name, then the op. :func:`scope_of` turns that back into the eager module's
qualified name (``layer1.0.conv1``); the output of the *last* node of a scope (the
graph is topologically sorted) is that module's output.

In a QDQ graph a quantized module ends in ``QuantizeLinear``: its integer output is
exposed as it is (so ONNX Runtime's QDQ fusions, which keep that tensor, still apply)
and dequantized here with the node's own scale and zero point.

:func:`with_outputs` adds those tensors as graph outputs, as ONNX Runtime's own
``qdq_loss_debug`` does; an exposed tensor can no longer be fused away, so the
exposed graph may run a few kernels differently from the artifact (its logits are
compared too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

QUANTIZE = "QuantizeLinear"


def scope_of(node_name: str) -> str | None:
    """``/layer2/layer2.0/downsample/downsample.0/Conv`` → ``layer2.0.downsample.0``; None without a scope."""
    if not node_name.startswith("/"):
        return None
    segments = [s for s in node_name.strip("/").split("/")[:-1] if s]  # the last one is the op
    parts: list[str] = []
    for seg in segments:
        # a qualified segment repeats the tail of the path so far: "layer2" + "layer2.0" is "layer2.0"
        for k in range(len(parts)):
            if seg.startswith(".".join(parts[k:]) + "."):
                parts = parts[:k]
                break
        parts.append(seg)
    return ".".join(parts) or None


@dataclass(frozen=True)
class LayerTensor:
    """The tensor that holds a module's output, and how to turn it into float."""

    module: str
    name: str  # the ONNX tensor name exposed as a graph output
    scale: float | None = None  # set when ``name`` is a QuantizeLinear output (per-tensor)
    zero_point: int | None = None

    def to_float(self, value: np.ndarray) -> np.ndarray:
        if self.scale is None:
            return np.asarray(value, dtype=np.float32)
        return ((value.astype(np.float64) - (self.zero_point or 0)) * self.scale).astype(np.float32)


def _constants(proto) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    out = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    out[node.output[0]] = numpy_helper.to_array(attr.t)
    return out


def module_outputs(proto, modules: Iterable[str]) -> dict[str, LayerTensor]:
    """For each of ``modules`` that has a scope in the graph, the tensor holding its output."""
    wanted = set(modules)
    last = {}
    for node in proto.graph.node:
        scope = scope_of(node.name)
        if scope in wanted and node.op_type != "Constant" and node.output:
            last[scope] = node
    constants = _constants(proto)
    out: dict[str, LayerTensor] = {}
    for module, node in last.items():
        if node.op_type == QUANTIZE:
            scale, zp = constants.get(node.input[1]), constants.get(node.input[2]) if len(node.input) > 2 else None
            if scale is None or np.size(scale) != 1 or (zp is not None and np.size(zp) != 1):
                continue  # a per-channel or computed activation scale: not dequantizable here
            out[module] = LayerTensor(module, node.output[0], float(np.asarray(scale).reshape(())),
                                      int(np.asarray(zp).reshape(())) if zp is not None else 0)
        else:
            out[module] = LayerTensor(module, node.output[0])
    return out


def with_outputs(proto, names: Iterable[str]):
    """A copy of ``proto`` whose graph also outputs the tensors ``names`` (type left to ONNX Runtime)."""
    from onnx import ModelProto, ValueInfoProto

    exposed = ModelProto()
    exposed.CopyFrom(proto)
    present = {o.name for o in exposed.graph.output}
    for name in names:
        if name not in present:
            exposed.graph.output.append(ValueInfoProto(name=name))
    return exposed
