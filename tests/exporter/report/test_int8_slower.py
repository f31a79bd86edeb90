"""The report says where INT8 is slower than FP32, per runtime, and why when the run knows."""

from __future__ import annotations

from runtimes.manifest import QuantRecord
from tests.support.runs import base_cells, cell, write_run


def test_int8_slower_than_fp32_is_flagged_with_its_reason(tmp_path):
    from exporter.report.context import load_context
    from exporter.report.int8_slower import int8_slower, reasons, slower_pairs

    cells = [c for c in base_cells() if c.runtime != "ort-cpu"] + [
        cell("fp32", "onnx", "ort-cpu", 10.0, top1=92.0), cell("int8", "onnx", "ort-cpu", 13.0, top1=91.5)]
    ctx = load_context(write_run(tmp_path / "run", cells=cells))
    pairs = slower_pairs(ctx.cells, "fp32")
    assert [(c.runtime, round(c.median / ref.median, 2)) for c, ref in pairs] == [("ort-cpu", 1.3)]
    text = int8_slower(ctx)
    assert "Where INT8 is slower than FP32" in text and "| int8 | ort-cpu | onnx | 1 |" in text and "1.30×" in text
    assert "not known from this run" in text  # no manifest: nothing known

    class Record:  # what the manifest says of the INT8 artifact: SiLU has no quantized kernel
        quantization = QuantRecord(backend="fbgemm", scheme="", float_ops={"SiLU": [f"f{i}" for i in range(49)]})

    assert "49 operators run float inside the INT8 model (SiLU ×49)" in reasons(pairs[0][0], Record())[0]


def test_int8_slower_names_the_kernels_the_runtime_ran(tmp_path):
    """The cell's kernel census (runtimes.kernels) is a reason even without a manifest: which layers ORT ran
    in float behind a dequantize/re-quantize pair."""
    import dataclasses

    from exporter.report.context import load_context
    from exporter.report.int8_slower import int8_slower
    from runtimes.kernels import census_of_onnx

    census = census_of_onnx(["QLinearConv"] * 62 + ["HardSigmoid"] * 29 + ["Mul"] * 21
                            + ["QuantizeLinear", "DequantizeLinear"] * 30, "ort-cpu after its graph optimizations")
    int8 = dataclasses.replace(cell("int8-dense", "onnx", "ort-cpu", 13.0), precision="int8", kernels=census)
    cells = [cell("fp32", "onnx", "ort-cpu", 10.0), int8]
    text = int8_slower(load_context(write_run(tmp_path / "run", cells=cells)))
    assert "not known from this run" not in text
    assert ("what ort-cpu ran: ort-cpu after its graph optimizations: 62 integer kernels, 50 float "
            "(HardSigmoid ×29, Mul ×21), 60 conversions between them") in text


def test_int8_faster_or_within_noise_is_not_flagged(tmp_path):
    from exporter.report.context import load_context
    from exporter.report.int8_slower import int8_slower

    ctx = load_context(write_run(tmp_path / "fast"))  # INT8 2.5x faster in ORT, 11x in TorchScript
    assert int8_slower(ctx) == ""
    cells = [cell("fp32", "onnx", "ort-cpu", 10.0), cell("int8", "onnx", "ort-cpu", 10.4)]  # +4%: a tie
    assert int8_slower(load_context(write_run(tmp_path / "tie", cells=cells))) == ""
