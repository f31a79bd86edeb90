"""Both INT8 lanes, parametrized over the registry: what each builds, what it covers, and that the eager
runtime's rebuilt structure is the built model (same state_dict keys, bit-identical outputs)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.ao.nn.quantized as nnq

from exporter.compress import quantize
from runtimes import architectures, quant_lanes, structure
from runtimes.errors import BadInputError, ShrinkwrapError
from runtimes.quant_lanes.eager_mode import NOT_EAGER, eager_lane_models
from runtimes.quant_lanes.fx_graph import REFUSED_FAMILIES

# A small model per lane, with the operators that lane has to get right: Hardswish/SE (MobileNetV3),
# SiLU kept float, depthwise convs, SE sigmoid x mul and residual adds (EfficientNet).
REPRESENTATIVE = {"eager": "mobilenet_v3_large", "fx": "efficientnet_b0"}
SIZE = 32


def test_every_registered_lane_has_a_representative():
    assert {lane.name for lane in quant_lanes.lanes()} == set(REPRESENTATIVE)


@pytest.fixture(scope="module", params=sorted(REPRESENTATIVE))
def calibrated(request):
    lane = quant_lanes.lane_named(request.param)
    arch = REPRESENTATIVE[request.param]
    torch.manual_seed(0)
    model = architectures.build_float_model(arch, 10)
    assert quant_lanes.lane_for(arch) is lane and quant_lanes.lane_of(model) is lane
    images = torch.randn(16, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    prepared = quantize.prepare_for_calibration(model, "minmax")
    quantize.calibrate(prepared, [images[:8], images[8:]])
    return arch, model, prepared, images


def test_convert_runs_fbgemm_integer_kernels(calibrated):
    arch, _, prepared, images = calibrated
    q = quantize.convert(prepared)
    convs = [m for m in q.modules() if isinstance(m, (torch.nn.Conv2d, nnq.Conv2d))]
    assert convs and all(isinstance(m, nnq.Conv2d) for m in convs)  # every conv is a quantized module
    traced = torch.jit.freeze(torch.jit.trace(q, images[:2], check_trace=False))
    kinds = {n.kind() for n in traced.graph.nodes()}
    assert "quantized::conv2d" in kinds or "quantized::conv2d_relu" in kinds
    assert not kinds & {"aten::_convolution", "aten::conv2d"}  # no float convolution left


@pytest.mark.parametrize("keep", ["classifier", "classifier+middle"])
def test_the_rebuilt_structure_is_the_built_model(calibrated, keep):
    """What the eager runtime rebuilds from the manifest (lane prepare + convert of an untrained model, keep
    given up front) loads the built model's state_dict and computes exactly what it computes."""
    arch, model, prepared, images = calibrated
    layers = quantize.quantizable_layers(prepared)
    names = [structure.classifier_name(model)] + ([layers[len(layers) // 2]] if "middle" in keep else [])
    built = quantize.convert(quantize.with_float_layers(prepared, names))
    rebuilt = structure.skeleton(arch, 10, "mixed", keep=names)
    assert set(rebuilt.state_dict()) == set(built.state_dict())
    rebuilt.load_state_dict(built.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt(images), built(images))
    ops = quantize.float_ops(built, images[:1])
    kept = [where for op, wheres in ops.items() for where in wheres if op in ("Linear", "Conv2d", "ConvReLU2d")]
    assert set(names) <= {w.removesuffix(".1") for w in kept} | set(kept), ops


def test_with_float_layers_matches_a_fresh_calibration_and_leaves_the_original(calibrated):
    arch, model, prepared, images = calibrated
    name = structure.classifier_name(model)
    before = quantize.convert(prepared)
    reused = quantize.convert(quantize.with_float_layers(prepared, [name]))
    fresh = quantize.prepare_for_calibration(model, "minmax", keep=[name])
    quantize.calibrate(fresh, [images[:8], images[8:]])
    with torch.no_grad():
        assert torch.equal(quantize.convert(fresh)(images), reused(images))
        assert torch.equal(quantize.convert(prepared)(images), before(images))  # the original is untouched


def test_unknown_layer_and_unprepared_model_are_refused(calibrated):
    _, model, prepared, _ = calibrated
    with pytest.raises(BadInputError, match="layer9"):
        quantize.with_float_layers(prepared, ["layer9.conv1"])
    with pytest.raises(ShrinkwrapError, match="observer"):
        quantize.with_float_layers(copy.deepcopy(model), [structure.classifier_name(model)])


def test_fx_lane_lists_what_runs_float():
    """EfficientNet's SiLU has no quantized kernel: the manifest lists every one, and nothing else."""
    _, _, prepared, images = _calibrated_fx()
    ops = quantize.float_ops(quantize.convert(prepared), images[:1])
    assert set(ops) == {"SiLU"} and len(ops["SiLU"]) == 49


def _calibrated_fx():
    torch.manual_seed(0)
    model = architectures.build_float_model("efficientnet_b0", 10)
    images = torch.randn(8, 3, SIZE, SIZE)
    prepared = quantize.prepare_for_calibration(model, "minmax")
    quantize.calibrate(prepared, [images])
    return "efficientnet_b0", model, prepared, images


def test_every_classifier_has_a_lane_or_a_one_line_reason():
    for arch in architectures.classifier_models():
        lane = quant_lanes.lane_for(arch)
        family = quant_lanes.base.family(arch)
        if arch in eager_lane_models() and family not in NOT_EAGER:
            assert lane.name == "eager", arch
        elif family in REFUSED_FAMILIES:
            assert lane is None
            with pytest.raises(BadInputError) as exc:
                structure.require_quant_lane(arch)
            assert REFUSED_FAMILIES[family] in str(exc.value) and "\n" not in str(exc.value)
        else:
            assert lane.name == "fx", arch
    assert quant_lanes.lane_for("shufflenet_v2_x1_0").name == "fx"  # quantizable builder, not exportable
