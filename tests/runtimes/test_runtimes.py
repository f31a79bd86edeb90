"""Every registered runtime × every file of the tiny run dir: runs and matches, or says why not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from runtimes import parity, structure
from runtimes.artifact import Format, read_manifest
from runtimes.base import Device, Runtime, RuntimeName, get_runtime, runtime_names
from runtimes.errors import ArtifactError, BadInputError, RuntimeUnavailable

HAS_CUDA = torch.cuda.is_available()
FILES = ["fp32.pt", "fp32.onnx", "fp32.eager.pt", "fp16.pt", "fp16.onnx", "fp16.eager.pt",
         "int8.pt", "int8.onnx", "int8.eager.pt", "mixed.pt", "mixed.onnx", "mixed.eager.pt",
         "ort-quantize-static.onnx"]
FORMAT_OF = {RuntimeName.EAGER: Format.EAGER, RuntimeName.EAGER_CUDA: Format.EAGER,
             RuntimeName.TORCHSCRIPT: Format.TORCHSCRIPT, RuntimeName.TORCHSCRIPT_CUDA: Format.TORCHSCRIPT,
             RuntimeName.LIBTORCH_CPP: Format.TORCHSCRIPT,
             RuntimeName.ORT_CPU: Format.ONNX, RuntimeName.ORT_CUDA: Format.ONNX}


def _record(run_dir, path):
    m = read_manifest(run_dir)
    return next(r for r in [*m.artifacts, *m.references] if r.path == path)


@pytest.fixture(scope="module")
def references(tiny_run_dir, tiny_inputs):
    """Eager outputs per variant, computed once."""
    m = read_manifest(tiny_run_dir)
    out = {}
    for ref in m.references:
        rt = get_runtime(RuntimeName.EAGER)
        rt.load(tiny_run_dir, ref)
        out[ref.variant] = rt.run(tiny_inputs)
        rt.close()
    return out


def test_all_runtimes_registered():
    assert set(runtime_names()) == set(RuntimeName)
    for name in runtime_names():
        rt = get_runtime(name, 2)
        assert isinstance(rt, Runtime) and rt.name == name
        assert rt.device == (Device.CUDA if "cuda" in name.value else Device.CPU)


@pytest.mark.parametrize("path", FILES)
@pytest.mark.parametrize("name", list(RuntimeName), ids=lambda n: n.value)
def test_runtime_runs_or_says_why(name, path, tiny_run_dir, tiny_inputs, references):
    rec = _record(tiny_run_dir, path)
    rt = get_runtime(name, 1)
    support = rt.supports(rec)
    if not support.ok:
        assert support.reason
        if rec.format != FORMAT_OF[name]:
            assert support.reason.endswith("only"), support.reason
        elif rt.device == Device.CUDA:
            quantized = rec.precision.value in ("int8", "mixed") and name != RuntimeName.ORT_CUDA
            assert (quantized and support.reason == "fbgemm INT8 has no CUDA kernels") or \
                (not HAS_CUDA and "CUDA" in support.reason), support.reason
        else:
            pytest.fail(f"{name.value} refused its own format here: {support.reason}")
        with pytest.raises(RuntimeUnavailable):
            rt.load(tiny_run_dir, rec)
        return

    assert rec.format == FORMAT_OF[name]
    rt.load(tiny_run_dir, rec)
    try:
        out = rt.run(tiny_inputs)
        info = rt.info()
    finally:
        rt.close()
    assert out.shape == (len(tiny_inputs), 10) and out.dtype == np.float32
    ref_name = rec.decisions.get("compare_with", rec.variant)
    row = parity.PEER if ref_name != rec.variant else rec.precision.value
    metrics, bad = parity.compare(references[ref_name], out, parity.DEFAULT_TOLERANCES[row], check_top1=False)
    assert not bad, (name.value, path, metrics)
    if name in (RuntimeName.EAGER, RuntimeName.TORCHSCRIPT, RuntimeName.ORT_CPU):
        assert info["threads"] == 1


def test_cuda_runtimes_report_no_gpu(tiny_run_dir):
    if HAS_CUDA:
        pytest.skip("a CUDA GPU is present")
    for name, path in [(RuntimeName.ORT_CUDA, "fp32.onnx"), (RuntimeName.EAGER_CUDA, "fp32.eager.pt"),
                       (RuntimeName.TORCHSCRIPT_CUDA, "fp16.pt")]:
        support = get_runtime(name).supports(_record(tiny_run_dir, path))
        assert not support.ok and "no CUDA GPU" in support.reason, (name, support)


def test_int8_never_on_torch_cuda(tiny_run_dir):
    for name in (RuntimeName.EAGER_CUDA, RuntimeName.TORCHSCRIPT_CUDA):
        for path in ("int8.pt", "mixed.eager.pt"):
            rec = _record(tiny_run_dir, path)
            if rec.format == FORMAT_OF[name]:
                assert get_runtime(name).supports(rec).reason == "fbgemm INT8 has no CUDA kernels"


@pytest.mark.parametrize("name,path", [(RuntimeName.TORCHSCRIPT, "fp32.pt"), (RuntimeName.ORT_CPU, "fp32.onnx"),
                                       (RuntimeName.EAGER, "int8.eager.pt"),
                                       (RuntimeName.LIBTORCH_CPP, "int8.pt")])
def test_modified_file_is_refused(name, path, copy_run_dir):
    run_dir = copy_run_dir()
    rec = _record(run_dir, path)
    with open(run_dir / path, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="modified"):
        get_runtime(name).load(run_dir, rec)


def test_bound_calls_match_run(tiny_run_dir, tiny_inputs):
    for name, path in [(RuntimeName.TORCHSCRIPT, "int8.pt"), (RuntimeName.ORT_CPU, "fp16.onnx")]:
        rt = get_runtime(name)
        rt.load(tiny_run_dir, _record(tiny_run_dir, path))
        expected = rt.run(tiny_inputs[:3])
        rt.bind(tiny_inputs[:3])
        rt.run_bound()
        rt.run_bound()
        np.testing.assert_array_equal(rt.fetch(), expected)
        rt.close()


def test_int8_records_fbgemm_engine(tiny_run_dir):
    rt = get_runtime(RuntimeName.TORCHSCRIPT, 1)
    rt.load(tiny_run_dir, _record(tiny_run_dir, "int8.pt"))
    assert rt.info()["quantized_engine"] == structure.QUANT_ENGINE
    rt = get_runtime(RuntimeName.ORT_CPU, 1)
    rt.load(tiny_run_dir, _record(tiny_run_dir, "int8.onnx"))
    assert rt.info()["providers"] == "CPUExecutionProvider"


def test_bad_batch_and_threads(tiny_run_dir):
    rt = get_runtime(RuntimeName.ORT_CPU)
    rt.load(tiny_run_dir, _record(tiny_run_dir, "fp32.onnx"))
    with pytest.raises(BadInputError, match="NCHW"):
        rt.run(np.zeros((3, 64, 64), dtype=np.float32))
    with pytest.raises(BadInputError):
        get_runtime(RuntimeName.TORCHSCRIPT, 0)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("name,path", [(RuntimeName.ORT_CUDA, "fp16.onnx"), (RuntimeName.ORT_CUDA, "int8.onnx"),
                                       (RuntimeName.TORCHSCRIPT_CUDA, "fp32.pt"),
                                       (RuntimeName.EAGER_CUDA, "fp16.eager.pt")])
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
