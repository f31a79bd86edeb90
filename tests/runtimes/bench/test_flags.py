"""Pathological flags: data-driven, plus the FP16-in-PyTorch-on-CPU rule."""

from __future__ import annotations

import dataclasses

from runtimes.bench.flags import FP16_CPU_FLAG, flag_cells
from runtimes.bench.results import Cell, LatencyStats, Status


def _ok(variant, runtime, median, batch=1, device="cpu", precision="fp32") -> Cell:
    lat = LatencyStats(median, median, median, median, 0.0, median, median, 5, 1)
    return Cell(variant, "x", runtime, device, batch, precision, Status.OK, latency_ms=lat,
                throughput=batch * 1000 / median)


def test_flags_are_data_driven_and_fp16_rule():
    cells = [_ok("int8", "ort-cpu", 2.0), _ok("int8", "torchscript", 48.0), _ok("int8", "eager", 19.0),
             _ok("int8", "eager", 48.0, batch=8), _ok("int8", "ort-cuda", 500.0, device="cuda"),
             _ok("fp16", "torchscript", 900.0, precision="fp16"), _ok("fp16", "ort-cpu", 3.0, precision="fp16"),
             Cell("int8", "x", "eager-cuda", "cuda", 1, "int8", Status.SKIPPED, reason="no gpu")]
    out = flag_cells(cells)
    assert out[0].flags == [] and out[2].flags == [] and out[3].flags == [] and out[4].flags == []
    assert out[1].flags == ["pathological: 24x slower than ort-cpu for this variant; not a deployment option"]
    assert out[5].flags[0].startswith("pathological: 300x slower than ort-cpu") and out[5].flags[1] == FP16_CPU_FLAG
    assert out[6].flags == [] and out[7].flags == []


def test_a_noisy_cell_is_never_called_pathological():
    from runtimes.bench.stability import assess

    noisy = dataclasses.replace(_ok("int8", "torchscript", 48.0), stability=assess([48.0] * 10, cores=1.5))
    out = flag_cells([_ok("int8", "ort-cpu", 2.0), noisy])
    assert out[1].flags == [] and not out[1].pathological and not out[1].stable
    quiet = flag_cells([_ok("int8", "ort-cpu", 2.0), _ok("int8", "torchscript", 48.0)])
    assert quiet[1].pathological and quiet[1].excluded


def test_fp16_in_pytorch_is_flagged_only_when_the_data_says_so():
    """On a CPU with fast FP16 kernels (AMX) FP16 in PyTorch is 1.5x ORT: no flag, no exclusion."""
    out = flag_cells([_ok("fp16", "torchscript", 24.0, precision="fp16"), _ok("fp16", "ort-cpu", 16.0, precision="fp16")])
    assert out[0].flags == [] and not out[0].pathological
