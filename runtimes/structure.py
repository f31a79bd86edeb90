"""The module structure of every variant, shared by exporter and runtimes.

The exporter builds a variant by composing these steps with observers,
calibration and pruning. The eager runtime rebuilds the same *structure* from
the manifest record and loads the saved state_dict into it with
``torch.load(weights_only=True)``: nothing is ever unpickled as code, and the
runtime needs no ``exporter`` import.

Architectures come from :mod:`runtimes.architectures` (torchvision's own registry). INT8 comes from
the model's *lane* (:mod:`runtimes.quant_lanes`): eager-mode PTQ on torchvision's
quantizable builders, FX graph-mode PTQ for the other CNN families. Both APIs are
deprecated in favour of torchao/pt2e; the steps are isolated in the lanes and in
``exporter.compress.quantize``.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from runtimes import quant_lanes
from runtimes.architectures import build_float_model, check_model
from runtimes.classifier import classifier_name  # noqa: F401  (re-exported: part of the structure API)
from runtimes.errors import BadInputError
from runtimes.manifest import Precision
from runtimes.modules import Float32IO
from runtimes.quant_engine import QUANT_BACKEND, QUANT_ENGINE, set_quantized_engine  # noqa: F401
from runtimes.quant_lanes.base import qconfig  # noqa: F401  (re-exported)
from runtimes.quant_lanes.eager_mode import eager_lane_models  # noqa: F401  (re-exported)


def quant_lane(arch: str) -> quant_lanes.QuantLane:
    """The model's INT8 lane; one line saying why when it has none."""
    check_model(arch)
    lane = quant_lanes.lane_for(arch)
    if lane is None:
        from runtimes.quant_lanes.fx_graph import refusal

        raise BadInputError(
            f"model {arch!r} has no INT8 quantization lane ({refusal(arch) or 'no lane covers it'}); "
            "its float variants (fp32, fp32-pruned, fp16) and the ort-quantize-static peer work")
    return lane


def require_quant_lane(arch: str) -> None:
    """Refuse, with one line, a model no INT8 lane can build."""
    quant_lane(arch)


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
    """The converted INT8 structure with placeholder parameters, ready for ``load_state_dict``: the lane's
    prepare + convert of an untrained model (the observers saw nothing; every scale is then loaded)."""
    lane = quant_lane(arch)
    set_quantized_engine()
    model = resize(lane.float_model(arch, num_classes), shapes or {})
    import warnings

    with warnings.catch_warnings():  # "must run observer before calling calculate_qparams": by design here
        warnings.simplefilter("ignore")
        return lane.convert(lane.prepare(model, method, tuple(keep)))


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
