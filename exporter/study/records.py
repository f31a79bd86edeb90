"""The study's typed record: one row per model, read back by type (``study.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runtimes.records import read_record, write_json

STUDY_NAME = "study.json"
STUDY_REPORT_NAME = "study.md"
STUDY_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class BestCell:
    """What the model's report recommends on the CPU at batch 1: an artifact × runtime and its figures."""

    variant: str
    format: str
    runtime: str
    median_ms: float
    top1: float | None


@dataclass(frozen=True)
class ModelRow:
    model: str
    status: str  # "ok" | "parity-failed" | "error"
    reason: str = ""
    run_dir: str = ""  # relative to the study directory ("" when nothing was written)
    wall_s: float = 0.0
    host: str = ""  # where it ran: this machine's or the Ray node's hostname
    best: BestCell | None = None
    # Fastest deployable INT8 over fastest deployable FP32 at batch 1 on the CPU (< 1: INT8 is faster).
    int8_over_fp32: float | None = None
    # Each slim variant's fastest cell over its dense variant's, at batch 1 on the CPU.
    slim_over_dense: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyRecord:
    schema_version: int
    created: str
    command: str
    executor: str
    models: list[ModelRow]
    wall_s: float


def write_study(study_dir: Path, record: StudyRecord) -> Path:
    path = Path(study_dir) / STUDY_NAME
    write_json(path, record)
    return path


def read_study(study_dir: Path) -> StudyRecord:
    return read_record(Path(study_dir) / STUDY_NAME, StudyRecord, "study", STUDY_SCHEMA_VERSION, list_key="models")
