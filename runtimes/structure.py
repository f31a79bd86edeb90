"""The module structure of every variant, shared by exporter and runtimes.

The exporter builds a variant by composing these steps with observers,
calibration and pruning. The eager runtime rebuilds the same *structure* from
the manifest record and loads the saved state_dict into it with
``torch.load(weights_only=True)``: nothing is ever unpickled as code, and the
runtime needs no ``exporter`` import.

Models come from torchvision's own registry (``list_models``). INT8 uses the
*eager-mode lane*: torch's ``torch.ao.quantization`` on torchvision's quantizable
builders (``torchvision.models.quantization``), which have QuantStub/DeQuantStub,
``fuse_model`` and FloatFunctional adds. A model without such a builder has no
INT8 lane here (float variants still work). Both APIs are deprecated in favour of
torchao/pt2e; the steps are isolated here and in ``exporter.quantize`` so that
migration touches two modules.
"""

from __future__ import annotations

import functools
from typing import Iterable

import torch
from torch import nn

from runtimes.errors import BadInputError
from runtimes.manifest import Precision
from runtimes.modules import Float32IO
from runtimes.quant_engine import QUANT_BACKEND, QUANT_ENGINE, set_quantized_engine  # noqa: F401

EAGER_LANE = "eager-mode PTQ (torchvision quantizable builder)"
_QUANTIZED_PREFIX = "quantized_"


@functools.lru_cache(maxsize=1)
def classifier_models() -> tuple[str, ...]:
    """Every image classifier torchvision registers, sorted."""
    import torchvision.models as tvm

    return tuple(sorted(tvm.list_models(module=tvm)))


@functools.lru_cache(maxsize=1)
def eager_lane_models() -> tuple[str, ...]:
    """The classifiers torchvision ships a quantizable (eager-mode INT8) builder for."""
    import torchvision.models as tvm

    names = tvm.list_models(module=tvm.quantization)
    return tuple(sorted(n.removeprefix(_QUANTIZED_PREFIX) for n in names))


def check_model(arch: str) -> str:
    if arch not in classifier_models():
        raise BadInputError(f"unknown or unsupported model {arch!r}; torchvision's classifiers are: "
                            f"{', '.join(classifier_models())}")
    return arch


def build_float_model(arch: str, num_classes: int) -> nn.Module:
    """An untrained float model in eval mode.

    Models with an eager INT8 lane are built from their quantizable builder (same
    parameter names as the plain model; QuantStub/DeQuantStub are identity until
    prepared), so that every variant of a run starts from one float module.
    """
    import torchvision.models as tvm

    check_model(arch)
    # GoogLeNet and Inception v3 warn unless told which init to use; torch's defaults are fast.
    kwargs = {"init_weights": False} if arch in ("googlenet", "inception_v3") else {}
    if arch in eager_lane_models():
        builder = tvm.get_model_builder(_QUANTIZED_PREFIX + arch)
        return builder(weights=None, quantize=False, num_classes=num_classes, **kwargs).eval()
    return tvm.get_model(arch, weights=None, num_classes=num_classes, **kwargs).eval()


def require_quant_lane(arch: str) -> None:
    """Refuse, with one line, a model the INT8 lane cannot build."""
    check_model(arch)
    if arch not in eager_lane_models():
        raise BadInputError(
            f"model {arch!r} has no INT8 quantization lane: eager-mode PTQ needs a torchvision "
            f"quantizable builder, which exists for {', '.join(eager_lane_models())}; "
            "its float variants (fp32, fp32-pruned, fp16) and the ort-quantize-static peer work")


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


