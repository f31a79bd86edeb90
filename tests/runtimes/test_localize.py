"""Layer-by-layer parity: scope mapping, the first divergent layer of a damaged INT8 ONNX, TorchScript refused."""

from __future__ import annotations

import numpy as np
import pytest

from runtimes import localize
from runtimes.errors import BadInputError, RuntimeUnavailable
from runtimes.manifest import read_manifest
from runtimes.onnx_layers import scope_of
from runtimes.parity import DEFAULT_TOLERANCES, check_parity
from tests.support.onnx_edit import scale_int8_weight

DAMAGED = "layer2.0.conv2"


@pytest.mark.parametrize("node,module", [
    ("/layer2/layer2.0/downsample/downsample.0/Conv", "layer2.0.downsample.0"),  # float export: qualified
    ("/layer1/0/conv1/QuantizeLinear", "layer1.0.conv1"),  # export of quantized modules: relative
    ("/fc/1/Gemm", "fc.1"),
    ("/Flatten", None),  # top level: no module
    ("Identity_0", None),  # no scope at all
])
def test_scope_names_map_back_to_eager_modules(node, module):
    assert scope_of(node) == module


def test_a_healthy_int8_onnx_has_every_layer_within_tolerance(tiny_run_dir, tiny_inputs):
    m = read_manifest(tiny_run_dir)
    loc = localize.localize_artifact(tiny_run_dir, m, m.find("int8.onnx"), tiny_inputs,
                                     DEFAULT_TOLERANCES["int8"])
    assert loc.first_divergent_layer is None
    names = [lp.layer for lp in loc.layers]
    assert names[:4] == ["quant", "conv1", "maxpool", "layer1.0.conv1"] and DAMAGED in names
    assert len(names) >= 30 and all(lp.passed for lp in loc.layers)
    assert loc.layers[0].sqnr_db == np.inf  # the same QuantizeLinear on both sides: bit-identical


def test_a_float_onnx_compares_folded_batchnorm(tiny_run_dir, tiny_inputs):
    m = read_manifest(tiny_run_dir)
    loc = localize.localize_artifact(tiny_run_dir, m, m.find("fp32.onnx"), tiny_inputs,
                                     DEFAULT_TOLERANCES["fp32"])
    conv = next(lp for lp in loc.layers if lp.layer == "layer1.0.conv1")
    assert conv.folded == ["layer1.0.bn1"] and conv.sqnr_db > 100
    assert loc.first_divergent_layer is None


def test_a_changed_weight_scale_is_named_as_the_first_divergent_layer(copy_run_dir, tiny_inputs):
    run = copy_run_dir()
    scale_int8_weight(run, "int8.onnx", DAMAGED, 3.0)
    results = check_parity(run, tiny_inputs, "synthetic", variants=["int8"])
    onnx_result = next(r for r in results if r.path == "int8.onnx")
    assert not onnx_result.passed  # the logits drift: parity alone says *that* it drifted
    out = localize.localize_results(run, results, tiny_inputs, "violating")
    r = next(r for r in out if r.path == "int8.onnx")
    assert r.first_divergent_layer == DAMAGED
    before = [lp for lp in r.layers[:[lp.layer for lp in r.layers].index(DAMAGED)]]
    assert before and all(lp.passed for lp in before)  # every earlier layer is still within tolerance
    damaged = next(lp for lp in r.layers if lp.layer == DAMAGED)
    assert not damaged.passed and damaged.sqnr_db < 15 and DAMAGED in r.localization
    # OpenVINO runs the same file: its own result is localized in OpenVINO, to the same layer
    ov = next(r for r in out if r.path == "int8.onnx" and r.runtime == "openvino")
    assert not ov.passed and ov.first_divergent_layer == DAMAGED and "in openvino" in ov.localization
    # the TorchScript artifact passed, so "violating" left it alone
    ts = next(r for r in out if r.path == "int8.pt")
    assert ts.passed and ts.localization is None and ts.layers == []


def test_torchscript_cannot_expose_intermediates_and_says_why(tiny_run_dir, tiny_inputs):
    m = read_manifest(tiny_run_dir)
    with pytest.raises(RuntimeUnavailable, match="torch.jit.freeze inlines every submodule"):
        localize.localize_artifact(tiny_run_dir, m, m.find("int8.pt"), tiny_inputs, DEFAULT_TOLERANCES["int8"])
    results = check_parity(tiny_run_dir, tiny_inputs[:4], "synthetic", variants=["int8"])
    only_ts = [r for r in results if r.path == "int8.pt"]
    with pytest.raises(BadInputError, match="cannot look inside int8.pt"):
        localize.localize_results(tiny_run_dir, only_ts, tiny_inputs[:4], "all")
    with pytest.raises(BadInputError, match="--localize takes violating or all"):
        localize.localize_results(tiny_run_dir, results, tiny_inputs, "some")
