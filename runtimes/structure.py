"""The module structure of every variant, shared by exporter and runtimes.

The exporter builds a variant by composing these steps with observers,
calibration and pruning. The eager runtime rebuilds the same *structure* from
the manifest record and loads the saved state_dict into it with
``torch.load(weights_only=True)``: nothing is ever unpickled as code, and the
runtime needs no ``exporter`` import.

Quantization uses torch's eager-mode ``torch.ao.quantization`` on torchvision's
quantizable models (``torchvision.models.quantization``). Both are deprecated in
favour of torchao/pt2e; the steps are isolated here and in
``exporter.quantize`` so that migration touches two modules.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from runtimes.errors import BadInputError
from runtimes.modules import Float32IO

import os

# The qconfig/observer recipe (recorded in the manifest as the quantization backend).
QUANT_BACKEND = "fbgemm"
# The kernels that run quantized ops. "x86" is PyTorch's x86 engine: fbgemm kernels, with
# oneDNN where it is faster; it runs fbgemm-quantized models unchanged and measured ~13%
# faster than plain "fbgemm" for INT8 ResNet-18 on this project's 2-core AVX-512 VNNI machine.
QUANT_ENGINE = os.environ.get("SHRINKWRAP_QENGINE", "x86")

# torchvision.models.quantization has fusable variants of these architectures.
SUPPORTED_MODELS = ("resnet18", "resnet50", "resnext101_32x8d", "resnext101_64x4d",
                    "wide_resnet50_2")



def set_quantized_engine() -> str:
    """Select the quantized engine (packed weights are packed for the engine active at load)."""
    if QUANT_ENGINE not in torch.backends.quantized.supported_engines:
        raise BadInputError(f"quantized engine {QUANT_ENGINE!r} is not supported here; "
                            f"supported: {', '.join(torch.backends.quantized.supported_engines)}")
    torch.backends.quantized.engine = QUANT_ENGINE
    return torch.backends.quantized.engine


def build_float_model(arch: str, num_classes: int) -> nn.Module:
    """An untrained quantizable torchvision model (float; QuantStub/DeQuantStub are identity until prepared)."""
    import torchvision.models.quantization as qmodels

    if arch not in SUPPORTED_MODELS:
        raise BadInputError(f"unknown or unsupported model {arch!r}; supported: {', '.join(SUPPORTED_MODELS)}")
    builder = getattr(qmodels, arch)
    return builder(weights=None, quantize=False, num_classes=num_classes).eval()


def fuse(model: nn.Module) -> nn.Module:
    """Conv+BN(+ReLU) fusion in place (eval mode: BN folded into the conv)."""
    model.eval()
    model.fuse_model(is_qat=False)
    return model


def qconfig(method: str = "histogram") -> torch.ao.quantization.QConfig:
    """fbgemm static PTQ: per-channel symmetric INT8 weights, per-tensor affine UINT8 activations.

    ``reduce_range`` keeps activations in 7 bits, as torch's fbgemm default does, so that
    the u8*s8 multiply-accumulate cannot saturate on CPUs without VNNI.
    """
    from torch.ao.quantization import observer as obs

    act = {"histogram": obs.HistogramObserver, "minmax": obs.MinMaxObserver}
    if method not in act:
        raise BadInputError(f"unknown calibration method {method!r}; known: {', '.join(act)}")
    return torch.ao.quantization.QConfig(
        activation=act[method].with_args(dtype=torch.quint8, qscheme=torch.per_tensor_affine,
                                         reduce_range=True),
        weight=obs.PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                      qscheme=torch.per_channel_symmetric),
    )


def keep_float(model: nn.Module, names: Iterable[str], qc: torch.ao.quantization.QConfig) -> nn.Module:
    """Make the named modules run in FP32 inside a quantized model.

    Each becomes ``Sequential(DeQuantStub, module, QuantStub)``: the module gets no
    qconfig, and the QuantStub re-quantizes its output with its own observer, so
    the rest of the network is unchanged. The classifier is the last layer: its
    output is already dequantized, so it gets no QuantStub (and the model's own
    DeQuantStub becomes the identity).
    """
    from torch.ao.quantization import DeQuantStub, QuantStub

    for name in names:
        parent, attr = _parent(model, name)
        inner = getattr(parent, attr)
        inner.qconfig = None
        for sub in inner.modules():
            sub.qconfig = None
        if name == classifier_name(model):
            wrapped = nn.Sequential(DeQuantStub(), inner)
            model.dequant = nn.Identity()
        else:
            requant = QuantStub()
            requant.qconfig = qc
            wrapped = nn.Sequential(DeQuantStub(), inner, requant)
        wrapped[0].qconfig = qc
        setattr(parent, attr, wrapped)
    return model


def classifier_name(model: nn.Module) -> str:
    return "fc"


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parts = name.split(".")
    parent = model
    try:
        for p in parts[:-1]:
            parent = getattr(parent, p)
        getattr(parent, parts[-1])
    except AttributeError:
        raise BadInputError(f"model has no layer named {name!r}") from None
    return parent, parts[-1]


def quantized_skeleton(arch: str, num_classes: int, keep: Iterable[str] = (),
                       method: str = "histogram") -> nn.Module:
    """The converted INT8 structure with placeholder parameters, ready for ``load_state_dict``."""
    from torch.ao.quantization import convert, prepare

    set_quantized_engine()
    model = fuse(build_float_model(arch, num_classes))
    qc = qconfig(method)
    model.qconfig = qc
    keep_float(model, keep, qc)
    prepare(model, inplace=True)
    convert(model, inplace=True)
    return model


def skeleton(arch: str, num_classes: int, precision: str, keep: Iterable[str] = ()) -> nn.Module:
    """The eager structure of a variant of the given precision, for loading its state_dict."""
    if precision in ("int8", "mixed"):
        return quantized_skeleton(arch, num_classes, keep)
    model = build_float_model(arch, num_classes)
    if precision == "fp16":
        return Float32IO(model.half(), torch.float16).eval()
    return model


def state_dict_bytes_safe_load(path) -> dict:
    """Load a saved state_dict without unpickling code."""
    return torch.load(path, map_location="cpu", weights_only=True)