def classifier_name(model: nn.Module) -> str:
    """The qualified name of the classifier: the last Linear layer in the model's module order,
    or, for models whose head is a convolution (SqueezeNet), the last Conv2d.

    Works on float, fused, prepared and converted models (names are kept by every step)
    and on the ``Float32IO`` wrapper of FP16 variants (its ``inner.`` prefix is dropped).
    """
    import torch.ao.nn.quantized as nnq

    linear, conv = (nn.Linear, nnq.Linear), (nn.Conv2d, nnq.Conv2d)
    names = [(n, m) for n, m in model.named_modules() if n]
    last_linear = [n for n, m in names if isinstance(m, linear)]
    last_conv = [n for n, m in names if isinstance(m, conv)]
    found = (last_linear or last_conv or [None])[-1]
    if found is None:
        raise BadInputError(f"{type(model).__name__} has no Linear or Conv2d layer to call its classifier")
    # A layer kept float sits inside Sequential(DeQuantStub, layer[, QuantStub]) as ".1".
    parent, _, last = found.rpartition(".")
    if last == "1" and isinstance(model.get_submodule(parent), nn.Sequential) and parent and \
            type(model.get_submodule(parent)[0]).__name__ in ("DeQuantStub", "DeQuantize"):
        found = parent
    return found.removeprefix("inner.")


def keep_float(model: nn.Module, names: Iterable[str], qc: torch.ao.quantization.QConfig) -> nn.Module:
    """Make the named modules run in FP32 inside a quantized model.

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
        parent, attr = _parent(model, name)
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


def resize(model: nn.Module, shapes: dict[str, list[int]]) -> nn.Module:
    """Give each named conv, Linear and BatchNorm the recorded shape (a channel-pruned structure), with
    placeholder parameters that ``load_state_dict`` then fills."""
    modules = dict(model.named_modules())
    for name, shape in shapes.items():
        m = modules.get(name)
        if m is None:
            raise BadInputError(f"the recorded structure names a layer {name!r} that {type(model).__name__} lacks")
        if isinstance(m, nn.Conv2d):
            if m.groups > 1 and m.groups == m.in_channels:  # depthwise: follows its input's width
                m.groups = m.in_channels = m.out_channels = shape[0]
            else:
                m.out_channels, m.in_channels = shape[0], shape[1] * m.groups
        elif isinstance(m, nn.Linear):
            m.out_features, m.in_features = shape[0], shape[1]
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.num_features = shape[0]
            for buf in ("running_mean", "running_var"):
                setattr(m, buf, torch.zeros(shape[0]))
        else:
            raise BadInputError(f"cannot resize {name!r} ({type(m).__name__})")
        weight_shape = shape if not isinstance(m, nn.modules.batchnorm._BatchNorm) else [shape[0]]
        m.weight = nn.Parameter(torch.zeros(weight_shape))
        if getattr(m, "bias", None) is not None:
            m.bias = nn.Parameter(torch.zeros(shape[0]))
    return model


def quantized_skeleton(arch: str, num_classes: int, keep: Iterable[str] = (),
                       method: str = "histogram", shapes: dict[str, list[int]] | None = None) -> nn.Module:
    """The converted INT8 structure with placeholder parameters, ready for ``load_state_dict``."""
    from torch.ao.quantization import convert, prepare

    require_quant_lane(arch)
    set_quantized_engine()
    model = fuse(resize(build_float_model(arch, num_classes), shapes or {}))
    qc = qconfig(method)
    model.qconfig = qc
    keep_float(model, keep, qc)
    prepare(model, inplace=True)
    convert(model, inplace=True)
    return model


def skeleton(arch: str, num_classes: int, precision: str, keep: Iterable[str] = (),
             shapes: dict[str, list[int]] | None = None) -> nn.Module:
    """The eager structure of a variant of the given precision, for loading its state_dict;
    ``shapes``: a channel-pruned variant's layer shapes (see :func:`resize`)."""
    if precision in (Precision.INT8.value, Precision.MIXED.value):
        return quantized_skeleton(arch, num_classes, keep, shapes=shapes)
    model = resize(build_float_model(arch, num_classes), shapes or {})
    if precision == Precision.FP16.value:
        return Float32IO(model.half(), torch.float16).eval()
    return model


def state_dict_bytes_safe_load(path) -> dict:
    """Load a saved state_dict without unpickling code."""
    return torch.load(path, map_location="cpu", weights_only=True)
