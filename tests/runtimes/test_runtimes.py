"""Every registered runtime × every file of the tiny run dir: runs and matches, or says why not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from runtimes import parity, registry, structure
from runtimes.errors import ArtifactError, BadInputError, RuntimeUnavailable
from runtimes.manifest import read_manifest
from runtimes.protocol import CAPABILITIES, CUDA, ComputePrecision, Runtime
from runtimes.registry import get_runtime, runtime_names

HAS_CUDA = torch.cuda.is_available()
FILES = ["fp32.pt", "fp32.onnx", "fp32.eager.pt", "fp16.pt", "fp16.onnx", "fp16.eager.pt",
         "int8.pt", "int8.onnx", "int8.eager.pt", "mixed.pt", "mixed.onnx", "mixed.eager.pt",
         "ort-quantize-static.onnx"]
SPECS = registry.specs()


def _record(run_dir, path):
    m = read_manifest(run_dir)
    return next(r for r in [*m.artifacts, *m.references] if r.path == path)


@pytest.fixture(scope="module")
def references(tiny_run_dir, tiny_inputs):
    """Eager outputs per variant, computed once."""
    m = read_manifest(tiny_run_dir)
    out = {}
    for ref in m.references:
        rt = get_runtime(registry.reference_runtime(ref.format).name)
        rt.load(tiny_run_dir, ref)
        out[ref.variant] = rt.run(tiny_inputs)
        rt.close()
    return out


def test_all_runtimes_registered():
    assert runtime_names() == ["eager", "eager-cuda", "torchscript", "torchscript-cuda", "libtorch-cpp",
                               "ort-cpu", "ort-cuda", "openvino", "aoti", "aoti-cpp"]
    for spec in SPECS:
        rt = get_runtime(spec.name, 2)
        assert isinstance(rt, Runtime) and rt.name == spec.name
        assert rt.device == spec.device == ("cuda" if "cuda" in spec.name else "cpu")
        # declared capabilities are implemented: every protocol method exists
        for proto in CAPABILITIES:
            assert isinstance(rt, proto) == (proto.__name__ in spec.capabilities)


@pytest.mark.parametrize("path", FILES)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_runtime_runs_or_says_why(spec, path, tiny_run_dir, tiny_inputs, references):
    rec = _record(tiny_run_dir, path)
    rt = spec.create(1)
    support = rt.supports(rec)
    if not support.ok:
        assert support.reason
        if not spec.runs(rec.format):
            assert support.reason.endswith("only"), support.reason
        elif rt.device == CUDA:
            quantized = rec.precision.value in ("int8", "mixed") and spec.framework == "pytorch"
            assert (quantized and support.reason == "fbgemm INT8 has no CUDA kernels") or \
                (not HAS_CUDA and "CUDA" in support.reason), support.reason
        else:
            pytest.fail(f"{spec.name} refused its own format here: {support.reason}")
        with pytest.raises(RuntimeUnavailable):
            rt.load(tiny_run_dir, rec)
        return

    assert spec.runs(rec.format)
    rt.load(tiny_run_dir, rec)
    try:
        out = rt.run(tiny_inputs)
        info = rt.info()
        computed_in = rt.compute_precision() if isinstance(rt, ComputePrecision) else None
    finally:
        rt.close()
    assert out.shape == (len(tiny_inputs), 10) and out.dtype == np.float32
    ref_name = rec.reference_variant
    row = parity.tolerance_row(rec, ref_name != rec.variant, computed_in)
    metrics, bad = parity.compare(references[ref_name], out, parity.DEFAULT_TOLERANCES[row], check_top1=False)
    assert not bad, (spec.name, path, metrics)
    if spec.name in ("eager", "torchscript", "ort-cpu"):
        assert info["threads"] == 1


def test_cuda_runtimes_report_no_gpu(tiny_run_dir):
    if HAS_CUDA:
        pytest.skip("a CUDA GPU is present")
    for name, path in [("ort-cuda", "fp32.onnx"), ("eager-cuda", "fp32.eager.pt"),
                       ("torchscript-cuda", "fp16.pt")]:
        support = get_runtime(name).supports(_record(tiny_run_dir, path))
        assert not support.ok and "no CUDA GPU" in support.reason, (name, support)


def test_int8_never_on_torch_cuda(tiny_run_dir):
    for spec in SPECS:
        if spec.device != CUDA or spec.framework != "pytorch":
            continue
        for path in ("int8.pt", "mixed.eager.pt"):
            rec = _record(tiny_run_dir, path)
            if spec.runs(rec.format):
                name = spec.name
                assert get_runtime(name).supports(rec).reason == "fbgemm INT8 has no CUDA kernels"


@pytest.mark.parametrize("name,path", [("torchscript", "fp32.pt"), ("ort-cpu", "fp32.onnx"),
                                       ("eager", "int8.eager.pt"), ("libtorch-cpp", "int8.pt")])
def test_modified_file_is_refused(name, path, copy_run_dir):
    run_dir = copy_run_dir()
    rec = _record(run_dir, path)
    with open(run_dir / path, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="modified"):
        get_runtime(name).load(run_dir, rec)


def test_bound_calls_match_run(tiny_run_dir, tiny_inputs):
    for name, path in [("torchscript", "int8.pt"), ("ort-cpu", "fp16.onnx")]:
        rt = get_runtime(name)
        rt.load(tiny_run_dir, _record(tiny_run_dir, path))
        expected = rt.run(tiny_inputs[:3])
        rt.bind(tiny_inputs[:3])
        rt.run_bound()
        rt.run_bound()
        np.testing.assert_array_equal(rt.fetch(), expected)
        rt.close()


def test_int8_records_fbgemm_engine(tiny_run_dir):
    rt = get_runtime("torchscript", 1)
    rt.load(tiny_run_dir, _record(tiny_run_dir, "int8.pt"))
    assert rt.info()["quantized_engine"] == structure.QUANT_ENGINE
    rt = get_runtime("ort-cpu", 1)
    rt.load(tiny_run_dir, _record(tiny_run_dir, "int8.onnx"))
    assert rt.info()["providers"] == "CPUExecutionProvider"


def test_bad_batch_and_threads(tiny_run_dir):
    rt = get_runtime("ort-cpu")
    rt.load(tiny_run_dir, _record(tiny_run_dir, "fp32.onnx"))
    with pytest.raises(BadInputError, match="NCHW"):
        rt.run(np.zeros((3, 64, 64), dtype=np.float32))
    with pytest.raises(BadInputError):
        get_runtime("torchscript", 0)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("name,path", [("ort-cuda", "fp16.onnx"), ("ort-cuda", "int8.onnx"),
                                       ("torchscript-cuda", "fp32.pt"), ("eager-cuda", "fp16.eager.pt")])
def test_cuda_bound_run(name, path, tiny_run_dir, tiny_inputs, references):
    rec = _record(tiny_run_dir, path)
    rt = get_runtime(name)
    assert rt.supports(rec).ok
    rt.load(tiny_run_dir, rec)
    rt.bind(tiny_inputs)
    rt.run_bound()
    _, bad = parity.compare(references[rec.variant], rt.fetch(),
                            parity.DEFAULT_TOLERANCES[rec.precision.value], check_top1=False)
    assert not bad
    rt.close()
