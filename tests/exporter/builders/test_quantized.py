"""The INT8 builder's record says where its bias correction was measured: on INT8 kernels outside the target's
class, the shifts are fitted to that CPU's arithmetic, which the manifest records."""

import pytest
import torch

from exporter.data import synthetic_images
from exporter.models import LoadedModel
from exporter.options import CalibrationOptions, CompressionOptions
from exporter.recipe import Recipe
from runtimes import host_cpu, targets
from runtimes.architectures import IMAGENET_PREPROCESS, build_float_model
from runtimes.manifest import WeightsRecord


@pytest.mark.parametrize("flags, outside", [({"avx2", "avx512_vnni"}, False), ({"avx2", "fma"}, True)])
def test_bias_correction_records_kernels_outside_the_target(monkeypatch, flags, outside):
    monkeypatch.setattr(host_cpu, "int8_kernel_flags", lambda: frozenset(flags))
    torch.manual_seed(0)
    loaded = LoadedModel("resnet18", build_float_model("resnet18", 4), 4, WeightsRecord("random", False, "UNTRAINED"),
                         IMAGENET_PREPROCESS)
    pre = IMAGENET_PREPROCESS.__class__(40, 32, IMAGENET_PREPROCESS.mean, IMAGENET_PREPROCESS.std)
    recipe = Recipe(loaded, synthetic_images(8, pre), "synthetic", CompressionOptions(),
                    calibration=CalibrationOptions(images=8, target=targets.DEFAULT_TARGET))
    bias = recipe.build_named("int8-dense", recipe.compression).quant.bias_correction
    assert bias is not None and bias.layers > 0
    assert (bias.outside_target is not None) is outside
    if outside:
        assert "saturate" in bias.outside_target and targets.OLDER_X86 in bias.outside_target
