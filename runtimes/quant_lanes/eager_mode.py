"""The eager-mode lane: ``torch.ao.quantization`` on torchvision's quantizable builders.

``torchvision.models.quantization`` ships hand-written quantizable versions of
ResNet/ResNeXt, MobileNet V2/V3, ShuffleNet V2, GoogLeNet and Inception v3, with
QuantStub/DeQuantStub, ``fuse_model`` and FloatFunctional adds; their parameter
names are the plain models', so plain checkpoints load into them. This lane
keeps them: it is the one torch and torchvision tested those families with.
"""

from __future__ import annotations

import copy
import functools
from typing import Iterable

from torch import nn

from runtimes.classifier import classifier_name, parent_of
from runtimes.errors import BadInputError, ShrinkwrapError
from runtimes.quant_engine import set_quantized_engine
from runtimes.quant_lanes.base import family, qconfig, quantizable_layers, register_lane

_QUANTIZED_PREFIX = "quantized_"
_BUILDER_PACKAGE = "torchvision.models.quantization"


@functools.lru_cache(maxsize=1)
def eager_lane_models() -> tuple[str, ...]:
    """The classifiers torchvision ships a quantizable (eager-mode INT8) builder for."""
    import torchvision.models as tvm

    names = tvm.list_models(module=tvm.quantization)
    return tuple(sorted(n.removeprefix(_QUANTIZED_PREFIX) for n in names))


# Families with a quantizable builder that the eager lane still does not serve (the FX lane does), and why.
NOT_EAGER = {
    "shufflenetv2": "torch's TorchScript-based ONNX exporter cannot export its quantized channel split "
                    "(x.chunk then FloatFunctional.cat: 'expected the output of Slice to be a quantized tensor')",
}


def fuse(model: nn.Module) -> nn.Module:
    """Conv+BN(+ReLU) fusion in place (eval mode: BN folded into the conv), by the builder's own ``fuse_model``."""
    model.eval()
    model.fuse_model(is_qat=False)
    return model


def keep_float(model: nn.Module, names: Iterable[str], qc) -> nn.Module:
    """Make the named modules run in FP32 inside a model about to be prepared.

    Each becomes ``Sequential(DeQuantStub, module, QuantStub)``: the module gets no
    qconfig, and the QuantStub re-quantizes its output with its own observer, so
    the rest of the network is unchanged. The classifier is the last layer: its
    output is already dequantized, so it gets no QuantStub (and the model's own
    DeQuantStub becomes the identity).
    """
    from torch.ao.quantization import DeQuantStub, QuantStub

    names = tuple(names)
    classifier = classifier_name(model) if names else ""
    for name in names:
        parent, attr = parent_of(model, name)
        inner = getattr(parent, attr)
        inner.qconfig = None
        for sub in inner.modules():
            sub.qconfig = None
        if name == classifier:
            wrapped = nn.Sequential(DeQuantStub(), inner)
            model.dequant = nn.Identity()
        else:
            requant = QuantStub()
            requant.qconfig = qc
            wrapped = nn.Sequential(DeQuantStub(), inner, requant)
        wrapped[0].qconfig = qc
        setattr(parent, attr, wrapped)
    return model


def _float_copy(layer: nn.Module) -> nn.Module:
    """The layer without qconfig, observer or observer hook: convert leaves it float."""
    # Private, but it is exactly the clean-up torch's own convert() does (observer child + the
    # forward hook prepare() registered); eager-mode quantization is frozen upstream.
    from torch.ao.quantization.quantize import _remove_qconfig

    plain = copy.deepcopy(layer)
    _remove_qconfig(plain)
    for sub in plain.modules():
        sub.qconfig = None
    return plain


def _float_wrapper(layer: nn.Module, observer: nn.Module, qc, requantize: bool) -> nn.Sequential:
    from torch.ao.quantization import DeQuantStub, QuantStub
    from torch.ao.quantization import prepare as ao_prepare

    dequant = DeQuantStub()
    dequant.qconfig = qc
    if not requantize:
        return nn.Sequential(dequant, layer)
    requant = QuantStub()
    requant.qconfig = qc
    wrapped = nn.Sequential(dequant, layer, requant)
    # prepare() gives the QuantStub its observer hook; the statistics come from the original.
    ao_prepare(wrapped, inplace=True)
    requant.activation_post_process = copy.deepcopy(observer)
    return wrapped


@register_lane
class EagerModeLane:
    name = "eager"
    title = "eager-mode PTQ (torchvision quantizable builder)"

    def covers(self, arch: str) -> bool:
        return arch in eager_lane_models() and family(arch) not in NOT_EAGER

    def float_model(self, arch: str, num_classes: int) -> nn.Module:
        import torchvision.models as tvm

        # GoogLeNet and Inception v3 warn unless told which init to use; torch's defaults are fast.
        kwargs = {"init_weights": False} if arch in ("googlenet", "inception_v3") else {}
        builder = tvm.get_model_builder(_QUANTIZED_PREFIX + arch)
        return builder(weights=None, quantize=False, num_classes=num_classes, **kwargs).eval()

    def owns(self, model: nn.Module) -> bool:
        return type(model).__module__.startswith(_BUILDER_PACKAGE)

    def prepare(self, model: nn.Module, method: str, keep: Iterable[str] = (), reduce_range: bool = True) -> nn.Module:
        from torch.ao.quantization import prepare as ao_prepare

        set_quantized_engine()
        prepared = fuse(copy.deepcopy(model))
        qc = qconfig(method, reduce_range)
        prepared.qconfig = qc
        keep_float(prepared, tuple(keep), qc)
        return ao_prepare(prepared, inplace=True).eval()

    def with_float_layers(self, prepared: nn.Module, keep: Iterable[str]) -> nn.Module:
        """Each kept layer becomes ``Sequential(DeQuantStub, float layer, QuantStub)`` as in :func:`keep_float`;
        the QuantStub gets a copy of the layer's own output observer (the calibration forward pass is float
        either way, so those are the statistics a calibration with ``keep`` would have collected)."""
        keep = tuple(dict.fromkeys(keep))
        out = copy.deepcopy(prepared)
        candidates = set(quantizable_layers(out))
        classifier = classifier_name(out)
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

    def convert(self, prepared: nn.Module) -> nn.Module:
        from torch.ao.quantization import convert as ao_convert

        set_quantized_engine()
        return ao_convert(copy.deepcopy(prepared), inplace=False).eval()

    def quantizable_layers(self, model: nn.Module) -> list[str]:
        return quantizable_layers(model)
