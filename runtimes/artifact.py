"""The manifest schema: typed records, read/write, and sha256 verification.

``<run>/manifest.json`` is the single description of a run directory. Every
other stage (parity, bench, report) reads it through :func:`read_manifest`
and never guesses from file names.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtimes.errors import ArtifactError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

# Files a run directory may hold besides what the manifest names.
_OWN_OUTPUTS = {MANIFEST_NAME, "results.json", "results.csv", "report.md", "parity.json",
                "sweep.json", "sensitivity.json", "README.md"}
_OWN_DIRS = {"figures", "cells", "sweep", "logs"}


class Format(str, enum.Enum):
    TORCHSCRIPT = "torchscript"
    ONNX = "onnx"
    EAGER = "eager"  # pickled nn.Module: the reference each artifact is compared with


class Precision(str, enum.Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    MIXED = "mixed"  # INT8 body with some layers kept in FP32


class PruneScope(str, enum.Enum):
    GLOBAL = "global"
    LAYER = "layer"


class PruneOrder(str, enum.Enum):
    QUANTIZE_THEN_PRUNE = "quantize-then-prune"
    PRUNE_THEN_QUANTIZE = "prune-then-quantize"


class CalibMethod(str, enum.Enum):
    HISTOGRAM = "histogram"
    MINMAX = "minmax"


@dataclass(frozen=True)
class InputSpec:
    shape: list[int]  # -1 marks the dynamic batch dimension
    dtype: str
    resize: int
    crop: int
    mean: list[float]
    std: list[float]
    input_name: str = "input"
    output_name: str = "logits"


@dataclass(frozen=True)
class LayerSparsity:
    name: str
    zeros: int
    total: int
    sparsity: float


@dataclass(frozen=True)
class SparsityRecord:
    requested: float
    achieved: float  # counted from the stored weights, not assumed
    zeros: int
    total: int
    per_layer: list[LayerSparsity] = field(default_factory=list)


@dataclass(frozen=True)
class QuantRecord:
    backend: str | None  # e.g. "fbgemm"; None for float variants
    scheme: str | None
    calib_method: str | None = None
    calib_source: str | None = None  # "synthetic" or the data directory
    calib_images: int | None = None
    keep_float: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PruneRecord:
    method: str | None  # "l1-unstructured" or None when not pruned
    scope: str | None
    order: str | None
    requested: float


@dataclass(frozen=True)
class WeightsRecord:
    source: str  # "imagenet" | "random" | "checkpoint"
    trained: bool
    label: str  # human text; says UNTRAINED for random weights
    path: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ArtifactRecord:
    variant: str
    format: Format
    path: str  # relative to the manifest
    bytes: int
    sha256: str
    precision: Precision
    model: str
    num_classes: int
    input: InputSpec
    sparsity: SparsityRecord
    quantization: QuantRecord
    pruning: PruneRecord
    weights: WeightsRecord
    params: int
    nonzero_params: int
    versions: dict[str, str]
    command: str
    decisions: dict[str, Any] = field(default_factory=dict)  # e.g. what `auto` chose


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    created: str
    model: str
    weights: WeightsRecord
    command: str
    versions: dict[str, str]
    artifacts: list[ArtifactRecord]  # the deployable files (TorchScript, ONNX)
    references: list[ArtifactRecord]  # eager models the artifacts are compared with
    notes: list[str] = field(default_factory=list)

    def reference_for(self, variant: str) -> ArtifactRecord:
        for ref in self.references:
            if ref.variant == variant:
                return ref
        raise ArtifactError(f"manifest has no eager reference for variant {variant!r}")

    def variants(self) -> list[str]:
        seen: list[str] = []
        for a in self.artifacts:
            if a.variant not in seen:
                seen.append(a.variant)
        return seen


# ---------------------------------------------------------------- (de)serialization

def to_jsonable(obj: Any) -> Any:
    """Dataclasses → dicts, enums → their values; numbers stay numbers."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


def from_jsonable(cls: Any, data: Any) -> Any:
    """Inverse of :func:`to_jsonable`, driven by the dataclass type hints."""
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        args = [a for a in typing.get_args(cls) if a is not type(None)]
        return from_jsonable(args[0], data)
    if origin is list:
        (item,) = typing.get_args(cls)
        return [from_jsonable(item, v) for v in data]
    if origin is dict:
        _, val = typing.get_args(cls)
        return {k: from_jsonable(val, v) for k, v in data.items()}
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                kwargs[f.name] = from_jsonable(hints[f.name], data[f.name])
        return cls(**kwargs)
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return cls(data)
    return data


def default_mode(directory: bool = False) -> int:
    """The mode a plain open()/mkdir() would give under the current umask (mkstemp uses 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, default_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(to_jsonable(obj), indent=2) + "\n").encode())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(run_dir: Path, manifest: Manifest) -> Path:
    path = Path(run_dir) / MANIFEST_NAME
    write_json(path, manifest)
    return path


def read_record(path: Path, cls: Any, list_key: str, schema_version: int, what: str) -> Any:
    """Read a typed JSON record (manifest, results) with one clear error for each way it can be wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get(list_key), list):
        raise ArtifactError(f"{path} has no '{list_key}' list")
    if data.get("schema_version") != schema_version:
        raise ArtifactError(f"{path}: schema_version {data.get('schema_version')!r} is not {schema_version}")
    try:
        return from_jsonable(cls, data)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ArtifactError(f"{path} does not match the {what} schema: {exc}") from exc


def read_manifest(run_dir: Path) -> Manifest:
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST_NAME
    if not run_dir.is_dir():
        raise ArtifactError(f"artifact directory not found: {run_dir}")
    if not path.is_file():
        raise ArtifactError(f"no {MANIFEST_NAME} in {run_dir}: not a shrinkwrap run directory")
    return read_record(path, Manifest, "artifacts", SCHEMA_VERSION, "manifest")


@dataclass(frozen=True)
class VerifyProblem:
    path: str
    problem: str  # "missing" | "modified" | "foreign" | "size"


def verify_run_dir(run_dir: Path) -> list[VerifyProblem]:
    """Re-hash every file the manifest names; report missing, modified and foreign files."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    problems: list[VerifyProblem] = []
    named = set()
    for rec in [*manifest.artifacts, *manifest.references]:
        named.add(rec.path)
        p = run_dir / rec.path
        if not p.is_file():
            problems.append(VerifyProblem(rec.path, "missing"))
        elif p.stat().st_size != rec.bytes or sha256_file(p) != rec.sha256:
            problems.append(VerifyProblem(rec.path, "modified"))
    for p in sorted(run_dir.iterdir()):
        if p.name in named or p.name in _OWN_OUTPUTS or (p.is_dir() and p.name in _OWN_DIRS):
            continue
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            problems.append(VerifyProblem(p.name, "foreign (leftover temporary file)"))
            continue
        problems.append(VerifyProblem(p.name, "foreign"))
    return problems


def require_verified(run_dir: Path) -> Manifest:
    """Read the manifest and raise :class:`ArtifactError` on any verification problem."""
    problems = verify_run_dir(run_dir)
    if problems:
        listing = ", ".join(f"{p.path} ({p.problem})" for p in problems)
        raise ArtifactError(f"{run_dir} failed verification: {listing}")
    return read_manifest(run_dir)
