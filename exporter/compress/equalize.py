"""Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias
Correction", section 4.1): rescale channels between consecutive layers so that their weight ranges match.

For a pair conv1 → BatchNorm → ReLU (or nothing) → conv2, where conv2 is conv1's only consumer, output channel i
of conv1 can be divided by s_i and input channel i of conv2 multiplied by s_i without changing the function,
because ReLU(x / s) = ReLU(x) / s for s > 0. Choosing s_i = sqrt(r1_i / r2_i), with r1_i the range of conv1's
(BatchNorm-folded) row i and r2_i the range of conv2's column i, gives both the same range. Depthwise-separable
stacks (expand 1x1 → depthwise → project 1x1) are chains of such pairs, equalized in order, sweep after sweep,
as AIMET does for triplets.

The division goes into the BatchNorm's weight and bias (or, without one, into conv1's weight and bias), so the
model keeps its structure and its lane fuses it as before. Activations that are not positively homogeneous
(ReLU6, Hardswish, SiLU) and layers with more than one consumer (squeeze-excitation, residual branches) end a
chain: those pairs are not equalizable, and a model with none (EfficientNet: SiLU everywhere) is left as it is,
which the record says.

With per-channel INT8 weights the weight ranges no longer decide the error on their own; what equalization
still changes is the spread of the per-tensor activation ranges between the two layers. docs/accuracy.md reports what
it is worth, measured.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from runtimes.manifest import EqualizationRecord

SWEEPS = 2  # AIMET iterates a triplet's pairs until they settle; in execution order one sweep does, two check it
_EPS = 1e-8
_HOMOGENEOUS = (nn.ReLU, nn.Identity)


def _consumers(gm: torch.fx.GraphModule, node: torch.fx.Node) -> list[torch.fx.Node]:
    return list(node.users)


def _module(gm: torch.fx.GraphModule, node: torch.fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def equalizable_pairs(model: nn.Module) -> tuple[list[tuple[str, str | None, str]], str | None]:
    """``[(conv1, batchnorm or None, conv2)]`` by qualified name, in execution order, and why there are none
    when the model cannot be traced (None otherwise)."""
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: nothing to equalize, said why
        return [], f"the model could not be traced ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    pairs = []
    for node in gm.graph.nodes:
        conv1 = _module(gm, node)
        if not isinstance(conv1, nn.Conv2d) or conv1.groups != 1 and conv1.groups != conv1.out_channels:
            continue
        cur, bn = node, None
        users = _consumers(gm, cur)
        if len(users) == 1 and isinstance(_module(gm, users[0]), nn.BatchNorm2d):
            cur, bn = users[0], users[0].target
            users = _consumers(gm, cur)
        while len(users) == 1 and (isinstance(_module(gm, users[0]), _HOMOGENEOUS) or
                                   (users[0].op == "call_function" and users[0].target is torch.relu)):
            cur = users[0]
            users = _consumers(gm, cur)
        if len(users) != 1:
            continue
        conv2 = _module(gm, users[0])
        if not isinstance(conv2, nn.Conv2d) or conv2.in_channels != conv1.out_channels:
            continue
        if conv2.groups not in (1, conv2.in_channels):
            continue  # grouped convolutions (RegNet's) share input channels across output groups differently
        pairs.append((node.target, bn, users[0].target))
    return pairs, None


def _row_ranges(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> torch.Tensor:
    """Per output channel: max |weight| of conv1 with its BatchNorm folded in."""
    r = conv.weight.detach().abs().flatten(1).amax(dim=1)
    if bn is not None:
        r = r * (bn.weight.detach().abs() / torch.sqrt(bn.running_var + bn.eps))
    return r


def _column_ranges(conv: nn.Conv2d) -> torch.Tensor:
    """Per input channel: max |weight| of conv2 over the output channels that read it."""
    w = conv.weight.detach().abs()
    if conv.groups == 1:
        return w.transpose(0, 1).flatten(1).amax(dim=1)
    return w.flatten(1).amax(dim=1)  # depthwise: output channel i reads input channel i only


@torch.no_grad()
def _equalize_pair(conv1: nn.Conv2d, bn: nn.BatchNorm2d | None, conv2: nn.Conv2d) -> float:
    """Rescale one pair in place; returns max |log s| (how far it still moved)."""
    r1, r2 = _row_ranges(conv1, bn), _column_ranges(conv2)
    s = torch.where((r1 > _EPS) & (r2 > _EPS), torch.sqrt(r1 / r2.clamp_min(_EPS)), torch.ones_like(r1))
    if bn is not None:
        bn.weight.div_(s)
        bn.bias.div_(s)
    else:
        conv1.weight.div_(s.view(-1, 1, 1, 1))
        if conv1.bias is not None:
            conv1.bias.div_(s)
    if conv2.groups == 1:
        conv2.weight.mul_(s.view(1, -1, 1, 1))
    else:
        conv2.weight.mul_(s.view(-1, 1, 1, 1))
    return float(s.log().abs().max())


def equalize(model: nn.Module) -> EqualizationRecord:
    """Equalize every equalizable pair of ``model`` in place (eval-mode float model); the record of it."""
    t0 = time.perf_counter()
    pairs, why = equalizable_pairs(model)
    if not pairs:
        reason = why or ("no equalizable pairs: no convolution feeds another through a BatchNorm and a ReLU "
                         "alone (ReLU6, Hardswish and SiLU are not positively homogeneous)")
        return EqualizationRecord(pairs=0, sweeps=0, max_log_scale=0.0, seconds=time.perf_counter() - t0,
                                  note=reason)
    modules = dict(model.named_modules())
    moved = 0.0
    for _ in range(SWEEPS):
        moved = max(_equalize_pair(modules[a], modules[b] if b else None, modules[c]) for a, b, c in pairs)
    return EqualizationRecord(pairs=len(pairs), sweeps=SWEEPS, max_log_scale=moved,
                              seconds=time.perf_counter() - t0, note=None)
