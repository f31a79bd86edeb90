"""The regression gate on synthetic runs: thresholds, the noise rule, one-sided cells, machines, bad input."""

from __future__ import annotations

import dataclasses
import json

import pytest

from runtimes.bench.regression import (CompareOptions, Verdict, compare_runs, latency_delta,
                                       require_no_regression)
from runtimes.errors import ArtifactError, BadInputError, RegressionError
from tests.support.runs import (ENV, base_cells, base_parity, cell, latency, parity_result,
                                slower_and_less_accurate, write_run)


def test_identical_runs_pass(tmp_path):
    base, new = write_run(tmp_path / "base"), write_run(tmp_path / "new")
    c = compare_runs(base, new)
    assert c.passed and c.same_machine and c.latency_gated and not c.one_sided
    assert {d.verdict for d in c.deltas} == {Verdict.OK}
    metrics = {d.metric for d in c.deltas}
    assert metrics == {"latency.median", "latency.p90", "size.bytes", "size.zstd", "top1", "top5",
                       "parity.sqnr_db"}
    require_no_regression(c)


def test_int8_30_percent_slower_and_3_points_lower_regresses_naming_the_cell(tmp_path):
    base = write_run(tmp_path / "base")
    new = write_run(tmp_path / "new", slower_and_less_accurate(base_cells()))
    c = compare_runs(base, new)
    bad = {(d.cell, d.metric) for d in c.regressions()}
    assert bad == {("int8.onnx ort-cpu b1", "latency.median"), ("int8.onnx ort-cpu b1", "latency.p90"),
                   ("int8.onnx ort-cpu b1", "top1")}  # top-5 did not move
    median = next(d for d in c.regressions() if d.metric == "latency.median")
    assert median.base == 4.0 and median.new == pytest.approx(5.2) and median.change == pytest.approx(30.0)
    with pytest.raises(RegressionError) as err:
        require_no_regression(c)
    msg = str(err.value)
    assert err.value.exit_code == 5
    assert median.describe() == "int8.onnx ort-cpu b1 latency.median 4 → 5.2 (+30.0%, limit +10%)"
    # one short line: the accuracy regression (the worst kind) first, then how many more
    assert msg.startswith("3 regression(s) against base: int8.onnx ort-cpu b1 top1 91.5 → 88.5 "
                          "(-3.0 points, limit -0.5 points); +2 more") and len(msg) <= 200, msg


def test_the_noise_rule_slowdown_within_the_runs_own_spread_is_noise():
    opts = CompareOptions()
    key = ("int8", "onnx", "ort-cpu", 1)
    # +15% (0.6 ms) while the runs' own p90 - median spread is 25% (1 ms and more): noise
    noisy = latency_delta("latency.median", key, latency(4.0, spread=0.25), latency(4.6, spread=0.25), opts, True)
    assert noisy.verdict is Verdict.NOISE and "spread" in noisy.note
    # the same +15% from two tight runs (spread 2%): a regression
    tight = latency_delta("latency.median", key, latency(4.0, spread=0.02), latency(4.6, spread=0.02), opts, True)
    assert tight.verdict is Verdict.REGRESSED
    # the new run's spread counts too: a tight base and a noisy new run
    mixed = latency_delta("latency.median", key, latency(4.0, spread=0.02), latency(4.6, spread=0.2), opts, True)
    assert mixed.verdict is Verdict.NOISE
    # below the threshold nothing is questioned; a big speed-up is an improvement
    assert latency_delta("latency.median", key, latency(4.0), latency(4.2), opts, True).verdict is Verdict.OK
    assert latency_delta("latency.median", key, latency(4.0), latency(3.0), opts, True).verdict is Verdict.IMPROVED


def test_noise_in_a_whole_run_does_not_fail_it(tmp_path):
    noisy = [dataclasses.replace(c, latency_ms=latency(c.median, 0.3)) if c.ok else c for c in base_cells()]
    base = write_run(tmp_path / "base", noisy)
    slower = [dataclasses.replace(c, latency_ms=latency(c.median * 1.2, 0.3)) if c.ok else c for c in noisy]
    c = compare_runs(base, write_run(tmp_path / "new", slower))
    assert c.passed
    assert {d.verdict for d in c.deltas if d.metric == "latency.median"} == {Verdict.NOISE}


