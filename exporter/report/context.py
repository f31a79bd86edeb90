"""What every report section reads: the run's typed records, and the roles derived from the registries.

Records are read by type (:func:`load_context`); nothing is re-run. Which rows
are the baseline, the headline, the peer, which runtime is a device's
reference, which devices exist: all come from the variant and runtime
registries, never from names written in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from exporter.analysis.records import SensitivityReport, SweepReport, read_sensitivity, read_sweep
from exporter.variants import Role, all_variants
from runtimes import registry
from runtimes.bench.grid import not_applicable
from runtimes.bench.results import Cell, Results, read_results
from runtimes.manifest import MANIFEST_NAME, RUN_FILES, Format, Manifest, read_manifest
from runtimes.parity import ParityReport, read_parity

FIGURES_DIR = RUN_FILES.figures
OTHER_GROUP = "Other"


@dataclass
class ReportContext:
    run_dir: Path
    results: Results
    manifest: Manifest | None
    parity: ParityReport | None
    sweep: SweepReport | None = None
    sensitivity: SensitivityReport | None = None
    figures: dict[str, Path] = field(default_factory=dict)  # name -> path relative to run_dir
    notes: list[str] = field(default_factory=list)  # e.g. figures that could not be drawn

    @property
    def figures_dir(self) -> Path:
        return self.run_dir / FIGURES_DIR

    @property
    def targets(self) -> list[str | None]:
        """The deployment targets the cells were measured on, in the order asked (``[None]``: one machine)."""
        seen = list(dict.fromkeys(c.target for c in self.results.cells))
        asked = [t for t in self.results.settings.targets if t in seen]
        return asked + [t for t in seen if t not in asked] or [None]

    @property
    def primary_target(self) -> str | None:
        return self.targets[0]

    @property
    def cells(self) -> list[Cell]:
        """The cells every section but "Deployment targets" reads: one machine's (the first target's when the
        bench fanned out across several), so that no section compares latencies of two machines."""
        if len(self.targets) == 1:
            return self.results.cells
        return [c for c in self.results.cells if c.target == self.primary_target]


def load_context(run_dir: Path) -> ReportContext:
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    manifest = read_manifest(run_dir) if (run_dir / MANIFEST_NAME).is_file() else None
    return ReportContext(run_dir, results, manifest, read_parity(run_dir), read_sweep(run_dir),
                         read_sensitivity(run_dir))


# ---------------------------------------------------------------- derived from the registries

def role_of(variant: str) -> Role:
    return next((v.role for v in all_variants() if v.name == variant), Role.VARIANT)


def prunes(variant: str) -> bool:
    """Whether the variant prunes weights (else its zeros are the weights' natural ones); unknown: True."""
    return next((v.prunes for v in all_variants() if v.name == variant), True)


def dense_of(variant: str) -> str | None:
    """The dense variant of the same precision a (channel-pruned) variant's speed-up is measured against."""
    return next((v.dense for v in all_variants() if v.name == variant), None)


def macs_by_variant(manifest: Manifest | None) -> dict[str, int]:
    """Multiply-accumulates per image of each variant, as its artifacts record them (older runs: none)."""
    if manifest is None:
        return {}
    return {a.variant: a.macs for a in manifest.artifacts if a.macs is not None}


def variants_with(role: Role, cells: Sequence[Cell]) -> list[str]:
    """The variants of ``cells`` that have ``role``, in the order they appear."""
    return [v for v in dict.fromkeys(c.variant for c in cells) if role_of(v) is role]


def table_groups(cells: Sequence[Cell]) -> list[tuple[str, list[str]]]:
    """(title, variants) per report table: the registry's groups in registration order, then "Other"."""
    groups: dict[str, list[str]] = {}
    for v in all_variants():
        groups.setdefault(v.group, []).append(v.name)
    present = list(dict.fromkeys(c.variant for c in cells))
    registered = {v for vs in groups.values() for v in vs}
    other = [v for v in present if v not in registered]
    if other:
        groups.setdefault(OTHER_GROUP, []).extend(other)
    return list(groups.items())


def devices(cells: Sequence[Cell]) -> list[str]:
    """The registry's devices, then any other device the cells name."""
    return list(dict.fromkeys([*registry.devices(), *(c.device for c in cells)]))


def runtime_order(cells: Sequence[Cell]) -> list[str]:
    """Runtimes in registry order, then any other runtime the cells name; a runtime whose every cell only says
    that it runs another format (the run has no artifact of its format: ``aoti`` without ``--formats pt2``) has
    no column."""
    return [r for r in dict.fromkeys([*registry.runtime_names(), *(c.runtime for c in cells)])
            if any(c.runtime == r and not not_applicable(c) for c in cells)]


def format_order(cells: Sequence[Cell]) -> list[str]:
    """The reference format first, then formats in registry order, then any other."""
    return list(dict.fromkeys([Format.EAGER, *registry.formats(), *sorted({c.format for c in cells})]))


def reference_runtimes(device: str) -> list[str]:
    """The runtimes of ``device`` that run eager references (the baseline's own runtime)."""
    return [s.name for s in registry.specs() if s.device == device and registry.runs_references(s)]
