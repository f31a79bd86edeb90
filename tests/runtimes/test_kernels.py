"""Which kernels each runtime really runs: the classifiers as pure functions, then every runtime that declares
``Kernels`` on the tiny run's INT8 and mixed files (the mixed file keeps its fc layer float)."""

from __future__ import annotations

import pytest

from runtimes import kernels, registry
from runtimes.manifest import Format, read_manifest
from runtimes.protocol import CPU, Kernels


def test_onnx_graph_is_split_into_integer_float_and_conversions():
    census = kernels.census_of_onnx(["QLinearConv", "QLinearConv", "QuantizeLinear", "DequantizeLinear",
                                     "HardSigmoid", "Mul", "Reshape", "Constant", "QGemm", "MatMulInteger"], "g")
    assert census.integer_kernels == {"MatMulInteger": 1, "QGemm": 1, "QLinearConv": 2}
    assert census.float_kernels == {"HardSigmoid": 1, "Mul": 1}
    assert census.conversions == {"DequantizeLinear": 1, "QuantizeLinear": 1}
    assert (census.integer_count, census.float_count, census.conversion_count) == (4, 2, 2)
    assert census.summary() == ("g: 4 integer kernels, 2 float (HardSigmoid ×1, Mul ×1), 2 conversions between "
                                "them (DequantizeLinear ×1, QuantizeLinear ×1)")


def test_openvino_layers_are_classified_by_their_runtime_precision():
    census = kernels.census_of_openvino([("Convolution", "u8"), ("Eltwise", "bf16"), ("Eltwise", "u8"),
                                         ("Reorder", "f32"), ("Const", "f32"), ("FakeQuantize", "f32")], "ov")
    assert census.integer_kernels == {"Convolution": 1, "Eltwise": 1}
    assert census.float_kernels == {"Eltwise (bf16)": 1}
    assert census.conversions == {"FakeQuantize": 1, "Reorder": 1}


def test_torch_operators_are_integer_when_their_input_is_quantized():
    census = kernels.census_of_torch([("quantized::conv2d", "torch.quint8"), ("aten::adaptive_avg_pool2d",
                                      "torch.quint8"), ("aten::silu", "torch.float32"), ("aten::q_scale",
                                      "torch.quint8"), ("aten::dequantize", "torch.quint8")], "t")
    assert census.integer_kernels == {"aten::adaptive_avg_pool2d": 1, "quantized::conv2d": 1}
    assert census.float_kernels == {"aten::silu": 1}
    assert census.conversions == {"aten::dequantize": 1}
    assert "no float kernels" in kernels.census_of_torch([("quantized::add", "torch.quint8")], "t").summary()


KERNEL_RUNTIMES = [s for s in registry.specs() if s.device == CPU and "Kernels" in s.capabilities]
# The tiny run holds TorchScript, ONNX and eager files; the .pt2 runtimes' census is tested on compiled
# packages in tests/exporter/formats/test_pt2.py.
TINY_RUN_RUNTIMES = [s for s in KERNEL_RUNTIMES if set(s.formats) & {Format.EAGER, Format.TORCHSCRIPT, Format.ONNX}]


def test_every_cpu_runtime_declares_kernels():
    assert sorted(s.name for s in KERNEL_RUNTIMES) == ["aoti", "aoti-cpp", "eager", "libtorch-cpp", "openvino",
                                                       "ort-cpu", "torchscript"]


def test_the_pt2_census_reads_the_generated_wrapper(tmp_path):
    import zipfile

    from runtimes.aoti import census_of_package

    wrapper = ("aoti_torch_cpu__qconv_pointwise_tensor(a); aoti_torch_cpu__qconv_pointwise_tensor(b);\n"
               "cpp_fused_quantize_per_tensor_0(x); cpp_fused_dequantize_per_tensor_mean_quantize_per_tensor_1(y);\n"
               "aoti_torch_cpu__qlinear_pointwise_tensor(z); cpp_fused_add_relu_2(w); aoti_torch_cpu_empty_strided(e);")
    with zipfile.ZipFile(tmp_path / "m.pt2", "w") as z:
        z.writestr("m/data/aotinductor/model/abc.wrapper.cpp", wrapper)
    census = census_of_package(tmp_path / "m.pt2", "aoti")
    assert census.integer_kernels == {"aoti_torch_cpu__qconv_pointwise_tensor": 2,
                                      "aoti_torch_cpu__qlinear_pointwise_tensor": 1}
    # a loop that only (de)quantizes converts; one that computes anything else between them is float work
    assert census.conversions == {"cpp_fused_quantize_per_tensor": 1}
    assert census.float_kernels == {"cpp_fused_dequantize_per_tensor_mean_quantize_per_tensor": 1,
                                    "cpp_fused_add_relu": 1}
    assert census.source.startswith("aoti")


@pytest.mark.parametrize("spec", TINY_RUN_RUNTIMES, ids=lambda s: s.name)
def test_runtime_counts_what_it_ran_for_int8_and_mixed(spec, tiny_run_dir, tiny_inputs):
    manifest = read_manifest(tiny_run_dir)
    counts = {}
    for variant in ("int8", "mixed"):
        record = next(r for r in [*manifest.artifacts, *manifest.references]
                      if r.variant == variant and spec.runs(r.format))
        rt = spec.create(1)
        if not rt.supports(record).ok:
            pytest.skip(rt.supports(record).reason)
        rt.load(tiny_run_dir, record)
        try:
            assert isinstance(rt, Kernels)
            counts[variant] = rt.kernel_census(tiny_inputs[:1])
        finally:
            rt.close()
    int8, mixed = counts["int8"], counts["mixed"]
    assert int8.source.startswith(spec.name)
    # resnet18's 20 convolutions (fused with their BN and ReLU) run on integers in every runtime
    assert int8.integer_count >= 20
    # the mixed file's fc is float: one float kernel more, and the integer body is one layer shorter
    assert mixed.float_count > int8.float_count
    assert mixed.integer_count < int8.integer_count
    assert int8.conversion_count >= 2  # at least the input's quantize and the output's dequantize
