"""The analyses' typed records (``sensitivity.json``, ``sweep.json``): no torch needed to read them.

The report reads these files through :func:`read_sensitivity` and :func:`read_sweep`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runtimes.manifest import RUN_FILES
from runtimes.records import read_record, write_json


@dataclass(frozen=True)
class LayerSensitivity:
    layer: str
    params: int
    quant_sqnr_db: float  # output SQNR of "only this layer INT8" vs the baseline model
    quant_top1: float | None
    quant_top1_drop: float | None  # vs the baseline model's top-1
    prune_sqnr_db: float  # output SQNR vs FP32 with only this layer pruned
    prune_top1: float | None
    prune_top1_drop: float | None


@dataclass(frozen=True)
class SensitivityReport:
    model: str
    eval_source: str
    eval_images: int
    sparsity: float
    fp32_top1: float | None
    baseline_sqnr_db: float  # all layers FP32, only input/add quantization
    baseline_top1: float | None
    layers: list[LayerSensitivity] = field(default_factory=list)  # ranked, most sensitive first
    seconds: float = 0.0


@dataclass(frozen=True)
class SweepPoint:
    variant: str
    order: str | None  # None for float-only variants, where order has no meaning
    sparsity: float
    achieved_sparsity: float
    top1: float | None
    top5: float | None
    sqnr_db: float  # logits vs the FP32 model on the same inputs
    onnx_bytes: int
    zstd_bytes: int
    seconds: float
    method: str | None = None  # the pruning method (None at sparsity 0, and in older records: magnitude)
    channel_sparsity: float | None = None  # slim variants: fraction of channels removed (their axis)
    macs: int | None = None  # per image
    latency_ms: float | None = None  # slim variants: ONNX Runtime CPU, batch 1, median (in-process)
    speedup: float | None = None  # against the dense variant of the same precision, timed interleaved


@dataclass(frozen=True)
class SweepReport:
    model: str
    eval_source: str
    eval_images: int
    fp32_top1: float | None
    sparsities: list[float]
    points: list[SweepPoint] = field(default_factory=list)
    conclusions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    zstd_level: int | None = None  # the compression level of zstd_bytes
    channel_sparsities: list[float] = field(default_factory=list)


def write_sensitivity(out_dir: Path, report: SensitivityReport) -> Path:
    path = Path(out_dir) / RUN_FILES.sensitivity
    write_json(path, report)
    return path


def read_sensitivity(run_dir: Path) -> SensitivityReport | None:
    path = Path(run_dir) / RUN_FILES.sensitivity
    return read_record(path, SensitivityReport, "sensitivity", list_key="layers") if path.is_file() else None


def write_sweep(out_dir: Path, report: SweepReport) -> Path:
    path = Path(out_dir) / RUN_FILES.sweep
    write_json(path, report)
    return path


def read_sweep(run_dir: Path) -> SweepReport | None:
    path = Path(run_dir) / RUN_FILES.sweep
    return read_record(path, SweepReport, "sweep", list_key="points") if path.is_file() else None
