"""Bias correction: shift each INT8 layer's bias so that its mean output per channel is the float model's.

Rounding weights to INT8 moves every layer's output mean a little (Nagel et al. 2019, "Data-Free Quantization
Through Weight Equalization and Bias Correction", section 4.2); in a deep stack of depthwise convolutions the
shifts compound into points of top-1. The correction is the per-channel difference of the float and the
quantized pre-activation means on the calibration images, added to the quantized layer's (float) bias:

- **fast**: each layer's own error. Its FP32 input, rounded to the layer's INT8 input grid, goes through the
  INT8 weights and through the float ones; one pass over the images, every layer at once. NNCF's
  ``FastBiasCorrection`` does the same on a blob of the input's per-channel means.
- **full**: in execution order, on the quantized model's *own* inputs, so each layer also takes out the shift
  its predecessors left. The whole image set goes through the INT8 model as one batch; a forward pre-hook on
  each layer measures its mean and corrects its bias before the layer runs, so every later layer already sees
  corrected inputs: the sequential algorithm in a single pass (NNCF's ``BiasCorrection``, AIMET's empirical
  bias correction).

The float means come from the calibrated *prepared* model (fused, BatchNorm folded, the same layer names as
the converted one), on a copy, so its observers keep the calibration's statistics. Only the float bias moves:
the INT8 weights, scales and zero points stay exactly what TorchScript and ONNX carry. As NNCF does, a shift
much larger than the bias it corrects is not applied (``MAX_RELATIVE_SHIFT``): it signals an unreliable mean
(a layer whose output is near-constant on these images), not a quantization error.

torch ships ``torch.ao.quantization._correct_bias``, private and limited to unfused eager models (it assigns
``bias.data`` of packed parameters, which FX-converted and fused modules do not expose); this is the same
statistics, through hooks, for both lanes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from exporter.errors import ShrinkwrapError
from runtimes.manifest import BiasCorrection, BiasCorrectionRecord

# NNCF's thresholds on max |shift / bias| (FAST_BIAS_CORRECTION_THRESHOLD = 2, BIAS_CORRECTION_THRESHOLD =
# 1000): the fast variant trusts only small corrections, the full one almost any.
MAX_RELATIVE_SHIFT = {BiasCorrection.FAST: 2.0, BiasCorrection.FULL: 1000.0}
# More images than this are evenly subsampled: a per-channel mean over 128 images of H×W positions each is
# already exact to well under the quantization step, and full correction runs them as one batch (memory).
MAX_IMAGES = 128


@dataclass
class _Mean:
    """A running per-channel mean over (N, H, W)."""

    total: torch.Tensor | None = None
    count: int = 0

    def add(self, y: torch.Tensor, images: int | None = None) -> None:
        """``y`` (N, C, ...) or, with ``images``, the mean image of that many."""
        dims = [d for d in range(y.dim()) if d != 1]
        weight = images if images is not None else 1
        s = y.detach().sum(dim=dims).double() * weight
        self.total = s if self.total is None else self.total + s
        self.count += weight * (y.numel() // y.shape[1])

    @property
    def value(self) -> torch.Tensor:
        return (self.total / self.count).float()


def quantized_layers(converted: nn.Module) -> dict[str, nn.Module]:
    """The converted model's INT8 convolutions and Linears (fused with ReLU or not), by name."""
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    kinds = (nnq.Conv2d, nniq.ConvReLU2d, nnq.Linear, nniq.LinearReLU)
    return {name: m for name, m in converted.named_modules() if type(m) in kinds}


def _float_core(module: nn.Module) -> nn.Module:
    """The conv or Linear of a prepared layer, whose output is the pre-activation (a fused module's first)."""
    from torch.ao.nn.intrinsic import _FusedModule

    return module[0] if isinstance(module, _FusedModule) else module


