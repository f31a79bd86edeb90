"""The architectures shrinkwrap builds: torchvision's image classifiers, described and built in one place.

Both packages take models from here. The exporter adds weights (ImageNet, random, a
checkpoint: :mod:`exporter.models`); the runtimes rebuild a saved variant's structure
from its manifest record (:mod:`runtimes.structure`). Neither builds an architecture
any other way.

The catalogue is derived from torchvision's own registry (``list_models``,
``get_model_weights``): every classifier is a :class:`ModelSpec` with its family, its
INT8 lane (or the reason it has none), its class count and its default input size from
its ImageNet weights' own transforms. Models with an INT8 lane are built from that
lane's float structure (torchvision's *quantizable* builder for the eager lane: the
same parameter names as the plain model), so every variant of a run starts from one
float module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from torch import nn

from runtimes import quant_lanes
from runtimes.classifier import classifier_name
from runtimes.errors import BadInputError
from runtimes.quant_lanes.fx_graph import refusal


@dataclass(frozen=True)
class Preprocess:
    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


IMAGENET_PREPROCESS = Preprocess(256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
IMAGENET_WEIGHTS = "IMAGENET1K_V1"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # torchvision's module of the builder: resnet, mobilenetv3, efficientnet, ...
    quant_lane: str | None  # the INT8 lane's name (runtimes.quant_lanes): "eager", "fx"; None: float variants only
    preprocess: Preprocess  # from the ImageNet weights' own transforms (e.g. 299 px for inception_v3)
    weights: str  # the torchvision weights `--weights imagenet` loads
    num_classes: int
    no_lane_reason: str | None = None  # why no INT8 lane covers it


@functools.lru_cache(maxsize=1)
def classifier_models() -> tuple[str, ...]:
    """Every image classifier torchvision registers, sorted."""
    import torchvision.models as tvm

    return tuple(sorted(tvm.list_models(module=tvm)))


def check_model(arch: str) -> str:
    if arch not in classifier_models():
        import difflib

        close = difflib.get_close_matches(arch, classifier_models(), n=3, cutoff=0.5)
        hint = f"closest: {', '.join(close)}; " if close else ""
        raise BadInputError(f"unknown or unsupported model {arch!r}: not one of torchvision's image classifiers "
                            f"({hint}`shrinkwrap models` lists all {len(classifier_models())})")
    return arch


def _spec(name: str) -> ModelSpec:
    import torchvision.models as tvm

    enum_cls = tvm.get_model_weights(name)
    w = getattr(enum_cls, IMAGENET_WEIGHTS, None) or enum_cls.DEFAULT
    t = w.transforms()
    pre = Preprocess(int(t.resize_size[0]), int(t.crop_size[0]), tuple(t.mean), tuple(t.std))
    family = tvm.get_model_builder(name).__module__.rsplit(".", 1)[-1]
    lane = quant_lanes.lane_for(name)
    return ModelSpec(name, family, lane.name if lane else None, pre, f"{enum_cls.__name__}.{w.name}",
                     len(w.meta["categories"]), None if lane else refusal(name))


@functools.lru_cache(maxsize=None)
def get_model_spec(name: str) -> ModelSpec:
    check_model(name)
    return _spec(name)


def model_specs() -> list[ModelSpec]:
    """Every torchvision classifier, by name."""
    return [get_model_spec(n) for n in classifier_models()]


def build_float_model(arch: str, num_classes: int) -> nn.Module:
    """An untrained float model in eval mode, in the structure of the model's INT8 lane.

    Models of the eager lane are built from their quantizable builder (same parameter names
    as the plain model; QuantStub/DeQuantStub are identity until prepared), so that every
    variant of a run starts from one float module; the others from the plain builder.
    """
    check_model(arch)
    lane = quant_lanes.lane_for(arch)
    if lane is not None:
        return lane.float_model(arch, num_classes)
    import torchvision.models as tvm

    return tvm.get_model(arch, weights=None, num_classes=num_classes).eval()


def classifier_weight_key(arch: str) -> str:
    """The state_dict key of the architecture's classifier weight (``fc.weight``, ``classifier.1.weight``, ...)."""
    return f"{classifier_name(build_float_model(arch, get_model_spec(arch).num_classes))}.weight"
