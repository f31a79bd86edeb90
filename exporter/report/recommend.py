"""What to deploy, per device and batch: a typed verdict derived from the run's records, nothing re-run.

A candidate is an ok, unflagged artifact cell (not the eager reference) that a user may deploy:
never a peer row (another tool's artifact, kept for comparison) and never an artifact that failed
parity. With accuracy measured, only candidates within ``max_accuracy_drop`` top-1 points of the
FP32 baseline qualify, and the verdict states the accuracy it read. The fastest qualifying median
wins; rivals inside its noise band make the verdict a tie, and a band too wide to separate anything
makes it *undecided* (rerun on a quiet machine), never a tie.

The report's Recommendation section and the terminal's last lines after ``run`` both render these
records (:func:`recommend`), so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from exporter.options import DEFAULT_MAX_ACCURACY_DROP
from exporter.report.context import ReportContext, devices, reference_runtimes, role_of, variants_with
from exporter.variants import Role
from runtimes import registry
from runtimes.bench.results import Cell
from runtimes.manifest import Format
from runtimes.protocol import CPU

# Sequential cells of the same artifact differ by up to ±5% from run to run on these machines
# (README); a cell's own spread can be wider. Candidates within the band are ties, not a decision.
TIE_FLOOR = 0.05
# Beyond ±25% a cell's own timing cannot rank it against its rivals: the verdict is undecided.
UNDECIDED_BAND = 0.25

PEER_REASON = "peer row (another tool's artifact, for comparison)"
PARITY_REASON = "failed parity"
NO_TOP1_REASON = "no top-1 measured"


def noise_band(c: Cell) -> float:
    """Relative half-width of a cell's noise band: its own p90/median spread, at least TIE_FLOOR."""
    return max(TIE_FLOOR, c.latency_ms.p90 / c.latency_ms.median - 1.0)


@dataclass(frozen=True)
class Baseline:
    top1: float
    label: str  # e.g. "FP32 eager"


@dataclass(frozen=True)
class LeftOut:
    cell: Cell
    reason: str


@dataclass(frozen=True)
class Recommendation:
    device: str
    batch: int | None  # None: the device had no candidate at all
    pick: Cell | None  # None: nothing qualifies (``rule`` says what was asked)
    rule: str  # the criterion, in words, with the accuracy it read
    baseline: Baseline | None
    max_drop: float
    band: float = 0.0  # the pick's noise band (relative half-width)
    rivals: list[Cell] = field(default_factory=list)  # qualifying cells inside the pick's band
    left_out: list[LeftOut] = field(default_factory=list)  # faster-or-not cells a user may not deploy, and why

    @property
    def undecided(self) -> bool:
        """Rivals inside a band too wide to separate them: rerun on a quiet machine."""
        return bool(self.rivals) and self.band > UNDECIDED_BAND

    @property
    def tie(self) -> bool:
        return bool(self.rivals) and not self.undecided


def _label(cells: Sequence[Cell], variant: str) -> str:
    return next((c.precision.upper() for c in cells if c.variant == variant and c.precision), variant)


def baseline_top1(cells: Sequence[Cell], device: str) -> Baseline | None:
    """The baseline's top-1 in the device's reference runtime (else the CPU's), else in any runtime that
    measured it: accuracy measured anywhere for the baseline is never reported as "not measured"."""
    baseline = variants_with(Role.BASELINE, cells)
    if not baseline:
        return None
    measured = [c for c in cells if c.variant == baseline[0] and c.ok and c.top1 is not None]
    order = [*reference_runtimes(device), *reference_runtimes(CPU)]
    for rt in order:
        for c in measured:
            if c.runtime == rt:
                return Baseline(c.top1, f"{_label(cells, c.variant)} {rt}")
    here = [c for c in measured if c.device == device] or measured
    if here:
        c = here[0]
        return Baseline(c.top1, f"{_label(cells, c.variant)} {c.format} on {c.runtime}")
    return None


