"""Label-free quantization-aware training: the calibrated INT8 model fine-tuned, fake-quantized, by distillation.

The student is a copy of the calibrated *prepared* model (fused, BatchNorm folded, observers filled by the
calibration), made to compute what its INT8 conversion will:

- every activation observer rounds its input to the INT8 grid it calibrated (scale and zero point frozen: a
  few hundred label-free images are too few to re-learn ranges, and frozen ranges keep the activation scales
  the calibration chose);
- every quantizable layer's weight is rounded per output channel to the symmetric INT8 grid of its current
  values, as the weight observer will at convert; rounding passes gradients straight through (Bengio et al.
  2013's straight-through estimator, via ``torch.fake_quantize_per_channel_affine``).

It learns the FP32 model's softened outputs (:func:`exporter.compress.distill.distill`, the slim recovery's
loop: KL at temperature T, SGD, cosine schedule, seeded augmentation, CUDA when present). Pruned weights stay
exactly zero (masks held). Afterwards the fake quantization is taken off: what is left is the same prepared
model with new float weights and the calibration's observers, which the lane's ``convert`` turns into INT8
as always, so the TorchScript and ONNX files carry the same integers, scales and zero points as the eager
model, by construction.

No lane-specific QAT preparation (``prepare_qat``/``prepare_qat_fx``) is needed: both lanes' prepared models
are made of the same observer modules and fused convolutions, so this works on either unchanged, and the
eager runtime rebuilds the converted structure exactly as for PTQ.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from exporter.compress.distill import distill
from exporter.options import FinetuneOptions
from exporter.progress import SILENT, Reporter
from runtimes.architectures import Preprocess
from runtimes.manifest import FinetuneRecord


class _WeightFakeQuant(nn.Module):
    """Per-output-channel symmetric INT8 rounding of a weight, as ``PerChannelMinMaxObserver(qint8,
    per_channel_symmetric)`` will quantize it at convert; the scale follows the weight, without gradient."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        amax = w.detach().abs().flatten(1).amax(dim=1).clamp_min(1e-12)
        scale = (amax / 127.5).float()  # torch's symmetric qint8: (max - min) / 2 over [-128, 127]
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -128, 127)


def _activation_fake_quant(observer: nn.Module):
    """A forward for a calibrated observer: round to the grid it calibrated, frozen."""
    scale, zero = observer.calculate_qparams()
    scale, zero = float(scale.reshape(-1)[0]), int(zero.reshape(-1)[0])
    # The dtype's whole range, not the observer's: with 7-bit activations (reduce_range) the observer chooses the
    # scale for [0, 127], but the converted model quantizes to quint8 and keeps values up to 255 (torch's
    # quantize_per_tensor and the kernels' requantization clamp to the dtype). Clamping at 127 would train the
    # student on clipped activations the INT8 model never clips.
    qmin, qmax = (0, 255) if observer.dtype == torch.quint8 else (-128, 127)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, qmin, qmax)

    return forward


def _cores(model: nn.Module, layers: list[str]) -> dict[str, nn.Module]:
    """The conv or Linear of each quantizable layer (a fused module's first child), by the name of its weight."""
    from torch.ao.nn.intrinsic import _FusedModule

    modules = dict(model.named_modules())
    out = {}
    for name in layers:
        m = modules[name]
        core, prefix = (m[0], f"{name}.0") if isinstance(m, _FusedModule) else (m, name)
        if isinstance(core, (nn.Conv2d, nn.Linear)):
            out[prefix] = core
    return out


def fake_quantized(prepared: nn.Module, layers: list[str]) -> nn.Module:
    """A copy of a calibrated prepared model that computes its INT8 conversion in float (see the module doc)."""
    from torch.ao.quantization.observer import ObserverBase
    from torch.nn.modules.batchnorm import _BatchNorm

    student = copy.deepcopy(prepared)
    for m in student.modules():
        if isinstance(m, ObserverBase) and getattr(m, "dtype", None) in (torch.quint8, torch.qint8):
            m.forward = _activation_fake_quant(m)
        elif isinstance(m, _BatchNorm):
            # A BatchNorm no conv absorbed keeps the statistics it was calibrated with: train() leaves it be.
            m.train = lambda mode=True, m=m: nn.Module.train(m, False)
    for core in _cores(student, layers).values():
        parametrize.register_parametrization(core, "weight", _WeightFakeQuant())
    return student


def made_plain(student: nn.Module) -> nn.Module:
    """The fake quantization taken off in place: trained float weights, the calibration's observers."""
    for m in student.modules():
        if "forward" in vars(m):
            del m.forward
        if "train" in vars(m):
            del m.train
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    return student.eval()


def _masks(student: nn.Module, layers: list[str]) -> dict[str, torch.Tensor]:
    """Keep-masks of the weights that hold exact zeros (pruned variants), keyed by the trained parameter's
    name (the parametrization's ``original``)."""
    masks = {}
    for prefix, core in _cores(student, layers).items():
        w = core.parametrizations.weight.original
        keep = w.detach() != 0
        if not bool(keep.all()):
            masks[f"{prefix}.parametrizations.weight.original"] = keep
    return masks


def qat(prepared: nn.Module, teacher: nn.Module, layers: list[str], opts: FinetuneOptions,
        preprocess: Preprocess, reporter: Reporter = SILENT) -> tuple[nn.Module, FinetuneRecord]:
    """A calibrated prepared model fine-tuned fake-quantized against ``teacher``; ``prepared`` is untouched.
    ``layers``: the quantizable layers (quantize.quantizable_layers) whose weights INT8 rounds."""
    student = fake_quantized(prepared, layers)
    record = distill(student, teacher, opts, preprocess, reporter, masks=_masks(student, layers))
    return made_plain(student), record
