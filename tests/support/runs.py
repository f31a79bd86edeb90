"""Synthetic run directories for the regression gate: results.json (+ parity.json) written by the real writers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runtimes.bench.results import (BenchSettings, Cell, Environment, LatencyStats, Results, SizeRecord, Status,
                                    write_results)
from runtimes.manifest import WeightsRecord
from runtimes.parity import DEFAULT_TOLERANCES, ParityResult, write_parity

WEIGHTS = WeightsRecord(source="checkpoint", trained=True, label="trained test model")
ENV = Environment(cpu_model="Test CPU 9000", cpu_flags=["avx2", "avx512_vnni"], cores_logical=2,
                  cores_physical=1, threads=2, gpu_name="none", gpu_driver="none", cuda_version="none",
                  versions={"python": "3.11.9", "torch": "2.13.0", "onnxruntime": "1.31.1"},
                  platform="Linux-test")


def latency(median: float, spread: float = 0.05) -> LatencyStats:
    """Stats whose p90 is ``spread`` (relative) above the median."""
    return LatencyStats(median=median, p90=median * (1 + spread), p99=median * (1 + 2 * spread), mean=median,
                        std=median * spread / 2, min=median * 0.95, max=median * (1 + 3 * spread),
                        iterations=50, warmup=3)


def cell(variant: str, fmt: str, runtime: str, median: float | None, *, batch: int = 1, top1: float | None = 90.0,
         mb: float = 10.0, spread: float = 0.05, status: Status = Status.OK, reason: str = "") -> Cell:
    ok = status is Status.OK
    return Cell(variant=variant, format=fmt, runtime=runtime, device="cpu", batch=batch,
                precision="int8" if variant.startswith("int8") else "fp32", status=status, reason=reason,
                latency_ms=latency(median, spread) if ok and median is not None else None,
                throughput=batch * 1000 / median if ok and median else None,
                size=SizeRecord(int(mb * 1e6), int(mb * 0.7e6), "zstd-19", 1000, 500), threads=2,
                top1=top1 if ok else None, top5=(min(100.0, top1 + 5) if top1 is not None else None) if ok else None,
                eval_images=200 if ok and top1 is not None else None)


def base_cells() -> list[Cell]:
    return [
        cell("fp32", "onnx", "ort-cpu", 10.0, top1=92.0, mb=44.0),
        cell("fp32", "torchscript", "torchscript", 19.0, top1=92.0, mb=44.0),
        cell("int8", "onnx", "ort-cpu", 4.0, top1=91.5, mb=11.0),
        cell("int8", "torchscript", "torchscript", 1.7, top1=91.5, mb=11.0),
        cell("int8", "onnx", "ort-cuda", None, top1=None, mb=11.0, status=Status.SKIPPED, reason="no CUDA GPU"),
    ]


def results(cells: list[Cell], model: str = "resnet18", env: Environment = ENV, schema_version: int = 1) -> Results:
    return Results(schema_version=schema_version, created="2025-01-01T00:00:00+00:00", run_dir="run", model=model,
                   weights=WEIGHTS, environment=env, command="shrinkwrap bench run",
                   settings=BenchSettings(batches=[1], threads=2, runtimes=["ort-cpu", "torchscript", "ort-cuda"]),
                   cells=cells)


def parity_result(variant: str, fmt: str, runtime: str, sqnr: float) -> ParityResult:
    tol = DEFAULT_TOLERANCES["int8" if variant.startswith("int8") else "fp32"]
    return ParityResult(variant=variant, format=fmt, path=f"{variant}.{'onnx' if fmt == 'onnx' else 'pt'}",
                        runtime=runtime, precision="int8", reference=variant, peer=False, n_inputs=8,
                        input_source="synthetic", max_abs_error=0.01, mean_abs_error=0.001, cosine=0.999,
                        sqnr_db=sqnr, top1_agreement=1.0, top5_overlap=1.0, tolerance=tol, passed=True)


def base_parity() -> list[ParityResult]:
    return [parity_result("fp32", "onnx", "ort-cpu", 130.0), parity_result("int8", "onnx", "ort-cpu", 35.0),
            parity_result("int8", "torchscript", "torchscript", float("inf"))]


def write_run(run_dir: Path, cells: list[Cell] | None = None, parity: list[ParityResult] | None = None,
              **kw) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_results(run_dir, results(cells if cells is not None else base_cells(), **kw))
    write_parity(run_dir, parity if parity is not None else base_parity())
    return run_dir


def slower_and_less_accurate(cells: list[Cell], variant: str = "int8", fmt: str = "onnx", runtime: str = "ort-cpu",
                             factor: float = 1.3, top1_drop: float = 3.0) -> list[Cell]:
    """The cell (variant, fmt, runtime) with every latency statistic × ``factor`` and top-1 − ``top1_drop``."""
    out = []
    for c in cells:
        if (c.variant, c.format, c.runtime) == (variant, fmt, runtime):
            lat = c.latency_ms
            scaled = dataclasses.replace(lat, **{k: getattr(lat, k) * factor
                                                 for k in ("median", "p90", "p99", "mean", "std", "min", "max")})
            c = dataclasses.replace(c, latency_ms=scaled, top1=c.top1 - top1_drop)
        out.append(c)
    return out
