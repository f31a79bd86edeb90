"""Static post-training INT8 quantization (fbgemm/x86) as small composable steps.

prepare (fuse + qconfig + observers) → calibrate → convert, each step done by
the model's INT8 lane (:mod:`runtimes.quant_lanes`: eager mode for torchvision's
quantizable builders, FX graph mode for the other families), so that the eager
runtime rebuilds exactly the same modules when it loads a saved state_dict.

:func:`with_float_layers` lets the accuracy-budget search try many "these layers
stay FP32" choices from ONE calibration: a calibrated prepared model already
holds every activation statistic the mixed model needs.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from exporter.errors import ShrinkwrapError
from runtimes import quant_lanes
from runtimes.targets import DEFAULT_TARGET, get_target

# The default target's activation width (runtimes.targets): 8 bits, for VNNI/AMX CPUs.
DEFAULT_REDUCE_RANGE = get_target(DEFAULT_TARGET).reduce_range


def prepare_for_calibration(model: nn.Module, method: str = "histogram",
                            keep: Iterable[str] = (), reduce_range: bool = DEFAULT_REDUCE_RANGE) -> nn.Module:
    """A fused, observed copy of a float model in its lane's structure; ``model`` is untouched."""
    return quant_lanes.lane_of(model).prepare(model, method, tuple(keep), reduce_range)


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
    return quant_lanes.lane_of(prepared).convert(prepared)


def quantize_static(model: nn.Module, batches: Iterable[torch.Tensor], method: str = "histogram",
                    keep: Iterable[str] = (), reduce_range: bool = DEFAULT_REDUCE_RANGE) -> tuple[nn.Module, int]:
    """The whole recipe: returns the converted model and the number of calibration images."""
    prepared = prepare_for_calibration(model, method, keep, reduce_range)
    seen = calibrate(prepared, batches)
    return convert(prepared), seen


def quantizable_layers(model: nn.Module) -> list[str]:
    """Layers that can be kept FP32: fused Conv(+ReLU) modules, plain Conv2d and Linear (same names
    in the float, fused and prepared models)."""
    return quant_lanes.lane_of(model).quantizable_layers(model)


def with_float_layers(prepared: nn.Module, keep: Iterable[str]) -> nn.Module:
    """A copy of a calibrated prepared model whose named layers stay FP32 after :func:`convert`,
    with the statistics a fresh calibration with ``keep`` would have collected."""
    return quant_lanes.lane_of(prepared).with_float_layers(prepared, keep)


def float_ops(converted: nn.Module, example: torch.Tensor) -> dict[str, list[str]]:
    """What runs float inside a converted model (operator type -> where), measured on ``example``."""
    return quant_lanes.float_ops(converted, example)
