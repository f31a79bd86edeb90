"""Artifacts that travel to workers: bytes in Ray's object store, with the sha256 the manifest recorded.

A worker writes a run directory of its own from a :class:`StagedRun` (the manifest and the files one job
reads) and checks every file's sha256 against the manifest's before anything loads it: a worker never runs
an artifact whose hash does not match (:class:`~runtimes.errors.ArtifactError`).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from runtimes.errors import ArtifactError
from runtimes.manifest import MANIFEST_NAME, ArtifactRecord, Manifest


@dataclass(frozen=True)
class Blob:
    """One file's bytes as an object-store reference (or the bytes themselves), and the digest they must have."""

    path: str  # relative to the run directory
    sha256: str
    data: Any  # ray.ObjectRef to bytes, or bytes


@dataclass(frozen=True)
class StagedRun:
    manifest_json: bytes
    files: tuple[Blob, ...]


def record_files(manifest: Manifest, records: list[ArtifactRecord]) -> list[tuple[str, str]]:
    """(path, sha256) of every file the records' cells read: the artifact and its own lane reference."""
    out: dict[str, str] = {}
    for rec in records:
        out[rec.path] = rec.sha256
        if rec.lane_reference is not None:
            out[rec.lane_reference.path] = rec.lane_reference.sha256
    return list(out.items())


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bytes_of(blob: Blob) -> bytes:
    if isinstance(blob.data, (bytes, bytearray, memoryview)):
        return bytes(blob.data)
    import ray

    return bytes(ray.get(blob.data))


def write_staged(staged: StagedRun, run_dir: Path) -> Path:
    """Write the manifest and each file into ``run_dir``, refusing any file whose sha256 does not match."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for blob in staged.files:
        data = _bytes_of(blob)
        digest = sha256_bytes(data)
        if digest != blob.sha256:
            raise ArtifactError(f"{blob.path} arrived with sha256 {digest[:12]}…, the manifest records "
                                f"{blob.sha256[:12]}…: not run")
        dest = run_dir / blob.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    (run_dir / MANIFEST_NAME).write_bytes(staged.manifest_json)
    return run_dir


@contextlib.contextmanager
def staged_run_dir(staged: StagedRun) -> Iterator[Path]:
    """A verified private run directory for one job on a worker; removed when the job ends."""
    tmp = Path(tempfile.mkdtemp(prefix="shrinkwrap-staged-"))
    try:
        yield write_staged(staged, tmp / "run")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
