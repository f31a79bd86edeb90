"""The benchmark result records: typed cells, the environment, JSON and CSV.

``<run>/results.json`` is the single source the report is rendered from; the
CSV beside it is a flat convenience copy (one row per cell) for spreadsheets.
"""

from __future__ import annotations

import csv
import enum
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtimes.bench.stability import Stability
from runtimes.errors import ArtifactError
from runtimes.kernels import KernelCensus
from runtimes.manifest import RUN_FILES, WeightsRecord
from runtimes.records import atomic_write_bytes, read_record, to_jsonable, write_json

RESULTS_SCHEMA_VERSION = 1
RESULTS_NAME = RUN_FILES.results
RESULTS_CSV_NAME = RUN_FILES.results_csv


class Status(str, enum.Enum):
    OK = "ok"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class LatencyStats:
    """Per-batch latency in milliseconds over ``iterations`` timed runs after ``warmup`` untimed ones."""

    median: float
    p90: float
    p99: float
    mean: float
    std: float
    min: float
    max: float
    iterations: int
    warmup: int


@dataclass(frozen=True)
class SizeRecord:
    bytes: int
    compressed_bytes: int
    compression: str  # e.g. "zstd-19"
    params: int
    nonzero_params: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzero_params / self.params if self.params else 0.0


@dataclass(frozen=True)
class Cell:
    """One (variant × format × runtime × batch) measurement.

    Identity fields are plain strings rather than enums so that a cell can be
    recorded even when its inputs failed validation (an ``error`` cell).
    """

    variant: str
    format: str
    runtime: str
    device: str
    batch: int
    precision: str
    status: Status
    reason: str = ""
    latency_ms: LatencyStats | None = None
    throughput: float | None = None  # images per second at the median latency
    size: SizeRecord | None = None
    threads: int | None = None
    runtime_info: dict[str, Any] = field(default_factory=dict)
    top1: float | None = None  # percent
    top5: float | None = None  # percent
    eval_images: int | None = None
    flags: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    stability: Stability | None = None  # None: skipped/error cells, and records from before it existed
    pathological: bool = False  # no deployment option (see runtimes.bench.flags); its flag says why
    kernels: KernelCensus | None = None  # what the runtime ran for a quantized artifact (runtimes.kernels)
    # Fanned out on a Ray cluster (runtimes.bench.fanout): the deployment target it was pinned to (None: no
    # target) and the node it ran on, with that node's environment. None for cells measured on this machine.
    target: str | None = None
    node: NodeRecord | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def median(self) -> float | None:
        return self.latency_ms.median if self.latency_ms is not None else None

    @property
    def stable(self) -> bool:
        """Whether its timing can be trusted (records without a verdict count as stable)."""
        return self.stability is None or self.stability.stable

    @property
    def excluded(self) -> bool:
        """Not a candidate for a recommendation or a Pareto front: pathological. (Records from
        before stability verdicts existed flagged only what was to be excluded.)"""
        return self.pathological or (self.stability is None and bool(self.flags))

    @property
    def label(self) -> str:
        return f"{self.variant}.{self.format} {self.runtime} b{self.batch}: {self.status.value}"


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b``, interleaved: ``ratio`` = time(a) / time(b) (a speed-up of b). Both run in
    ``runtime``, or ``b`` in ``b_runtime`` when it is set (one artifact in two runtimes)."""

    runtime: str
    device: str
    batch: int
    a: str  # variant
    a_format: str
    b: str
    b_format: str
    status: str  # "ok" | "skipped" | "error"
    reason: str = ""
    ratio: float | None = None  # median of the per-round ratios
    ratio_p10: float | None = None
    ratio_p90: float | None = None
    a_ms: float | None = None  # median latency of each side within the interleaved window
    b_ms: float | None = None
    rounds: int = 0
    other_cores: float | None = None  # other processes' CPU use during the window
    stable: bool | None = None  # both sides' samples pass runtimes.bench.stability
    method: str = "interleaved: alternating rounds in one process, median of per-round ratios"
    b_runtime: str | None = None
    target: str | None = None  # as Cell.target / Cell.node
    node: NodeRecord | None = None

    @property
    def b_runs_in(self) -> str:
        """The runtime side B ran in."""
        return self.b_runtime or self.runtime

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def label(self) -> str:
        if self.b_runtime:
            return (f"{self.a} on {self.runtime} vs {self.b} on {self.b_runtime} interleaved b{self.batch}: "
                    f"{self.status}")
        return f"{self.a} vs {self.b} interleaved on {self.runtime} b{self.batch}: {self.status}"


@dataclass(frozen=True)
class Environment:
    cpu_model: str
    cpu_flags: list[str]  # only the ISA extensions that decide which kernels run
    cores_logical: int
    cores_physical: int | None
    threads: int | None  # None: each runtime's default
    gpu_name: str  # "none" when there is no usable GPU
    gpu_driver: str
    cuda_version: str
    versions: dict[str, str]
    platform: str


@dataclass(frozen=True)
class NodeRecord:
    """The Ray node a fanned-out cell ran on: which one, for which target, and what machine it is."""

    node_id: str
    hostname: str
    target: str | None
    pid: int  # the worker process that measured it
    attempt: int  # its start on this node: 2 and more means a worker died running it and Ray retried it
    environment: Environment


@dataclass(frozen=True)
class BenchSettings:
    """How the cells were measured (what the report's method section states)."""

    batches: list[int] = field(default_factory=list)
    threads: int | None = None
    runtimes: list[str] = field(default_factory=list)
    min_time_s: float | None = None
    min_iters: int | None = None
    warmup: int | None = None
    attempts: int | None = None  # timed windows per cell at most, until one is stable
    remeasure: bool | None = None  # whether a cell still unstable got a fresh process at the end
    max_time_s: float | None = None
    timeout_s: float | None = None
    eval_tensors: str | None = None
    variants: list[str] = field(default_factory=list)
    io_binding: str | None = None  # how device-resident runtimes are timed
    max_accuracy_drop: float | None = None  # the budget the report's recommendation applies
    retry_budget_s: float | None = None  # seconds the sweep could spend re-timing unstable cells
    retry_spent_s: float | None = None  # what it spent (windows after a cell's first, estimated; re-measures)
    one_window_cells: int | None = None  # cells timed with one window because the budget was spent
    not_remeasured: int | None = None  # cells still noisy that got no fresh process for the same reason
    executor: str | None = None  # "local" | "ray" (None: records from before the executor existed)
    targets: list[str] = field(default_factory=list)  # the Ray deployment targets, in the order asked for


@dataclass(frozen=True)
class Results:
    schema_version: int
    created: str
    run_dir: str
    model: str
    weights: WeightsRecord
    environment: Environment
    command: str
    settings: BenchSettings
    cells: list[Cell]
    notes: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)  # interleaved A/B speed-ups