def failed_parity(ctx: ReportContext) -> set[tuple[str, str, str | None]]:
    """Where an artifact may not be deployed for failing parity: (variant, format, runtime).

    A failure in the format's reference runtime (ORT for ONNX) condemns the file everywhere (runtime None);
    a failure only in another runtime (the portability check in OpenVINO) condemns that runtime's cells."""
    if ctx.parity is None:
        return set()
    out: set[tuple[str, str, str | None]] = set()
    for r in ctx.parity.results:
        if not r.passed:
            reference = r.runtime == registry.reference_runtime(r.format).name
            out.add((r.variant, r.format, None if reference else r.runtime))
    return out


def not_deployable(c: Cell, failed: set[tuple[str, str, str | None]]) -> str | None:
    """Why a user may not deploy this cell's artifact (None: they may)."""
    if role_of(c.variant) is Role.PEER:
        return PEER_REASON
    if (c.variant, c.format, None) in failed:
        return PARITY_REASON
    if (c.variant, c.format, c.runtime) in failed:
        return f"{PARITY_REASON} in {c.runtime}"
    return None


def recommend(ctx: ReportContext) -> list[Recommendation]:
    """One verdict per (device, batch) that has candidates; one per device that has none."""
    cells = ctx.cells
    s = ctx.results.settings
    drop = float(s.max_accuracy_drop if s.max_accuracy_drop is not None else DEFAULT_MAX_ACCURACY_DROP)
    failed = failed_parity(ctx)
    out: list[Recommendation] = []
    for device in devices(cells):
        dev = [c for c in cells if c.device == device]
        if not dev:
            continue
        usable = [c for c in dev if c.ok and not c.excluded and c.format != Format.EAGER]
        base = baseline_top1(cells, device)
        if not usable:
            out.append(Recommendation(device, None, None, "no ok, unflagged artifact cell", base, drop))
            continue
        for batch in sorted({c.batch for c in usable}):
            here = [c for c in usable if c.batch == batch]
            left = [LeftOut(c, r) for c in here if (r := not_deployable(c, failed))]
            pool = [c for c in here if not_deployable(c, failed) is None]
            if base is not None:
                left += [LeftOut(c, NO_TOP1_REASON) for c in pool if c.top1 is None]
                pool = [c for c in pool if c.top1 is not None and c.top1 >= base.top1 - drop]
                rule = f"fastest within {drop:g} top-1 points of {base.label} ({base.top1:.2f}%)"
            else:
                rule = ("fastest ok, unflagged artifact; speed only: the baseline's accuracy was not measured "
                        "(no --eval-data), so no accuracy budget applies")
            if not pool:
                out.append(Recommendation(device, batch, None, rule, base, drop, left_out=left))
                continue
            pick = min(pool, key=lambda c: c.median)
            band = noise_band(pick)
            rivals = sorted((o for o in pool if o is not pick and o.median <= pick.median * (1 + band)),
                            key=lambda o: o.median)
            out.append(Recommendation(device, batch, pick, rule, base, drop, band, rivals, left))
    return out


def where(c: Cell) -> str:
    noisy = " (noisy timing)" if not c.stable else ""
    return f"`{c.variant}` as {c.format} on {c.runtime}: {c.median:.2f} ms{noisy}"


def pick_line(r: Recommendation) -> str:
    """``int8-dense`` as onnx on ort-cpu: 2.00 ms, zstd 8.80 MB; top-1 69.50%"""
    c = r.pick
    size = f", zstd {c.size.compressed_bytes / 1e6:.2f} MB" if c.size else ""
    top1 = f"; top-1 {c.top1:.2f}%" if c.top1 is not None else ""
    return f"`{c.variant}` as {c.format} on {c.runtime}: {c.median:.2f} ms{size}{top1}"


def terminal_lines(recs: Sequence[Recommendation], limit: int = 4) -> list[str]:
    """At most ``limit`` short lines for the terminal: the decided picks first (CPU batch 1 leads)."""
    lines = []
    ranked = sorted((r for r in recs if r.pick is not None),
                    key=lambda r: (r.device != CPU, r.batch != 1, r.device, r.batch))
    for r in ranked[:limit]:
        verdict = " (undecided: rerun on a quiet machine)" if r.undecided else (" (tie within noise)" if r.tie else "")
        lines.append(f"{r.device.upper()} batch {r.batch}: {pick_line(r)}{verdict}")
    if not lines:
        lines.append("no artifact qualifies: see the report's Recommendation")
    return lines
