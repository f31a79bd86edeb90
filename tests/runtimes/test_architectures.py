"""The model catalogue: torchvision's own registry, described and built in one place."""

from __future__ import annotations

import pytest

from runtimes.architectures import (IMAGENET_PREPROCESS, build_float_model, check_model, classifier_weight_key,
                                    get_model_spec, model_specs)
from runtimes.errors import BadInputError


def test_registry_is_torchvisions_own():
    import torchvision.models as tvm

    specs = {m.name: m for m in model_specs()}
    assert set(specs) == set(tvm.list_models(module=tvm))
    eager = {n for n, m in specs.items() if m.quant_lane == "eager"}
    quantizable = {n.removeprefix("quantized_") for n in tvm.list_models(module=tvm.quantization)}
    assert eager == {n for n in quantizable if not n.startswith("shufflenet")}
    assert specs["efficientnet_b0"].quant_lane == specs["wide_resnet50_2"].quant_lane == "fx"
    assert specs["shufflenet_v2_x1_0"].quant_lane == "fx"  # its quantizable builder's INT8 cannot become ONNX
    refused = {n for n, m in specs.items() if m.quant_lane is None}
    assert refused == {n for n in specs if n.startswith(("vit_", "maxvit"))}
    assert all(specs[n].no_lane_reason for n in refused)
    # the default input size comes from the weights' own transforms
    assert get_model_spec("inception_v3").preprocess.crop == 299
    assert get_model_spec("resnet18").preprocess == IMAGENET_PREPROCESS
    assert specs["mobilenet_v3_large"].family == "mobilenetv3"


@pytest.mark.parametrize("arch,key", [("resnet18", "fc.weight"), ("mobilenet_v3_large", "classifier.3.weight"),
                                      ("efficientnet_b0", "classifier.1.weight"),
                                      ("squeezenet1_1", "classifier.1.weight")])
def test_classifier_weight_key_is_found_from_the_built_model(arch, key):
    assert classifier_weight_key(arch) == key
    assert key in build_float_model(arch, 10).state_dict()


def test_an_unknown_model_is_one_line_naming_torchvisions():
    with pytest.raises(BadInputError, match="unknown or unsupported model 'resnet19'.*resnet18") as info:
        check_model("resnet19")
    assert "\n" not in str(info.value)
