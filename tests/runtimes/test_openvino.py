"""The ``openvino`` runtime: hints and batch splitting, what it computed in, one-line errors, a missing package."""

from __future__ import annotations

import numpy as np
import pytest

from runtimes import metrics, parity
from runtimes import openvino as ov_runtime
from runtimes.errors import ArtifactError, RuntimeUnavailable
from runtimes.manifest import read_manifest
from runtimes.registry import get_runtime, parity_runtimes, reference_runtime


def _loaded(run_dir, path, threads=1):
    rt = get_runtime("openvino", threads)
    rt.load(run_dir, read_manifest(run_dir).find(path))
    return rt


def test_registered_as_the_onnx_portability_check():
    assert [s.name for s in parity_runtimes("onnx")] == [reference_runtime("onnx").name, "openvino"]
    assert [s.name for s in parity_runtimes("torchscript")] == ["torchscript"]


def test_a_batch_is_split_across_throughput_requests_and_matches_one_by_one(tiny_run_dir, tiny_inputs):
    rt = _loaded(tiny_run_dir, "int8.onnx")
    try:
        one = np.concatenate([rt.run(tiny_inputs[i:i + 1]) for i in range(5)])
        assert rt.info()["performance_hint"] == "LATENCY" and rt.info()["latency_streams"] == 1
        batch = rt.run(tiny_inputs[:5])
        info = rt.info()
    finally:
        rt.close()
    assert info["performance_hint"] == "THROUGHPUT" and info["throughput_requests"] >= 1
    assert info["inference_precision"] in ("f32", "bf16") and info["threads"] == 1
    assert batch.shape == (5, 10) and batch.dtype == np.float32
    # the same file compiled with the other hint, on the same images: the same logits up to kernel rounding
    assert metrics.sqnr_db(one, batch) > 30


def test_bound_calls_match_run(tiny_run_dir, tiny_inputs):
    rt = _loaded(tiny_run_dir, "fp16.onnx")
    try:
        expected = rt.run(tiny_inputs[:3])
        rt.bind(tiny_inputs[:3])
        rt.run_bound()
        rt.run_bound()
        np.testing.assert_array_equal(rt.fetch(), expected)
    finally:
        rt.close()


def test_full_fp32_is_asked_for_by_environment(tiny_run_dir, tiny_inputs, monkeypatch):
    """SHRINKWRAP_OPENVINO_PRECISION=f32: no bf16 rounding, so the fp32 row applies and ORT's numbers are met."""
    monkeypatch.setenv(ov_runtime.PRECISION_ENV, "f32")
    rt = _loaded(tiny_run_dir, "fp32.onnx")
    try:
        out = rt.run(tiny_inputs)
        assert rt.compute_precision() == "f32"
    finally:
        rt.close()
    ort = get_runtime("ort-cpu", 1)
    ort.load(tiny_run_dir, read_manifest(tiny_run_dir).find("fp32.onnx"))
    _, bad = parity.compare(ort.run(tiny_inputs), out, parity.DEFAULT_TOLERANCES["fp32"], check_top1=False)
    ort.close()
    assert not bad, bad


def test_tolerance_row_follows_what_the_runtime_computed_in(tiny_run_dir):
    m = read_manifest(tiny_run_dir)
    fp32, fp16 = m.find("fp32.onnx"), m.find("fp16.onnx")
    int8, peer = m.find("int8.onnx"), m.find("ort-quantize-static.onnx")
    assert parity.tolerance_row(fp32, False, None) == "fp32"
    assert parity.tolerance_row(fp32, False, "f32") == "fp32"
    assert parity.tolerance_row(fp32, False, "bf16") == parity.BF16
    assert parity.tolerance_row(fp32, False, "f16") == "fp16"
    assert parity.tolerance_row(fp16, False, "bf16") == parity.BF16  # fewer bits than the file: bf16 rounds
    assert parity.tolerance_row(fp16, False, "f16") == "fp16"
    assert parity.tolerance_row(fp16, False, "f32") == "fp16"
    assert parity.tolerance_row(int8, False, "bf16") == "int8"  # quantized files keep their own row
    assert parity.tolerance_row(peer, True, "bf16") == parity.PEER


def test_an_unreadable_file_is_one_line(copy_run_dir, rehash):
    run_dir = copy_run_dir()
    (run_dir / "fp32.onnx").write_bytes(b"not an onnx model")
    rehash(run_dir, "fp32.onnx")
    with pytest.raises(ArtifactError, match="openvino cannot read") as err:
        _loaded(run_dir, "fp32.onnx")
    assert "\n" not in str(err.value) and len(str(err.value)) < 500


def test_without_the_package_it_says_why_and_parity_notes_it(tiny_run_dir, tiny_inputs, monkeypatch):
    monkeypatch.setattr(ov_runtime, "openvino_reason", lambda: "the openvino package is not usable here")
    rt = get_runtime("openvino")
    rec = read_manifest(tiny_run_dir).find("fp32.onnx")
    support = rt.supports(rec)
    assert not support.ok and support.reason == "the openvino package is not usable here"
    with pytest.raises(RuntimeUnavailable, match="not usable"):
        rt.load(tiny_run_dir, rec)
    res = parity.check_parity(tiny_run_dir, tiny_inputs[:4], "synthetic", variants=["fp32"])
    assert [r.runtime for r in res] == ["torchscript", "ort-cpu"]
    ort = next(r for r in res if r.runtime == "ort-cpu")
    assert "not checked in openvino: the openvino package is not usable here" in ort.notes and ort.passed
    assert get_runtime("openvino").supports(read_manifest(tiny_run_dir).find("fp32.pt")).reason == \
        "openvino runs .onnx artifacts only"
