"""The FX graph-mode lane: ``torch.ao.quantization.quantize_fx`` on torchvision's plain builders.

For every CNN family torchvision ships no quantizable builder for (EfficientNet,
RegNet, ConvNeXt, DenseNet, MNASNet, SqueezeNet, VGG, AlexNet, Wide ResNet, ...),
and for ShuffleNet V2, whose quantizable builder's INT8 cannot be exported to ONNX
(see :data:`runtimes.quant_lanes.eager_mode.NOT_EAGER`).
The model is traced symbolically; ``prepare_fx`` fuses Conv+BN(+ReLU) and places
observers from the graph itself (no hand-written QuantStub or FloatFunctional),
and ``convert_fx`` lowers to the same fbgemm/x86 quantized modules and ops the
eager-mode lane produces (``quantized::conv2d``, ``quantized::add``, ...), so the
TorchScript runs integer kernels and the TorchScript-based ONNX exporter writes QDQ.

Why FX and not pt2e: pt2e (now in torchao) converts to a graph of
quantize/dequantize ops around *float* convolutions, which runs integer kernels
only once Inductor compiles it; traced to TorchScript or run by libtorch it is
float emulation, which this project's INT8 contract rules out.

Operators kept float (their INT8 form has no ONNX export here, or does not
exist): LayerNorm, GELU and the permutes around ConvNeXt's channels-last
LayerNorm; SiLU has no quantized kernel at all. A BatchNorm that follows no conv
(DenseNet's pre-activation BN) runs as fbgemm's quantized BatchNorm; the
ONNX writer gives it a QDQ symbolic (``exporter.formats.onnx``). The converted graph dequantizes before them and
re-quantizes after; :func:`float_ops` lists what runs float, for the manifest.
"""

from __future__ import annotations

import copy
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from runtimes.errors import BadInputError, ShrinkwrapError
from runtimes.quant_engine import set_quantized_engine
from runtimes.quant_lanes.base import family, qconfig, quantizable_layers, register_lane

# Families whose models FX cannot quantize into something both formats can carry (see the README's model
# table for what was measured); everything else torchvision registers is a CNN this lane covers.
REFUSED_FAMILIES = {
    "vision_transformer": "ViT's attention (nn.MultiheadAttention) is not FX-traceable for quantization",
    "maxvit": "torch's ONNX exporter cannot export the quantized multiply FX makes of MaxViT's attention "
              "(quantized_mul() missing op_scale and op_zero_point)",
}

# Kept float: module types, functions and method names, as QConfigMapping object types.
FLOAT_OBJECT_TYPES: tuple = (nn.LayerNorm, F.layer_norm, nn.GELU, F.gelu, torch.permute, "permute")


def refusal(arch: str) -> str | None:
    """Why this lane does not cover ``arch`` (None: it does)."""
    return REFUSED_FAMILIES.get(family(arch))


def qconfig_mapping(method: str, keep: Iterable[str] = (), reduce_range: bool = True):
    """torch's x86 mapping (fixed-range observers for sigmoid, hardsigmoid, tanh, softmax) with this
    project's qconfig as the global one, :data:`FLOAT_OBJECT_TYPES` float, and the ``keep`` layers float."""
    from torch.ao.quantization import get_default_qconfig_mapping

    mapping = get_default_qconfig_mapping("x86").set_global(qconfig(method, reduce_range))
    for obj in FLOAT_OBJECT_TYPES:
        mapping.set_object_type(obj, None)
    for name in keep:
        mapping.set_module_name(name, None)
    return mapping


def _observed_attrs(prepared: nn.Module):
    attrs = getattr(prepared, "meta", {}).get("_observed_graph_module_attrs")
    if attrs is None:
        raise ShrinkwrapError(f"{type(prepared).__name__} has no observer: pass an FX-prepared, calibrated model")
    return attrs


def drop_quantize_dequantize(gm: nn.Module) -> nn.Module:
    """Remove every ``quantize_per_tensor`` whose only users dequantize it again, in place.

    A layer made float at convert time (:meth:`FxGraphLane.with_float_layers`) keeps the observer that
    quantized its input, so ``convert_fx`` rounds that float input to INT8 and straight back: a pure loss
    of precision and two wasted ops, absent when the same layer is kept float at prepare time (the eager
    runtime's rebuilt structure). Removing the pair makes both paths the same graph.
    """
    graph = gm.graph
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not torch.quantize_per_tensor or not node.users:
            continue
        if not all(u.op == "call_method" and u.target == "dequantize" for u in node.users):
            continue
        source = node.args[0]
        params = [a for a in node.args[1:3] if isinstance(a, torch.fx.Node)]
        for user in list(node.users):
            user.replace_all_uses_with(source)
            graph.erase_node(user)
        graph.erase_node(node)
        for p in params:
            if not p.users and p.op == "get_attr":
                graph.erase_node(p)
                if hasattr(gm, p.target):
                    delattr(gm, p.target)
        changed = True
    if changed:
        graph.lint()
        gm.recompile()
    return gm


@register_lane
class FxGraphLane:
    name = "fx"
    title = "FX graph-mode PTQ (torch.ao quantize_fx)"

    def covers(self, arch: str) -> bool:
        # Registered after the eager lane, which keeps the models it covers.
        return refusal(arch) is None

    def float_model(self, arch: str, num_classes: int) -> nn.Module:
        import torchvision.models as tvm

        return tvm.get_model(arch, weights=None, num_classes=num_classes).eval()

    def owns(self, model: nn.Module) -> bool:
        # Anything the eager lane does not own: a plain torchvision model, or its FX GraphModule.
        return True

    def prepare(self, model: nn.Module, method: str, keep: Iterable[str] = (), reduce_range: bool = True) -> nn.Module:
        from torch.ao.quantization.quantize_fx import prepare_fx

        set_quantized_engine()
        keep = tuple(keep)
        known = set(quantizable_layers(model))
        unknown = [k for k in keep if k not in known]
        if unknown:
            raise BadInputError(f"{unknown[0]!r} is not a quantizable layer of this model; "
                                f"candidates: {', '.join(quantizable_layers(model))}")
        # example_inputs only matter for standalone modules, which torchvision models have none of.
        return prepare_fx(copy.deepcopy(model).eval(), qconfig_mapping(method, keep, reduce_range),
                          example_inputs=(torch.zeros(1, 3, 32, 32),)).eval()

    def with_float_layers(self, prepared: nn.Module, keep: Iterable[str]) -> nn.Module:
        """The copy's own qconfig mapping gets ``keep`` set to None: :meth:`convert` then leaves them float,
        dequantizing before and re-quantizing after with the observers the calibration filled."""
        keep = tuple(dict.fromkeys(keep))
        out = copy.deepcopy(prepared)
        attrs = _observed_attrs(out)
        candidates = set(quantizable_layers(out))
        for name in keep:
            if name not in candidates:
                raise BadInputError(f"{name!r} is not a quantizable layer of this model; "
                                    f"candidates: {', '.join(quantizable_layers(out))}")
            attrs.qconfig_mapping.set_module_name(name, None)
        return out

    def convert(self, prepared: nn.Module) -> nn.Module:
        from torch.ao.quantization.quantize_fx import convert_fx

        set_quantized_engine()
        mapping = copy.deepcopy(_observed_attrs(prepared).qconfig_mapping)
        return drop_quantize_dequantize(convert_fx(copy.deepcopy(prepared), qconfig_mapping=mapping)).eval()

    def quantizable_layers(self, model: nn.Module) -> list[str]:
        return quantizable_layers(model)