def _weight_bias(q: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    w = q.weight()
    b = q.bias()
    out_channels = w.shape[0]
    return w, (b.detach().clone() if b is not None else torch.zeros(out_channels))


def _emulate(q: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's pre-activation in float arithmetic: dequantized input and weights, float bias. What the
    integer kernel computes before it rounds the output."""
    w, b = _weight_bias(q)
    wf = w.dequantize()
    if wf.dim() == 2:
        return F.linear(x, wf, b)
    return F.conv2d(x, wf, b, q.stride, q.padding, q.dilation, q.groups)


def _channel_mean_of_emulation(q: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The per-channel mean over (N, H, W) of the layer's emulated pre-activation on ``x``. A convolution is
    linear and its zero padding is the same for every image, so the mean over N commutes with it: one
    convolution of the batch's mean image gives exactly the mean of N convolutions."""
    acc = _Mean()
    acc.add(_emulate(q, x.mean(dim=0, keepdim=True)))
    return acc.value


def _set_bias(q: nn.Module, bias: torch.Tensor) -> None:
    q.set_weight_bias(q.weight(), bias.float())


def _float_statistics(prepared: nn.Module, names: list[str], images: torch.Tensor, batch: int,
                      quantized: dict[str, nn.Module] | None = None,
                      input_qparams: dict[str, tuple[float, int]] | None = None
                      ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per layer: the float pre-activation mean, and (when ``quantized`` is given) the mean of the INT8 layer
    on the same FP32 input rounded to its INT8 input grid: the layer's own error, for the fast variant."""
    model = _without_observers(prepared)
    modules = dict(model.named_modules())
    float_means = {n: _Mean() for n in names}
    own_means = {n: _Mean() for n in names}
    handles = []
    for name in names:
        core = _float_core(modules[name])

        def hook(mod, args, out, name=name):
            float_means[name].add(out)
            if quantized is not None:
                scale, zp = input_qparams[name]
                x = torch.quantize_per_tensor(args[0].detach(), scale, zp, torch.quint8).dequantize()
                # Rounding is per element; after it, the batch's mean image gives the mean exactly (linearity).
                own = _emulate(quantized[name], x.mean(dim=0, keepdim=True))
                own_means[name].add(own, images=len(x))

        handles.append(core.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch):
                model(images[i:i + batch])
    finally:
        for h in handles:
            h.remove()
    return ({n: m.value for n, m in float_means.items()},
            {n: m.value for n, m in own_means.items() if m.count} if quantized is not None else {})


def _without_observers(prepared: nn.Module) -> nn.Module:
    """A copy of a prepared model whose observers pass their input through: the float network alone. The copy
    keeps the shared prepared model's statistics as they are, and skipping the histogram updates is most of the
    cost of a float pass."""
    from torch.ao.quantization.observer import ObserverBase

    model = copy.deepcopy(prepared).eval()
    for m in model.modules():
        if isinstance(m, ObserverBase):
            m.forward = _identity
    return model


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _input_qparams(converted: nn.Module, layers: dict[str, nn.Module], example: torch.Tensor
                   ) -> dict[str, tuple[float, int]]:
    """Each INT8 layer's input scale and zero point, read from one image through the converted model."""
    found: dict[str, tuple[float, int]] = {}

    def record(mod, args, name):  # returns None: a pre-hook's return value would replace the layer's input
        found.setdefault(name, (float(args[0].q_scale()), int(args[0].q_zero_point())))

    handles = [m.register_forward_pre_hook(lambda mod, args, name=name: record(mod, args, name))
               for name, m in layers.items()]
    try:
        with torch.no_grad():
            converted(example)
    finally:
        for h in handles:
            h.remove()
    return found


def _accept(mode: BiasCorrection, bias: torch.Tensor, shift: torch.Tensor) -> bool:
    """NNCF's magnitude test: max |shift / bias| below the mode's threshold (a zero bias never passes a
    non-zero shift)."""
    ratio = (shift.abs() / bias.abs()).nan_to_num(nan=0.0, posinf=float("inf"))
    return bool(ratio.max() < MAX_RELATIVE_SHIFT[mode]) if ratio.numel() else False


def correct_bias(converted: nn.Module, reference: nn.Module, images: torch.Tensor, mode: BiasCorrection,
                 batch: int = 32) -> BiasCorrectionRecord:
    """Correct ``converted``'s INT8 layer biases in place towards ``reference`` (a calibrated prepared model
    of the float network to match, same layer names) on ``images``; the record of what was done."""
    if mode is BiasCorrection.NONE:
        raise ValueError("correct_bias called with mode none")
    if len(images) == 0:
        raise ShrinkwrapError("bias correction needs calibration images")
    t0 = time.perf_counter()
    converted.eval()
    layers = quantized_layers(converted)
    ref_names = set(dict(reference.named_modules()))
    layers = {n: m for n, m in layers.items() if n in ref_names}
    if len(images) > MAX_IMAGES:
        images = images[torch.linspace(0, len(images) - 1, MAX_IMAGES).round().long()]
    shifts: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    if mode is BiasCorrection.FAST:
        qparams = _input_qparams(converted, layers, images[:1])
        layers = {n: m for n, m in layers.items() if n in qparams}
        float_means, own = _float_statistics(reference, list(layers), images, batch, layers, qparams)
        for name, q in layers.items():
            shift = float_means[name] - own[name]
            bias = _weight_bias(q)[1]
            if _accept(mode, bias, shift):
                _set_bias(q, bias + shift)
                shifts[name] = shift
            else:
                skipped.append(name)
        used = len(images)
    else:
        float_means, _ = _float_statistics(reference, list(layers), images, batch)

        def pre(mod, args, name):
            x = args[0]
            x = x.dequantize() if x.is_quantized else x
            bias = _weight_bias(mod)[1]
            shift = float_means[name] - _channel_mean_of_emulation(mod, x)
            if _accept(mode, bias, shift):
                _set_bias(mod, bias + shift)
                shifts[name] = shift
            else:
                skipped.append(name)

        handles = [m.register_forward_pre_hook(lambda mod, args, name=name: pre(mod, args, name))
                   for name, m in layers.items()]
        try:
            with torch.no_grad():
                converted(images)
        finally:
            for h in handles:
                h.remove()
        used = len(images)
    max_shift = max((float(s.abs().max()) for s in shifts.values()), default=0.0)
    return BiasCorrectionRecord(mode=mode.value, images=int(used), layers=len(shifts), skipped=sorted(skipped),
                                max_abs_shift=max_shift, seconds=time.perf_counter() - t0)
