"""The recommendation: what a user may deploy, read from synthetic records (nothing is run)."""

from __future__ import annotations

import dataclasses

from exporter.report.context import load_context
from exporter.report.recommend import (NO_TOP1_REASON, PARITY_REASON, PEER_REASON, UNDECIDED_BAND, recommend,
                                       terminal_lines)
from exporter.report.summary import recommendation, speedups
from tests.support.runs import cell, parity_result, write_run

PEER = "ort-quantize-static"


def _int8(c):
    return dataclasses.replace(c, precision="int8")


def _compact_model_run(tmp_path, peer_passed=False):
    """The issue's trained EfficientNet-B0: the peer is fastest but 9.7 points worse and failed parity."""
    cells = [cell("fp32", "eager", "eager", 30.0, top1=97.2, mb=21.0),
             cell("fp32", "onnx", "ort-cpu", 10.0, top1=97.2, mb=21.0),
             cell("int8", "onnx", "ort-cpu", 6.0, top1=95.0, mb=6.0),
             cell("int8-dense", "onnx", "ort-cpu", 5.0, top1=97.2, mb=6.0),
             _int8(cell(PEER, "onnx", "ort-cpu", 3.0, top1=87.5, mb=6.0))]
    peer = dataclasses.replace(parity_result(PEER, "onnx", "ort-cpu", 6.9), peer=True, passed=peer_passed)
    parity = [parity_result(v, "onnx", "ort-cpu", 40.0) for v in ("fp32", "int8", "int8-dense")] + [peer]
    return load_context(write_run(tmp_path / "run", cells=cells, parity=parity))


def test_a_fast_inaccurate_peer_is_never_chosen_and_the_accuracy_read_is_stated(tmp_path):
    ctx = _compact_model_run(tmp_path)
    (r,) = recommend(ctx)
    assert (r.pick.variant, r.pick.format, r.pick.runtime) == ("int8-dense", "onnx", "ort-cpu")
    assert r.baseline.top1 == 97.2 and "97.20%" in r.rule and "within 1 top-1 points" in r.rule
    assert [(x.cell.variant, x.reason) for x in r.left_out] == [(PEER, PEER_REASON)]
    text = recommendation(ctx)
    assert "`int8-dense` as onnx on ort-cpu: 5.00 ms, zstd 4.20 MB; top-1 97.20%" in text
    assert f"faster but not deployable: `{PEER}` as onnx on ort-cpu: 3.00 ms, top-1 87.50% ({PEER_REASON})" in text
    assert "not measured" not in text  # every cell has its top-1


def test_a_peer_is_not_chosen_even_when_accurate_and_within_parity(tmp_path):
    ctx = _compact_model_run(tmp_path, peer_passed=True)
    cells = [c if c.variant != PEER else dataclasses.replace(c, top1=97.2) for c in ctx.cells]
    ctx = dataclasses.replace(ctx, results=dataclasses.replace(ctx.results, cells=cells))
    (r,) = recommend(ctx)
    assert r.pick.variant == "int8-dense"


def test_an_artifact_that_failed_parity_is_never_chosen(tmp_path):
    cells = [cell("fp32", "onnx", "ort-cpu", 10.0, top1=92.0), cell("int8", "onnx", "ort-cpu", 4.0, top1=92.0),
             cell("int8", "torchscript", "torchscript", 5.0, top1=92.0)]
    bad = dataclasses.replace(parity_result("int8", "onnx", "ort-cpu", 3.0), passed=False)
    ctx = load_context(write_run(tmp_path / "run", cells=cells,
                                 parity=[bad, parity_result("int8", "torchscript", "torchscript", 40.0)]))
    (r,) = recommend(ctx)
    assert (r.pick.variant, r.pick.format) == ("int8", "torchscript")
    assert [(x.cell.format, x.reason) for x in r.left_out] == [("onnx", PARITY_REASON)]


def test_the_accuracy_budget_holds_and_unmeasured_cells_are_named(tmp_path):
    cells = [cell("fp32", "onnx", "ort-cpu", 10.0, top1=92.0), cell("int8", "onnx", "ort-cpu", 4.0, top1=89.0),
             cell("int8-dense", "onnx", "ort-cpu", 6.0, top1=91.5),
             cell("int8", "torchscript", "torchscript", 1.0, top1=None)]
    (r,) = recommend(load_context(write_run(tmp_path / "run", cells=cells, parity=[])))
    assert r.pick.variant == "int8-dense"  # int8 is 3 points down, past the 1-point budget
    assert [(x.cell.runtime, x.reason) for x in r.left_out] == [("torchscript", NO_TOP1_REASON)]


