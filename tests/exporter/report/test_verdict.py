"""One verdict per question: separate cells and interleaved rounds that disagree on the direction."""

from __future__ import annotations

import dataclasses

from exporter.report.context import load_context
from exporter.report.summary import speedups
from exporter.report.verdict import INTERLEAVED, SEPARATE, disagreements, sentence
from runtimes.bench.results import Comparison, write_results
from runtimes.bench.stability import Stability
from tests.support.runs import cell, results, write_run


def _comparison(ratio: float, stable: bool = True, other_cores: float = 0.0) -> Comparison:
    return Comparison(runtime="ort-cpu", device="cpu", batch=1, a="fp32", a_format="onnx", b="int8", b_format="onnx",
                      status="ok", ratio=ratio, ratio_p10=ratio * 0.95, ratio_p90=ratio * 1.05, a_ms=6.0,
                      b_ms=6.0 / ratio, rounds=9, other_cores=other_cores, stable=stable)


def _cells(int8_ms: float, spread: float = 0.05):
    int8 = cell("int8", "onnx", "ort-cpu", int8_ms, top1=None, spread=spread)
    if spread > 0.25:  # the cell's own verdict: noisy
        int8 = dataclasses.replace(int8, stability=Stability(False, 1 + spread, 1.1, 1.0, 0.0,
                                                             reasons=[f"p90/median {1 + spread:.2f} > 1.25"]))
    return [cell("fp32", "eager", "eager", 20.0, top1=None), cell("fp32", "onnx", "ort-cpu", 6.0, top1=None), int8]


def _ctx(tmp_path, cells, comparison):
    run = write_run(tmp_path / "run", cells=cells, parity=[])
    write_results(run, dataclasses.replace(results(cells), comparisons=[comparison]))
    return load_context(run)


def test_the_issues_case_under_load_believes_the_interleaved_rounds(tmp_path):
    """ORT INT8/FP32 0.67x in separate cells, 1.14x interleaved, with another process busy."""
    cells = _cells(9.0, spread=0.6)  # 6 / 9 = 0.67x, the INT8 cell noisy
    (d,) = disagreements(cells, [_comparison(1.14, other_cores=0.9)])
    assert d.believe == INTERLEAVED and round(d.separate, 2) == 0.67 and d.figure == 1.14
    text = sentence(d, {"fp32": "FP32", "int8": "INT8"})
    assert text.startswith("On ort-cpu, INT8 vs FP32 disagree: separate cells say 0.67× (slower), interleaved "
                           "rounds say 1.14× (faster); believe the interleaved rounds (other processes used 0.9 cores")
    assert text.endswith("the summary uses 1.14×.")
    report = speedups(_ctx(tmp_path, cells, _comparison(1.14, other_cores=0.9)))
    assert report.count("disagree") == 1
    assert "| ort-cpu | onnx | 6.00 | 9.00 | 1.14× (interleaved rounds; see above) |" in report


def test_quiet_and_stable_believes_the_separate_cells():
    (d,) = disagreements(_cells(5.0), [_comparison(0.95)])  # 1.20x separate, 0.95x interleaved
    assert d.believe == SEPARATE and round(d.figure, 2) == 1.2 and "cache" in d.why


def test_noise_everywhere_is_undecided(tmp_path):
    cells = _cells(9.0, spread=0.6)
    (d,) = disagreements(cells, [_comparison(1.14, stable=False)])
    assert d.believe is None and d.figure is None and "rerun on a quiet machine" in sentence(d, {})
    assert "undecided (separate 0.67×, interleaved 1.14×)" in speedups(_ctx(tmp_path, cells,
                                                                          _comparison(1.14, stable=False)))


def test_agreement_says_nothing(tmp_path):
    assert disagreements(_cells(3.0), [_comparison(1.5)]) == []
    assert "disagree" not in speedups(_ctx(tmp_path, _cells(3.0), _comparison(1.5)))
