"""Unstructured L1 magnitude pruning for float (FP32/FP16) and INT8 modules.

Separate steps: what to prune (:func:`prunable_weights`), how to score
(:func:`l1_scores`), how to cut (:func:`compute_masks`), and how to make it
permanent (:func:`apply_masks`). Float weights go through
``torch.nn.utils.prune``; quantized modules, which those utilities refuse, get
their pruned integers set to the zero point so they dequantize to exactly 0
with scales and zero points left bit-identical.

Sparsity is always *measured* from the stored weights (:func:`measure_sparsity`),
never assumed from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.ao.nn.quantized as nnq
from torch import nn
from torch.ao.nn.intrinsic import _FusedModule
from torch.ao.nn.quantized import DeQuantize
from torch.ao.quantization import DeQuantStub
from torch.nn.utils import prune

from exporter.errors import BadInputError
from exporter.options import check_sparsity
from runtimes.manifest import LayerSparsity, SparsityRecord

# nniq.ConvReLU2d / LinearReLU (and dynamic Linear) subclass these two.
_QUANTIZED = (nnq.Conv2d, nnq.Linear)
_FLOAT = (nn.Conv2d, nn.Linear)
# Float32IO keeps the model in ``.inner``; names must not depend on the wrapper.
_WRAPPER_PREFIX = "inner."


@dataclass(frozen=True)
class PrunableWeight:
    name: str  # the layer's qualified name (a fused module's name for the conv inside it)
    module: nn.Module
    kind: str  # "float" | "int8"

    def magnitudes(self) -> torch.Tensor:
        """|w| as float32; dequantized for INT8, so the score is in the model's units."""
        if self.kind == "int8":
            # contiguous: quantized conv weights come back channels-last, and
            # torch's L1Unstructured flattens with view()
            return self.module.weight().dequantize().abs().contiguous()
        return self.module.weight.detach().abs().float().contiguous()

    def zeros_and_total(self) -> tuple[int, int]:
        """Zeros in the stored weight (INT8: integers equal to their zero point)."""
        if self.kind == "int8":
            w = self.module.weight()
            return int((w.int_repr() == _zero_points(w)).sum()), w.numel()
        w = self.module.weight.detach()
        return int((w == 0).sum()), w.numel()

    def apply_mask(self, keep: torch.Tensor) -> None:
        """Zero the weights where ``keep`` is False, permanently."""
        if self.kind == "int8":
            _mask_quantized(self.module, keep)
        else:
            prune.custom_from_mask(self.module, "weight", keep)
            prune.remove(self.module, "weight")


def prunable_weights(model: nn.Module) -> list[PrunableWeight]:
    """Every Conv2d/Linear weight, float or quantized, in ``named_modules`` order."""
    found: list[PrunableWeight] = []
    # A layer's own name, whatever wraps it: "layer1.0.conv1.0" (inside a fused module) and "fc.1"
    # (a layer kept FP32 in an INT8 model, inside Sequential(DeQuantStub, layer, ...)) are
    # "layer1.0.conv1" and "fc".
    fused: dict[str, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, _FusedModule):
            for child, _ in module.named_children():
                fused[f"{name}.{child}"] = name
        elif isinstance(module, nn.Sequential) and len(module) and isinstance(module[0], (DeQuantStub, DeQuantize)):
            fused[f"{name}.1"] = name
        if isinstance(module, _QUANTIZED):
            found.append(PrunableWeight(name, module, "int8"))
        elif isinstance(module, _FLOAT):
            found.append(PrunableWeight(fused.get(name, name), module, "float"))
    return found


def l1_scores(weights: Sequence[PrunableWeight]) -> list[torch.Tensor]:
    return [w.magnitudes() for w in weights]