def test_without_accuracy_the_rule_says_speed_only(tmp_path):
    cells = [cell("fp32", "onnx", "ort-cpu", 10.0, top1=None), cell("int8", "onnx", "ort-cpu", 4.0, top1=None)]
    (r,) = recommend(load_context(write_run(tmp_path / "run", cells=cells, parity=[])))
    assert r.pick.variant == "int8" and r.baseline is None and "speed only" in r.rule


def test_a_band_too_wide_to_decide_is_undecided_not_a_tie(tmp_path):
    def run(name, spread):
        cells = [cell("fp32", "onnx", "ort-cpu", 10.0, top1=92.0),
                 cell("int8", "onnx", "ort-cpu", 4.0, top1=92.0, spread=spread),
                 cell("int8-dense", "onnx", "ort-cpu", 4.1, top1=92.0)]
        ctx = load_context(write_run(tmp_path / name, cells=cells, parity=[]))
        return recommend(ctx)[0], recommendation(ctx)

    wide, text = run("wide", 0.57)
    assert wide.band > UNDECIDED_BAND and wide.undecided and not wide.tie
    assert "undecided, rerun on a quiet machine: its timing spread (±57%)" in text and "tie" not in text
    assert "(undecided: rerun on a quiet machine)" in terminal_lines([wide])[0]
    narrow, text = run("narrow", 0.05)
    assert narrow.tie and not narrow.undecided
    assert "tie within the noise band (±5%)" in text and "undecided" not in text


def test_best_int8_considers_every_int8_variant_and_names_it(tmp_path):
    ctx = _compact_model_run(tmp_path)
    text = speedups(ctx)
    assert "Best INT8: `int8-dense` as `onnx` on ort-cpu, 5.00 ms vs FP32 eager 30.00 ms: **6.00×**" in text


def test_terminal_lines_are_few_and_carry_the_answer(tmp_path):
    lines = terminal_lines(recommend(_compact_model_run(tmp_path)))
    assert lines == ["CPU batch 1: `int8-dense` as onnx on ort-cpu: 5.00 ms, zstd 4.20 MB; top-1 97.20%"]
    assert terminal_lines([]) == ["no artifact qualifies: see the report's Recommendation"]


def _openvino_run(tmp_path, ov_fp32_passed=True):
    """Issue 19's MobileNetV3-Large on a 2-core EPYC: FP32 in OpenVINO (4.25 ms) beats every INT8 in ORT."""
    cells = [cell("fp32", "eager", "eager", 20.0, top1=96.4, mb=21.0),
             cell("fp32", "onnx", "ort-cpu", 6.4, top1=96.4, mb=21.0),
             cell("fp32", "onnx", "openvino", 4.25, top1=96.4, mb=21.0),
             cell("int8-dense", "onnx", "ort-cpu", 6.2, top1=96.0, mb=6.0),
             cell("int8-dense", "onnx", "openvino", 4.9, top1=96.0, mb=6.0),
             _int8(cell("nncf-ptq", "onnx", "openvino", 4.4, top1=96.0, mb=6.0))]
    ov = dataclasses.replace(parity_result("fp32", "onnx", "openvino", 38.0), computed_in="bf16",
                             passed=ov_fp32_passed)
    parity = [parity_result("fp32", "onnx", "ort-cpu", 120.0), ov,
              parity_result("int8-dense", "onnx", "ort-cpu", 30.0),
              parity_result("int8-dense", "onnx", "openvino", 30.0),
              dataclasses.replace(parity_result("nncf-ptq", "onnx", "openvino", 25.0), peer=True)]
    return load_context(write_run(tmp_path / "run", cells=cells, parity=parity))


def test_the_fastest_cell_in_openvino_is_chosen(tmp_path):
    (r,) = recommend(_openvino_run(tmp_path))
    assert (r.pick.variant, r.pick.format, r.pick.runtime) == ("fp32", "onnx", "openvino")
    assert [(x.cell.variant, x.reason) for x in r.left_out] == [("nncf-ptq", PEER_REASON)]


def test_a_failure_only_in_openvino_leaves_the_ort_cell_deployable(tmp_path):
    (r,) = recommend(_openvino_run(tmp_path, ov_fp32_passed=False))
    assert (r.pick.variant, r.pick.runtime) == ("int8-dense", "openvino")
    assert [(x.cell.variant, x.cell.runtime, x.reason) for x in r.left_out] == \
        [("fp32", "openvino", f"{PARITY_REASON} in openvino"), ("nncf-ptq", "openvino", PEER_REASON)]
