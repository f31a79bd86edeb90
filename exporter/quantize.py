"""Static post-training INT8 quantization (fbgemm) as small composable steps.

prepare (fuse + qconfig + observers) → calibrate → convert. The model
structure (fusion, qconfig, which layers stay float) comes from
``runtimes.structure`` so that the eager runtime rebuilds exactly the same
modules when it loads a saved state_dict.

:func:`with_float_layers` lets the accuracy-budget search try many
"these layers stay FP32" choices from ONE calibration: a calibrated prepared
model already holds every activation statistic the mixed model needs.
"""

from __future__ import annotations

import copy
from typing import Iterable

import torch
from torch import nn
from torch.ao.nn.intrinsic import _FusedModule
from torch.ao.quantization import DeQuantStub, QuantStub
from torch.ao.quantization import convert as _ao_convert
from torch.ao.quantization import prepare as _ao_prepare
# Private, but it is exactly the clean-up torch's own convert() does (observer
# child + the forward hook prepare() registered); eager-mode quantization is
# deprecated and frozen, and this module is the one place that touches it.
from torch.ao.quantization.quantize import _remove_qconfig

from exporter.errors import BadInputError, ShrinkwrapError
from runtimes import structure


def prepare_for_calibration(model: nn.Module, method: str = "histogram",
                            keep: Iterable[str] = ()) -> nn.Module:
    """A fused, observed copy of a float quantizable model; ``model`` is untouched."""
    structure.set_quantized_engine()
    prepared = structure.fuse(copy.deepcopy(model))
    qc = structure.qconfig(method)
    prepared.qconfig = qc
    structure.keep_float(prepared, tuple(keep), qc)
    return _ao_prepare(prepared, inplace=True).eval()


def calibrate(prepared: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Feed ``batches`` through the observers; returns the number of images seen."""
    prepared.eval()
    seen = 0
    # no_grad rather than inference_mode: observers update their buffers in
    # place, and inference tensors could not be updated by a later calibration.
    with torch.no_grad():
        for batch in batches:
            prepared(batch)
            seen += int(batch.shape[0])
    if seen == 0:
        raise ShrinkwrapError("calibration saw no images (empty batch iterator)")
    return seen


def convert(prepared: nn.Module) -> nn.Module:
    """The INT8 model of a calibrated prepared model; the prepared one stays reusable."""
    structure.set_quantized_engine()
    return _ao_convert(copy.deepcopy(prepared), inplace=False).eval()


def quantize_static(model: nn.Module, batches: Iterable[torch.Tensor], method: str = "histogram",
                    keep: Iterable[str] = ()) -> tuple[nn.Module, int]:
    """The whole recipe: returns the converted model and the number of calibration images."""
    prepared = prepare_for_calibration(model, method, keep)
    seen = calibrate(prepared, batches)
    return convert(prepared), seen


def quantizable_layers(model: nn.Module) -> list[str]:
    """Layers that can be kept FP32: fused Conv(+ReLU) modules, plain Conv2d and Linear.

    Works on an unfused, fused or prepared model: fusion keeps the conv's name
    (BN and ReLU become Identity), so the names are the same in all three.
    """
    names: list[str] = []
    inside_fused: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(f + ".") for f in inside_fused):
            continue
        if isinstance(module, _FusedModule):
            inside_fused.append(name)
            names.append(name)
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            names.append(name)
    return names


def with_float_layers(prepared: nn.Module, keep: Iterable[str]) -> nn.Module:
    """A copy of a calibrated prepared model whose named layers stay FP32 after :func:`convert`.

    Each layer becomes ``Sequential(DeQuantStub, float layer, QuantStub)`` as in
    ``structure.keep_float``; the QuantStub gets a copy of the layer's own output
    observer, so the statistics are the ones a fresh calibration with
    ``keep`` would have collected (the calibration forward pass is float either way).
    """
    keep = tuple(dict.fromkeys(keep))
    out = copy.deepcopy(prepared)
    candidates = set(quantizable_layers(out))
    classifier = structure.classifier_name(out)
    for name in keep:
        if name not in candidates:
            raise BadInputError(f"{name!r} is not a quantizable layer of this model; "
                                f"candidates: {', '.join(quantizable_layers(out))}")
        layer = out.get_submodule(name)
        observer = getattr(layer, "activation_post_process", None)
        qc = getattr(layer, "qconfig", None) or getattr(out, "qconfig", None)
        if observer is None or qc is None:
            raise ShrinkwrapError(f"layer {name!r} has no observer: pass a prepared, calibrated model")
        wrapped = _float_wrapper(_float_copy(layer), observer, qc, requantize=name != classifier)
        if name == classifier:
            out.dequant = nn.Identity()
        parent_name, _, attr = name.rpartition(".")
        setattr(out.get_submodule(parent_name), attr, wrapped)
    return out


def _float_copy(layer: nn.Module) -> nn.Module:
    """The layer without qconfig, observer or observer hook: convert leaves it float."""
    plain = copy.deepcopy(layer)
    _remove_qconfig(plain)
    for sub in plain.modules():
        sub.qconfig = None
    return plain


def _float_wrapper(layer: nn.Module, observer: nn.Module, qc, requantize: bool) -> nn.Sequential:
    dequant = DeQuantStub()
    dequant.qconfig = qc
    if not requantize:
        return nn.Sequential(dequant, layer)
    requant = QuantStub()
    requant.qconfig = qc
    wrapped = nn.Sequential(dequant, layer, requant)
    # prepare() gives the QuantStub its observer hook; the statistics come from the original.
    _ao_prepare(wrapped, inplace=True)
    requant.activation_post_process = copy.deepcopy(observer)
    return wrapped
