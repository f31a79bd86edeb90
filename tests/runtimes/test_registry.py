"""Every table is derived from the runtime registry; a runtime registered from a test appears everywhere."""

from __future__ import annotations

import shutil

import pytest

from runtimes import registry
from runtimes.bench import grid
from runtimes.bench.options import BenchOptions
from runtimes.bench.results import Status
from runtimes.errors import BadInputError
from runtimes.manifest import Format, read_manifest
from runtimes.protocol import register_runtime, unregister_runtime


def test_derived_tables():
    assert registry.devices() == ["cpu", "cuda"]
    assert registry.formats() == [Format.EAGER, Format.TORCHSCRIPT, Format.ONNX, Format.PT2]
    assert {f: registry.reference_runtime(f).name for f in registry.formats()} == {
        "eager": "eager", "torchscript": "torchscript", "onnx": "ort-cpu", "pt2": "aoti"}
    assert [s.name for s in registry.specs() if registry.runs_references(s)] == ["eager", "eager-cuda"]
    with pytest.raises(BadInputError, match="no registered runtime is the reference for format 'tflite'"):
        registry.reference_runtime("tflite")


def test_registration_validates_declarations():
    class NoDevice:
        name, formats, framework = "x", ("onnx",), "x"

    with pytest.raises(TypeError, match="does not declare device"):
        register_runtime(NoDevice)

    class SecondOnnxReference:
        name, device, formats, reference_for, framework = "y", "cpu", ("onnx",), ("onnx",), "y"

    with pytest.raises(ValueError, match="both claim to be the reference runtime of onnx"):
        register_runtime(SecondOnnxReference)

    class Duplicate:
        name, device, formats, framework = "ort-cpu", "cpu", ("onnx",), "y"

    with pytest.raises(ValueError, match="registered twice"):
        register_runtime(Duplicate)
    assert "x" not in registry.runtime_names() and "y" not in registry.runtime_names()


@pytest.fixture()
def stub():
    from tests.support import stub_runtime

    stub_runtime.register()
    yield registry.get_spec(stub_runtime.NAME)
    unregister_runtime(stub_runtime.NAME)


@pytest.mark.slow  # a bench sweep and a report
def test_a_stub_runtime_reaches_the_grid_the_cells_and_the_report(stub, tiny_run_dir, tmp_path):
    """Registered here, with no other file changed."""
    from exporter.report import render_report
    from runtimes.bench.runner import bench

    assert stub.device == "npu" and "npu" in registry.devices()
    assert stub.capabilities == () and stub.runs(Format.ONNX)
    manifest = read_manifest(tiny_run_dir)
    entries = grid.plan(manifest, [stub], ["fp32", "int8"])
    assert {(e.record.path, e.runtime.name) for e in entries} == {
        (p, "stub-npu") for p in ("fp32.pt", "fp32.onnx", "int8.pt", "int8.onnx")}

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run_dir)
    res = bench(run_dir, BenchOptions(runtimes=("ort-cpu", stub.name), batches=(2,), variants=("fp32", "int8"),
                                      min_time_s=0.0, min_iters=2, warmup=0))
    by = {(c.variant, c.format, c.runtime): c for c in res.cells}
    for variant in ("fp32", "int8"):
        cell = by[(variant, "onnx", "stub-npu")]
        assert cell.status is Status.OK, cell.reason  # measured in its own cell process
        assert cell.device == "npu" and cell.runtime_info["timing"] == "run() incl. numpy conversion"
        assert grid.not_applicable(by[(variant, "torchscript", "stub-npu")])
    text = render_report(run_dir).read_text()
    npu = text[text.index("## NPU"):text.index("## Speed-up")]
    assert "| Variant | Format | Batch | stub-npu |" in npu
    assert "**NPU, batch 2:**" in text
