"""Hand-made manifest records for tests that need a run directory without the exporter."""

from __future__ import annotations

from pathlib import Path

from runtimes.manifest import (ArtifactRecord, Format, InputSpec, Manifest, Precision, PruneRecord,
                               QuantRecord, SparsityRecord, WeightsRecord, write_manifest)
from runtimes.records import sha256_file

WEIGHTS = WeightsRecord(source="random", trained=False, label="UNTRAINED (random weights)")


def record(variant: str, fmt: Format, path: str, data: bytes | None = None, run_dir: Path | None = None,
           precision: Precision = Precision.FP32, params: int = 100, nonzero: int = 100) -> ArtifactRecord:
    f = (run_dir / path) if run_dir else None
    return ArtifactRecord(
        variant=variant, format=fmt, path=path, bytes=f.stat().st_size if f else 0,
        sha256=sha256_file(f) if f else "0" * 64, precision=precision, model="resnet18",
        num_classes=10,
        input=InputSpec(shape=[-1, 3, 64, 64], dtype="float32", resize=64, crop=64,
                        mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        sparsity=SparsityRecord(requested=0.0, achieved=1 - nonzero / params, zeros=params - nonzero,
                                total=params),
        quantization=QuantRecord(backend=None, scheme=None),
        pruning=PruneRecord(method=None, scope=None, order=None, requested=0.0),
        weights=WEIGHTS, params=params, nonzero_params=nonzero, versions={}, command="test")


def write_run_manifest(run_dir: Path, artifacts: list[ArtifactRecord], refs: list[ArtifactRecord]) -> None:
    write_manifest(run_dir, Manifest(schema_version=1, created="2025-01-01T00:00:00+00:00",
                                     model="resnet18", weights=WEIGHTS, command="test",
                                     versions={}, artifacts=artifacts, references=refs))
