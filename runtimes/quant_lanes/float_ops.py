"""What runs in float inside a converted INT8 model: the manifest's list of operators kept float.

Measured, not declared: the model runs once on an example input and every
computing operator whose output is a float tensor is listed by type, with where
it is. Data movement (reshape, permute, flatten, ...), quantize/dequantize and
no-ops are not operators that "stay float", so they are left out.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

# Module types and function/method names that compute nothing (or only move data).
_NOT_COMPUTE_MODULES = ("Identity", "Dropout", "Flatten", "QuantStub", "DeQuantStub", "Quantize", "DeQuantize",
                        "StochasticDepth", "Permute", "Sequential")
_NOT_COMPUTE_CALLS = {"dequantize", "quantize_per_tensor", "quantize_per_channel", "size", "dim", "view", "reshape",
                      "flatten", "permute", "transpose", "contiguous", "getitem", "getattr", "chunk", "split",
                      "unsqueeze", "squeeze", "expand", "cat", "stack", "to", "float", "type_as", "narrow",
                      "stochastic_depth", "dropout", "identity", "channel_shuffle"}


def _float_tensor(value) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point() and not value.is_quantized


def float_ops(model: nn.Module, example: torch.Tensor) -> dict[str, list[str]]:
    """Operator type -> where it runs float (module names, or graph node names for functions)."""
    from torch.fx import GraphModule

    found: dict[str, list[str]] = defaultdict(list)
    with torch.no_grad():
        if isinstance(model, GraphModule):
            _from_graph(model, example, found)
        else:
            _from_modules(model, example, found)
    return {op: names for op, names in sorted(found.items())}


def _from_graph(gm: nn.Module, example: torch.Tensor, found: dict[str, list[str]]) -> None:
    from torch.fx import Interpreter

    modules = dict(gm.named_modules())

    class Recorder(Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if n.op == "call_module":
                kind = type(modules[n.target]).__name__
                where = str(n.target)
                compute = kind not in _NOT_COMPUTE_MODULES
            elif n.op in ("call_function", "call_method"):
                kind = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", str(n.target))
                where = n.name
                compute = kind.lstrip("_") not in _NOT_COMPUTE_CALLS
            else:
                return out
            if compute and _float_tensor(out):
                found[kind].append(where)
            return out

    Recorder(gm).run(example)


def _from_modules(model: nn.Module, example: torch.Tensor, found: dict[str, list[str]]) -> None:
    handles = []
    for name, module in model.named_modules():
        if not name or list(module.children()) or type(module).__name__ in _NOT_COMPUTE_MODULES:
            continue

        def hook(mod, args, out, name=name):
            if _float_tensor(out):
                found[type(mod).__name__].append(name)

        handles.append(module.register_forward_hook(hook))
    try:
        model(example)
    finally:
        for h in handles:
            h.remove()
