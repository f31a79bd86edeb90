import copy

import pytest
import torch
import torch.ao.nn.intrinsic as nni
import torch.ao.nn.intrinsic.quantized as nniq
import torch.ao.nn.quantized as nnq
from torch import nn

from exporter.compress import quantize
from exporter.errors import BadInputError, ShrinkwrapError
from runtimes import structure



@pytest.fixture(scope="module")
def calibrated(float_model, batches):
    prepared = quantize.prepare_for_calibration(float_model)
    assert quantize.calibrate(prepared, batches) == 8
    return prepared


@pytest.fixture(scope="module")
def inputs():
    return torch.randn(6, 3, 64, 64, generator=torch.Generator().manual_seed(2))


def test_quantize_static_is_int8_and_close_to_float(float_model, batches, inputs):
    q, seen = quantize.quantize_static(float_model, batches)
    assert seen == 8
    assert torch.backends.quantized.engine == structure.QUANT_ENGINE
    assert isinstance(q.conv1, nniq.ConvReLU2d)
    assert isinstance(q.layer1[0].conv2, nnq.Conv2d)
    assert isinstance(q.layer2[0].downsample[0], nnq.Conv2d)
    assert isinstance(q.fc, nnq.Linear)
    assert q.fc.weight().dtype == torch.qint8
    with torch.no_grad():
        ref, out = float_model(inputs), q(inputs)
    cos = nn.functional.cosine_similarity(ref, out, dim=1)
    assert cos.min() > 0.98, cos
    # the input model is not fused or observed by quantizing it
    assert isinstance(float_model.bn1, nn.BatchNorm2d)
    assert not hasattr(float_model.conv1, "activation_post_process")


def test_calibrate_rejects_no_batches(float_model):
    prepared = quantize.prepare_for_calibration(float_model, method="minmax")
    with pytest.raises(ShrinkwrapError, match="no images"):
        quantize.calibrate(prepared, [])


def test_unknown_method_is_bad_input(float_model):
    with pytest.raises(BadInputError):
        quantize.prepare_for_calibration(float_model, method="entropy")


def test_convert_leaves_the_calibrated_model_reusable(calibrated, inputs):
    a, b = quantize.convert(calibrated), quantize.convert(calibrated)
    assert hasattr(calibrated.conv1, "activation_post_process")
    with torch.no_grad():
        assert torch.equal(a(inputs), b(inputs))


def test_quantizable_layers(float_model, calibrated):
    names = quantize.quantizable_layers(calibrated)
    assert names[0] == "conv1" and names[-1] == "fc"
    assert "layer1.0.conv1" in names and "layer2.0.downsample.0" in names
    assert not any(n.endswith("conv1.0") for n in names)  # not the conv inside a fused module
    assert len(names) == 21  # 20 convs + fc in resnet18
    assert quantize.quantizable_layers(float_model) == names


@pytest.mark.parametrize("name", ["layer1.0.conv1", "layer2.0.downsample.0", "fc"])
def test_with_float_layers_matches_a_fresh_calibration(float_model, batches, calibrated, inputs, name):
    reused = quantize.convert(quantize.with_float_layers(calibrated, [name]))
    fresh_prepared = quantize.prepare_for_calibration(float_model, keep=[name])
    quantize.calibrate(fresh_prepared, batches)
    fresh = quantize.convert(fresh_prepared)

    kept = reused.get_submodule(name)
    assert isinstance(kept, nn.Sequential)
    layer = kept[1]
    assert isinstance(layer, (nni.ConvReLU2d, nn.Conv2d, nn.Linear))
    assert all(p.dtype == torch.float32 for p in layer.parameters())
    for sub in layer.modules():
        assert not hasattr(sub, "activation_post_process")
        assert not sub._forward_hooks and not sub._forward_pre_hooks
    if name == "fc":
        assert len(kept) == 2 and isinstance(reused.dequant, nn.Identity)
    else:
        assert isinstance(kept[2], nnq.Quantize)
        assert kept[2].scale == fresh.get_submodule(name)[2].scale
    with torch.no_grad():
        torch.testing.assert_close(reused(inputs), fresh(inputs), rtol=1e-5, atol=1e-5)
    # the calibrated model itself is untouched
    assert hasattr(calibrated.get_submodule(name), "activation_post_process")


def test_with_float_layers_changes_the_output(calibrated, inputs):
    full = quantize.convert(calibrated)
    mixed = quantize.convert(quantize.with_float_layers(calibrated, ["conv1", "fc"]))
    with torch.no_grad():
        assert not torch.equal(full(inputs), mixed(inputs))


def test_with_float_layers_rejects_unknown_layer(calibrated):
    with pytest.raises(BadInputError, match="layer9"):
        quantize.with_float_layers(calibrated, ["layer9.0.conv1"])


def test_with_float_layers_needs_a_prepared_model(float_model):
    with pytest.raises(ShrinkwrapError, match="observer"):
        quantize.with_float_layers(copy.deepcopy(float_model), ["fc"])