def compute_masks(scores: Sequence[torch.Tensor], sparsity: float, scope: str) -> list[torch.Tensor]:
    """Boolean keep-masks: ``scope="layer"`` prunes each layer at ``sparsity``,
    ``"global"`` uses one threshold over all layers together."""
    check_sparsity(sparsity)
    method = prune.L1Unstructured(amount=sparsity)
    scores = [s.contiguous() for s in scores]
    if scope == "layer":
        return [method.compute_mask(s, torch.ones_like(s)).bool() for s in scores]
    if scope == "global":
        if not scores:
            return []
        flat = torch.cat([s.reshape(-1) for s in scores])
        keep = method.compute_mask(flat, torch.ones_like(flat)).bool()
        parts = keep.split([s.numel() for s in scores])
        return [p.reshape(s.shape) for p, s in zip(parts, scores)]
    raise BadInputError(f"unknown pruning scope {scope!r}; known: global, layer")


def apply_masks(weights: Sequence[PrunableWeight], masks: Sequence[torch.Tensor]) -> None:
    if len(weights) != len(masks):
        raise ValueError(f"{len(weights)} weights but {len(masks)} masks")
    for weight, mask in zip(weights, masks):
        weight.apply_mask(mask)


def prune_model(model: nn.Module, sparsity: float, scope: str = "global") -> None:
    """L1 unstructured pruning in place; ``sparsity=0`` prunes nothing."""
    weights = prunable_weights(model)
    masks = compute_masks(l1_scores(weights), sparsity, scope)
    apply_masks(weights, masks)


def measure_sparsity(model: nn.Module, requested: float) -> SparsityRecord:
    per_layer = []
    for w in prunable_weights(model):
        zeros, total = w.zeros_and_total()
        name = w.name.removeprefix(_WRAPPER_PREFIX)
        per_layer.append(LayerSparsity(name, zeros, total, zeros / total if total else 0.0))
    zeros = sum(layer.zeros for layer in per_layer)
    total = sum(layer.total for layer in per_layer)
    return SparsityRecord(requested=float(requested), achieved=zeros / total if total else 0.0,
                          zeros=zeros, total=total, per_layer=per_layer)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(all parameters, non-zero ones), quantized weights and biases included.

    Quantized modules keep weight and bias in packed params, not in
    ``parameters()``, so they are read through ``weight()`` / ``bias()``.
    """
    total = nonzero = 0
    for p in model.parameters():
        total += p.numel()
        nonzero += int(torch.count_nonzero(p.detach()))
    for module in model.modules():
        if not isinstance(module, _QUANTIZED):
            continue
        w = module.weight()
        total += w.numel()
        nonzero += int((w.int_repr() != _zero_points(w)).sum())
        b = module.bias()
        if b is not None:
            total += b.numel()
            nonzero += int(torch.count_nonzero(b.detach()))
    return total, nonzero


def _zero_points(w: torch.Tensor) -> torch.Tensor:
    """The zero point of every element of a quantized tensor (broadcastable to it)."""
    if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        shape = [1] * w.dim()
        shape[w.q_per_channel_axis()] = -1
        return w.q_per_channel_zero_points().reshape(shape).to(torch.int32)
    return torch.tensor(w.q_zero_point(), dtype=torch.int32)


def _mask_quantized(module: nn.Module, keep: torch.Tensor) -> None:
    """Set pruned integers to the zero point; scales and zero points are reused as stored."""
    w = module.weight()
    ints = w.int_repr()
    zp = _zero_points(w).to(ints.dtype).expand_as(ints)
    ints = torch.where(keep.to(torch.bool), ints, zp)
    if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        new_w = torch._make_per_channel_quantized_tensor(
            ints, w.q_per_channel_scales(), w.q_per_channel_zero_points(), w.q_per_channel_axis())
    elif w.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        new_w = torch._make_per_tensor_quantized_tensor(ints, w.q_scale(), w.q_zero_point())
    else:
        raise BadInputError(f"cannot prune weights quantized with {w.qscheme()}")
    module.set_weight_bias(new_w, module.bias())