# ---------------------------------------------------------------- files

def write_results(run_dir: Path, results: Results) -> Path:
    """Write ``results.json`` (atomically) and the flat ``results.csv``; return the JSON path."""
    run_dir = Path(run_dir)
    path = run_dir / RESULTS_NAME
    write_json(path, results)
    atomic_write_bytes(run_dir / RESULTS_CSV_NAME, cells_csv(results.cells).encode())
    return path


def read_results(run_dir: Path) -> Results:
    run_dir = Path(run_dir)
    path = run_dir / RESULTS_NAME
    if not path.is_file():
        raise ArtifactError(f"no {RESULTS_NAME} in {run_dir}: run the benchmark first")
    return read_record(path, Results, "results", RESULTS_SCHEMA_VERSION, list_key="cells")


CSV_COLUMNS = (
    "variant", "format", "runtime", "device", "batch", "precision", "status", "reason",
    "median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "iterations",
    "warmup", "throughput_ips", "bytes", "compressed_bytes", "compression", "params",
    "nonzero_params", "threads", "top1", "top5", "eval_images", "flags", "wall_s", "runtime_info",
)


def cell_row(cell: Cell) -> dict[str, Any]:
    lat, size = cell.latency_ms, cell.size
    row: dict[str, Any] = {
        "variant": cell.variant, "format": cell.format, "runtime": cell.runtime,
        "device": cell.device, "batch": cell.batch, "precision": cell.precision,
        "status": cell.status.value, "reason": cell.reason,
        "throughput_ips": cell.throughput, "threads": cell.threads, "top1": cell.top1,
        "top5": cell.top5, "eval_images": cell.eval_images, "flags": "; ".join(cell.flags),
        "wall_s": cell.wall_s,
        "runtime_info": json.dumps(to_jsonable(cell.runtime_info), sort_keys=True) if cell.runtime_info else "",
    }
    for name in ("median", "p90", "p99", "mean", "std", "min", "max"):
        row[f"{name}_ms"] = getattr(lat, name) if lat else None
    row["iterations"] = lat.iterations if lat else None
    row["warmup"] = lat.warmup if lat else None
    for name in ("bytes", "compressed_bytes", "compression", "params", "nonzero_params"):
        row[name] = getattr(size, name) if size else None
    return row


def cells_csv(cells: list[Cell]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for cell in cells:
        writer.writerow({k: ("" if v is None else v) for k, v in cell_row(cell).items()})
    return buf.getvalue()
