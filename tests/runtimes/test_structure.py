"""Model structure: torchvision's builders, the classifier found from the model, the INT8 lane's refusal."""

import pytest
import torch

from runtimes import architectures, structure
from runtimes.errors import BadInputError

CLASSIFIERS = {"resnet18": "fc", "mobilenet_v2": "classifier.1", "mobilenet_v3_small": "classifier.3",
               "squeezenet1_0": "classifier.1", "efficientnet_b0": "classifier.1", "vit_b_16": "heads.head",
               "googlenet": "fc", "convnext_tiny": "classifier.2", "regnet_x_400mf": "fc"}


@pytest.mark.parametrize("arch,name", CLASSIFIERS.items())
def test_classifier_is_found_from_the_model(arch, name):
    model = architectures.build_float_model(arch, 7)
    assert structure.classifier_name(model) == name
    out_features = getattr(model.get_submodule(name), "out_features", None) or \
        model.get_submodule(name).out_channels
    assert out_features == 7


def test_classifier_name_survives_quantization_and_keep_float():
    from exporter.compress import quantize

    model = architectures.build_float_model("resnet18", 10)
    prepared = quantize.prepare_for_calibration(model, "minmax", keep=("fc",))
    quantize.calibrate(prepared, [torch.randn(2, 3, 32, 32)])
    converted = quantize.convert(prepared)
    assert structure.classifier_name(prepared) == "fc" and structure.classifier_name(converted) == "fc"
    fp16 = structure.skeleton("resnet18", 10, "fp16")
    assert structure.classifier_name(fp16) == "fc"


def test_lane_refusal_is_one_clear_line():
    with pytest.raises(BadInputError) as exc:
        structure.quantized_skeleton("vit_b_16", 10)
    assert "has no INT8 quantization lane" in str(exc.value) and "\n" not in str(exc.value)
    assert "MultiheadAttention" in str(exc.value)  # the reason
    assert architectures.build_float_model("vit_b_16", 3).heads.head.out_features == 3  # float still works
    with pytest.raises(BadInputError, match="unknown or unsupported model"):
        architectures.build_float_model("resnet19", 3)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_a_channel_pruned_structure_is_rebuilt_from_its_shapes(precision):
    """The eager runtime rebuilds a slim variant from the recorded shapes alone and loads its state_dict."""
    import copy

    from exporter.compress import channels, quantize

    torch.manual_seed(0)
    model = architectures.build_float_model("resnet18", 4).eval()
    images = torch.randn(4, 3, 32, 32)
    channels.remove_channels(model, images, 0.5, 8, channels.MAGNITUDE)
    shapes = channels.channel_shapes(model)
    if precision == "int8":
        prepared = quantize.prepare_for_calibration(model, "minmax")
        quantize.calibrate(prepared, [images])
        built = quantize.convert(prepared)
    elif precision == "fp16":
        from runtimes.modules import Float32IO

        built = Float32IO(copy.deepcopy(model).half(), torch.float16).eval()
    else:
        built = model
    rebuilt = structure.skeleton("resnet18", 4, precision, shapes=shapes)
    rebuilt.load_state_dict(built.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(images), built(images))


def test_a_shape_for_a_missing_layer_is_one_line():
    with pytest.raises(BadInputError, match="names a layer 'layer9.conv1'"):
        structure.skeleton("resnet18", 4, "fp32", shapes={"layer9.conv1": [8, 3, 3, 3]})
