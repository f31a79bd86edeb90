"""The benchmark grid: which (artifact, runtime) pairs a run directory offers, and which of them can run here.

Derived from the manifest and the runtime registry alone: an eager reference is
offered to every runtime that runs references, a deployable artifact to every
other runtime (a runtime that runs another format yields a "not applicable"
skipped cell, shown as "—" in the report). Batches multiply each pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from runtimes import registry
from runtimes.bench.results import Cell, Status
from runtimes.errors import BadInputError, RuntimeUnavailable
from runtimes.manifest import ArtifactRecord, Manifest
from runtimes.protocol import RuntimeSpec


@dataclass(frozen=True)
class GridEntry:
    record: ArtifactRecord
    runtime: RuntimeSpec


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def choose_variants(manifest: Manifest, wanted: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys([*manifest.variants(), *(r.variant for r in manifest.references)]))
    if wanted is None:
        return present
    unknown = [v for v in wanted if v not in present]
    if unknown:
        raise BadInputError(f"variant(s) {', '.join(unknown)} not in this run; it has: "
                            f"{', '.join(present)}")
    return list(dict.fromkeys(wanted))


def plan(manifest: Manifest, runtimes: Sequence[RuntimeSpec],
         variants: Sequence[str] | None = None) -> list[GridEntry]:
    """Every (record, runtime) pair to measure, variant by variant in manifest order."""
    chosen = set(choose_variants(manifest, variants))
    entries: list[GridEntry] = []
    for variant in choose_variants(manifest, None):
        if variant not in chosen:
            continue
        for ref in manifest.references:
            if ref.variant == variant:
                entries += [GridEntry(ref, rt) for rt in runtimes if registry.runs_references(rt)]
        for rec in manifest.artifacts:
            if rec.variant == variant:
                entries += [GridEntry(rec, rt) for rt in runtimes if not registry.runs_references(rt)]
    return entries


def base_cell(entry: GridEntry, batch: int, threads: int | None) -> dict:
    rec, rt = entry.record, entry.runtime
    return dict(variant=rec.variant, format=rec.format, runtime=rt.name, device=rt.device, batch=batch,
                precision=rec.precision.value, threads=threads)


def precheck(entry: GridEntry, threads: int | None) -> Cell | None:
    """A ``skipped`` (or ``error``) cell when the runtime cannot run this record here, else None.

    Cheap and in-process: no cell process is spawned for a cell that cannot run.
    """
    rec, rt = entry.record, entry.runtime
    base = base_cell(entry, 0, threads)
    if not rt.runs(rec.format):
        return Cell(**base, status=Status.SKIPPED,
                    reason=f"{rt.name} runs {', '.join(rt.formats)} files, not {rec.format}")
    try:
        support = rt.create(threads).supports(rec)
    except RuntimeUnavailable as exc:
        return Cell(**base, status=Status.SKIPPED, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded as the cell's error, the sweep goes on
        return Cell(**base, status=Status.ERROR, reason=one_line(exc))
    return None if support.ok else Cell(**base, status=Status.SKIPPED, reason=support.reason)


def not_applicable(cell: Cell) -> bool:
    """A skip that only says the runtime runs another format (the report shows "—")."""
    if cell.status is not Status.SKIPPED:
        return False
    spec = next((s for s in registry.specs() if s.name == cell.runtime), None)
    return spec is not None and not spec.runs(cell.format)
