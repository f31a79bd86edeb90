"""What an INT8 lane is, the shared qconfig, and the lane registry.

A *lane* is one way of turning a float torchvision classifier into an fbgemm/x86
INT8 model whose TorchScript runs integer kernels and whose ONNX export is QDQ.
Every lane composes the same steps, which the exporter calls in order:

    prepare (fuse + observers) → calibrate (the exporter feeds images) → convert

and offers :meth:`QuantLane.with_float_layers` (chosen layers stay FP32, from one
calibration) and :meth:`QuantLane.float_ops` (what runs float in a converted
model, for the manifest). A lane declares the classifiers it covers; a model is
served by the first registered lane that covers it. The eager runtime rebuilds a
converted structure with the same lane (prepare + convert of an untrained model,
then ``load_state_dict``), so nothing is ever unpickled as code.
"""

from __future__ import annotations

import functools
from typing import ClassVar, Iterable, Protocol

import torch
from torch import nn

from runtimes.errors import BadInputError

CALIB_METHODS = ("histogram", "minmax")


@functools.lru_cache(maxsize=None)
def family(arch: str) -> str:
    """torchvision's module of the builder: resnet, efficientnet, convnext, shufflenetv2, ..."""
    import torchvision.models as tvm

    return tvm.get_model_builder(arch).__module__.rsplit(".", 1)[-1]


def qconfig(method: str = "histogram", reduce_range: bool = True) -> "torch.ao.quantization.QConfig":
    """fbgemm static PTQ: per-channel symmetric INT8 weights, per-tensor affine UINT8 activations.

    ``reduce_range`` keeps activations in 7 bits, as torch's fbgemm default does, so that
    the u8*s8 multiply-accumulate cannot saturate on CPUs without VNNI; off, activations use
    all 8 bits (for VNNI/AMX deployment CPUs). Every lane uses this qconfig.
    """
    from torch.ao.quantization import QConfig
    from torch.ao.quantization import observer as obs

    act = {"histogram": obs.HistogramObserver, "minmax": obs.MinMaxObserver}
    if method not in act:
        raise BadInputError(f"unknown calibration method {method!r}; known: {', '.join(act)}")
    return QConfig(
        activation=act[method].with_args(dtype=torch.quint8, qscheme=torch.per_tensor_affine,
                                         reduce_range=reduce_range),
        weight=obs.PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric),
    )


def quantizable_layers(model: nn.Module) -> list[str]:
    """Fused Conv(+ReLU) modules, plain Conv2d and Linear, by name.

    Works on an unfused, fused or prepared model of either lane: fusion keeps the conv's name
    (BN and ReLU become Identity or disappear), so the names are the same in all three.
    """
    from torch.ao.nn.intrinsic import _FusedModule

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


class QuantLane(Protocol):
    """One way to INT8 (see the module doc). Implementations are registered with :func:`register_lane`."""

    name: ClassVar[str]  # short, recorded in the manifest: "eager", "fx"
    title: ClassVar[str]  # what `shrinkwrap models` shows

    def covers(self, arch: str) -> bool:
        """Whether this lane builds INT8 for the torchvision classifier ``arch``."""

    def float_model(self, arch: str, num_classes: int) -> nn.Module:
        """The untrained float model of ``arch`` in the structure this lane quantizes (eval mode)."""

    def owns(self, model: nn.Module) -> bool:
        """Whether ``model`` (float, prepared or converted) is in this lane's structure."""

    def prepare(self, model: nn.Module, method: str, keep: Iterable[str] = (), reduce_range: bool = True) -> nn.Module:
        """A fused, observed copy of the float ``model`` (``model`` is untouched); ``keep`` stay FP32."""

    def with_float_layers(self, prepared: nn.Module, keep: Iterable[str]) -> nn.Module:
        """A copy of a calibrated prepared model whose ``keep`` layers stay FP32 after :meth:`convert`,
        with the statistics a fresh calibration with ``keep`` would have collected."""

    def convert(self, prepared: nn.Module) -> nn.Module:
        """The INT8 model of a calibrated prepared model; ``prepared`` stays reusable."""

    def quantizable_layers(self, model: nn.Module) -> list[str]:
        """The layers that can be kept FP32 (convs and Linears, fused ones by the fused name)."""


_LANES: dict[str, QuantLane] = {}


def register_lane(cls: type) -> type:
    """Class decorator: register one instance of a lane; earlier registrations take precedence."""
    for attr in ("name", "title"):
        if not isinstance(getattr(cls, attr, None), str):
            raise TypeError(f"lane {cls.__name__} must declare {attr!r}")
    if cls.name in _LANES:
        raise ValueError(f"quantization lane {cls.name!r} registered twice")
    _LANES[cls.name] = cls()
    return cls


def lanes() -> tuple[QuantLane, ...]:
    return tuple(_LANES.values())


def lane_named(name: str) -> QuantLane:
    try:
        return _LANES[name]
    except KeyError:
        raise BadInputError(f"unknown quantization lane {name!r}; registered: {', '.join(_LANES)}") from None


def lane_for(arch: str) -> QuantLane | None:
    """The lane that builds INT8 for ``arch``; None when no lane does."""
    return next((lane for lane in _LANES.values() if lane.covers(arch)), None)


def lane_of(model: nn.Module) -> QuantLane:
    """The lane whose structure ``model`` is in (float, prepared or converted)."""
    lane = next((lane for lane in _LANES.values() if lane.owns(model)), None)
    if lane is None:
        raise BadInputError(f"{type(model).__name__} is in no INT8 lane's structure")
    return lane