def test_cells_on_one_side_are_listed_not_failed(tmp_path):
    base = write_run(tmp_path / "base")
    cells = [c for c in base_cells() if c.runtime != "torchscript"] + [cell("fp16", "onnx", "ort-cpu", 8.0)]
    c = compare_runs(base, write_run(tmp_path / "new", cells))
    assert c.passed
    listed = {(s.side, s.cell) for s in c.one_sided}
    assert listed == {("base", "fp32.torchscript torchscript b1"), ("base", "int8.torchscript torchscript b1"),
                      ("new", "fp16.onnx ort-cpu b1")}
    # skipped on both sides is neither compared nor listed
    assert not any("ort-cuda" in s.cell for s in c.one_sided)


def test_another_machine_warns_and_does_not_gate_latency_unless_asked(tmp_path):
    base = write_run(tmp_path / "base")
    other = dataclasses.replace(ENV, cpu_model="AMD EPYC", cpu_flags=["avx2"],
                                versions={**ENV.versions, "onnxruntime": "1.30.0"})
    new = write_run(tmp_path / "new", slower_and_less_accurate(base_cells(), top1_drop=0.0), env=other)
    c = compare_runs(base, new)
    assert not c.same_machine and not c.latency_gated and c.passed
    assert "CPU: Test CPU 9000 vs AMD EPYC" in c.machine_differences
    assert "ISA flags: -avx512_vnni" in c.machine_differences
    assert "onnxruntime: 1.31.1 vs 1.30.0" in c.machine_differences
    assert {d.verdict for d in c.deltas if d.cell == "int8.onnx ort-cpu b1" and d.metric.startswith("latency")} \
        == {Verdict.NOT_GATED}
    assert "different machines" in c.notes[0]
    gated = compare_runs(base, new, CompareOptions(same_machine_only=False))
    assert gated.latency_gated and {d.metric for d in gated.regressions()} == {"latency.median", "latency.p90"}


def test_size_and_parity_sqnr_regressions(tmp_path):
    base = write_run(tmp_path / "base")
    cells = [dataclasses.replace(c, size=dataclasses.replace(c.size, compressed_bytes=c.size.compressed_bytes * 2))
             if c.variant == "fp32" else c for c in base_cells()]
    parity = [parity_result("fp32", "onnx", "ort-cpu", 200.0), parity_result("int8", "onnx", "ort-cpu", 20.0),
              parity_result("int8", "torchscript", "torchscript", float("inf"))]
    c = compare_runs(base, write_run(tmp_path / "new", cells, parity))
    bad = {(d.cell, d.metric) for d in c.regressions()}
    assert bad == {("fp32.onnx", "size.zstd"), ("fp32.torchscript", "size.zstd"),
                   ("int8.onnx ort-cpu", "parity.sqnr_db")}
    # 130 → 200 dB and inf → inf are both "last-bit noise": capped, not compared beyond 100 dB
    fp32 = next(d for d in c.deltas if d.metric == "parity.sqnr_db" and d.variant == "fp32")
    assert fp32.verdict is Verdict.OK and fp32.base == fp32.new == 100.0


def test_thresholds_are_validated():
    with pytest.raises(BadInputError, match="--max-slowdown"):
        CompareOptions(max_slowdown_pct=-1)
    with pytest.raises(BadInputError, match="--max-accuracy-drop"):
        CompareOptions(max_accuracy_drop=float("nan"))


def test_bad_inputs(tmp_path):
    base = write_run(tmp_path / "base")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="no results.json"):
        compare_runs(base, tmp_path / "empty")
    with pytest.raises(BadInputError, match="not found"):
        compare_runs(base, tmp_path / "nope")
    with pytest.raises(BadInputError, match="different models"):
        compare_runs(base, write_run(tmp_path / "r50", model="resnet50"))
    newer = write_run(tmp_path / "newer")
    data = json.loads((newer / "results.json").read_text())
    data["schema_version"] = 2
    (newer / "results.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="schema_version 2 is newer than this shrinkwrap reads"):
        compare_runs(base, newer)
    data["schema_version"] = "one"
    (newer / "results.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="schema_version 'one' is not 1"):
        compare_runs(base, newer)


def test_without_parity_on_one_side_the_rest_is_compared(tmp_path):
    base = write_run(tmp_path / "base")
    new = write_run(tmp_path / "new")
    (new / "parity.json").unlink()
    c = compare_runs(base, new)
    assert c.passed and not any(d.metric == "parity.sqnr_db" for d in c.deltas)
    assert any("parity SQNR not compared" in n for n in c.notes)
    assert base_parity()  # the helper still builds the base side
