"""The regression gate between two runs: is the new run worse than the accepted one?

:func:`compare_runs` reads two run directories' records (``results.json``, and
``parity.json`` and ``manifest.json`` when present) and compares them cell by
cell, a cell being (variant, format, runtime, batch):

* latency: the median and p90 ratios new/base, gated by ``max_slowdown_pct``;
* size: file bytes and zstd bytes per artifact, gated by ``max_size_growth_pct``;
* accuracy: top-1 and top-5 in points, gated by ``max_accuracy_drop``;
* parity: the SQNR of each artifact in its parity runtime, gated by ``max_sqnr_drop_db``
  (SQNR above :data:`SQNR_CAP` dB counts as the cap: beyond it only float round-off differs).

**Noise rule.** A slowdown that lies inside the runs' own measured spread is noise,
not a regression: for the median, the spread is the larger of the two cells'
``p90 − median``; for p90 it is the larger ``p99 − p90``. A cell is *regressed*
only when its ratio exceeds the threshold *and* the added milliseconds exceed
that spread; otherwise it is reported as ``noise``.

**Machines.** Latency measured on two different machines (CPU model, ISA flags,
logical cores, thread count, GPU or library versions differ) says nothing about the
change: those differences are listed as a warning and latency is not gated unless
``same_machine_only`` is False. Sizes, accuracy and parity are gated either way.

Cells present on one side only (or ``ok`` on one side only) are listed, never failed.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from runtimes.bench.results import Cell, Environment, LatencyStats, Results, read_results
from runtimes.errors import BadInputError, RegressionError
from runtimes.manifest import MANIFEST_NAME, read_manifest
from runtimes.parity import ParityReport, read_parity

SQNR_CAP = 100.0  # dB: above this, two artifacts differ in the last float bits only


@dataclass(frozen=True)
class CompareOptions:
    """The gate's thresholds (defaults stated in the README), validated once."""

    max_slowdown_pct: float = 10.0  # median or p90 latency, percent
    max_accuracy_drop: float = 0.5  # top-1 / top-5, points
    max_size_growth_pct: float = 1.0  # file and zstd bytes, percent (bytes are reproducible)
    max_sqnr_drop_db: float = 3.0  # parity SQNR, dB
    same_machine_only: bool = True  # latency is gated only when both runs come from the same machine

    def __post_init__(self) -> None:
        for name in ("max_slowdown_pct", "max_accuracy_drop", "max_size_growth_pct", "max_sqnr_drop_db"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                flag = "--" + name.removesuffix("_pct").removesuffix("_db").replace("_", "-")
                raise BadInputError(f"{flag} must be a finite number >= 0, got {value!r}")


class Verdict(str, enum.Enum):
    OK = "ok"
    IMPROVED = "improved"
    NOISE = "noise"  # worse than the threshold, but within the runs' own spread
    NOT_GATED = "not gated"  # latency across machines
    REGRESSED = "regressed"


@dataclass(frozen=True)
class Delta:
    """One metric of one cell, base against new."""

    metric: str  # latency.median | latency.p90 | size.bytes | size.zstd | top1 | top5 | parity.sqnr_db
    variant: str
    format: str
    runtime: str  # "" for sizes (a property of the file)
    batch: int | None  # None for sizes and parity
    base: float
    new: float
    change: float  # percent for latency and size, points for accuracy, dB for SQNR (positive = worse)
    unit: str  # "%", "points", "dB"
    threshold: float  # in the unit of ``change``
    verdict: Verdict
    note: str = ""
    target: str | None = None  # the deployment target both cells ran on (a bench fanned out on Ray)

    @property
    def cell(self) -> str:
        where = f"{self.variant}.{self.format}"
        if self.runtime:
            where += f" {self.runtime}"
        if self.batch is not None:
            where += f" b{self.batch}"
        if self.target is not None:
            where += f" @{self.target}"
        return where

    @property
    def regressed(self) -> bool:
        return self.verdict is Verdict.REGRESSED

    def moved(self) -> str:
        """The signed move of the value: ``+30.0%`` (latency, size), ``-3.0 points``, ``-4.2 dB``."""
        if self.unit == "%":
            return f"{self.change:+.1f}%"
        return f"{-self.change:+.1f} {self.unit}"  # change is the drop: show new - base

    def limit(self) -> str:
        """The threshold in the same words: ``+10%``, ``-0.5 points``, ``-3 dB``."""
        return f"+{self.threshold:g}%" if self.unit == "%" else f"-{self.threshold:g} {self.unit}"

    def describe(self) -> str:
        """``int8.onnx ort-cpu b1 latency.median 4 → 5.2 (+30.0%, limit +10%)``"""
        return f"{self.cell} {self.metric} {self.base:.4g} → {self.new:.4g} ({self.moved()}, limit {self.limit()})"


@dataclass(frozen=True)
class OneSided:
    """A cell found (or ``ok``) in one run only: listed, never failed."""

    side: str  # "base" | "new"
    cell: str
    status: str  # its status in that run, and in the other run when it is there


@dataclass(frozen=True)
class RunComparison:
    base_dir: str
    new_dir: str
    model: str
    options: CompareOptions
    machine_differences: list[str]  # empty: same machine
    latency_gated: bool
    deltas: list[Delta]
    one_sided: list[OneSided] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def same_machine(self) -> bool:
        return not self.machine_differences

    def regressions(self) -> list[Delta]:
        return [d for d in self.deltas if d.regressed]

    @property
    def passed(self) -> bool:
        return not self.regressions()


# ---------------------------------------------------------------- machines

def machine_differences(base: Environment, new: Environment, base_threads: int | None = None,
                        new_threads: int | None = None) -> list[str]:
    """What differs between two runs' machines, in words (empty: the same machine)."""
    out: list[str] = []

    def diff(what: str, a, b) -> None:
        if a != b:
            out.append(f"{what}: {a} vs {b}")

    diff("CPU", base.cpu_model, new.cpu_model)
    missing, extra = sorted(set(base.cpu_flags) - set(new.cpu_flags)), sorted(set(new.cpu_flags) - set(base.cpu_flags))
    if missing or extra:
        out.append("ISA flags: " + ", ".join([*(f"-{f}" for f in missing), *(f"+{f}" for f in extra)]))
    diff("logical cores", base.cores_logical, new.cores_logical)
    diff("threads", base.threads if base_threads is None else base_threads,
         new.threads if new_threads is None else new_threads)
    diff("GPU", base.gpu_name, new.gpu_name)
    for lib in sorted(set(base.versions) | set(new.versions)):
        diff(lib, base.versions.get(lib, "absent"), new.versions.get(lib, "absent"))
    return out


# ---------------------------------------------------------------- metrics

CellKey = tuple[str, str, str, int]  # variant, format, runtime, batch


def _key(cell: Cell) -> CellKey:
    return cell.variant, cell.format, cell.runtime, cell.batch


def _label(key: CellKey) -> str:
    return f"{key[0]}.{key[1]} {key[2]} b{key[3]}"


def latency_delta(metric: str, key: CellKey, base: LatencyStats, new: LatencyStats, opts: CompareOptions,
                  gated: bool) -> Delta:
    """One latency statistic (``median`` or ``p90``) with the noise rule applied."""
    stat = metric.split(".")[1]
    upper = {"median": "p90", "p90": "p99"}[stat]
    b, n = getattr(base, stat), getattr(new, stat)
    change = (n / b - 1.0) * 100.0 if b > 0 else math.inf
    spread = max(getattr(base, upper) - b, getattr(new, upper) - n, 0.0)
    note = ""
    if change > opts.max_slowdown_pct:
        if not gated:
            verdict, note = Verdict.NOT_GATED, "runs from different machines: latency not gated"
        elif n - b <= spread:
            verdict = Verdict.NOISE
            note = f"+{n - b:.3g} ms is within the runs' own spread ({upper} − {stat} = {spread:.3g} ms)"
        else:
            verdict = Verdict.REGRESSED
    elif change < -opts.max_slowdown_pct:
        verdict = Verdict.IMPROVED
    else:
        verdict = Verdict.OK
    return Delta(metric, key[0], key[1], key[2], key[3], b, n, change, "%", opts.max_slowdown_pct, verdict, note)


def _worse_is_higher(metric: str, variant: str, fmt: str, runtime: str, batch: int | None, base: float,
                     new: float, change: float, unit: str, threshold: float) -> Delta:
    verdict = (Verdict.REGRESSED if change > threshold else Verdict.IMPROVED if change < -threshold
               else Verdict.OK)
    return Delta(metric, variant, fmt, runtime, batch, base, new, change, unit, threshold, verdict)


def size_deltas(base: list[Cell], new: list[Cell], opts: CompareOptions) -> list[Delta]:
    """File and zstd bytes per artifact (variant, format): the same in every cell of that file."""
    def sizes(cells: list[Cell]):
        out = {}
        for c in cells:
            if c.size is not None:
                out.setdefault((c.variant, c.format), c.size)
        return out

    b, n = sizes(base), sizes(new)
    out = []
    for key in [k for k in b if k in n]:
        for metric, attr in (("size.bytes", "bytes"), ("size.zstd", "compressed_bytes")):
            old, now = float(getattr(b[key], attr)), float(getattr(n[key], attr))
            change = (now / old - 1.0) * 100.0 if old > 0 else 0.0
            out.append(_worse_is_higher(metric, key[0], key[1], "", None, old, now, change, "%",
                                        opts.max_size_growth_pct))
    return out


def cell_deltas(base: Cell, new: Cell, opts: CompareOptions, latency_gated: bool) -> list[Delta]:
    """Latency (median, p90) and accuracy (top-1, top-5) of one cell ``ok`` in both runs."""
    key = _key(base)
    out = []
    if base.latency_ms is not None and new.latency_ms is not None:
        out += [latency_delta(m, key, base.latency_ms, new.latency_ms, opts, latency_gated)
                for m in ("latency.median", "latency.p90")]
    for metric in ("top1", "top5"):
        b, n = getattr(base, metric), getattr(new, metric)
        if b is not None and n is not None:
            out.append(_worse_is_higher(metric, *key, b, n, b - n, "points", opts.max_accuracy_drop))
    return out


def _capped(sqnr: float) -> float:
    return min(sqnr, SQNR_CAP)


def parity_deltas(base: ParityReport, new: ParityReport, opts: CompareOptions) -> list[Delta]:
    """The SQNR of each artifact in its parity runtime (a drop of more than the threshold regresses)."""
    b = {(r.variant, r.format, r.runtime): r for r in base.results}
    out = []
    for r in new.results:
        old = b.get((r.variant, r.format, r.runtime))
        if old is None:
            continue
        bv, nv = _capped(old.sqnr_db), _capped(r.sqnr_db)
        out.append(_worse_is_higher("parity.sqnr_db", r.variant, r.format, r.runtime, None, bv, nv, bv - nv, "dB",
                                    opts.max_sqnr_drop_db))
    return out


# ---------------------------------------------------------------- runs

@dataclass(frozen=True)
class RunRecords:
    """What :func:`compare_runs` reads from one run directory."""

    path: Path
    results: Results
    parity: ParityReport | None


def read_run(run_dir: Path) -> RunRecords:
    """Results (required, of a schema this code reads), parity and manifest (when present) of a run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BadInputError(f"run directory not found: {run_dir}")
    return RunRecords(run_dir, read_results(run_dir), read_parity(run_dir))


def _same_model(base: RunRecords, new: RunRecords) -> None:
    if base.results.model != new.results.model:
        raise BadInputError(f"{base.path} and {new.path} are runs of different models "
                            f"({base.results.model} vs {new.results.model}): nothing to compare")
    if (base.path / MANIFEST_NAME).is_file() and (new.path / MANIFEST_NAME).is_file():
        a, b = read_manifest(base.path).artifacts, read_manifest(new.path).artifacts
        if a and b and (a[0].num_classes, a[0].input.shape) != (b[0].num_classes, b[0].input.shape):
            raise BadInputError(f"{base.path} and {new.path} are runs of different models: "
                                f"{a[0].num_classes} classes at {a[0].input.shape[1:]} vs "
                                f"{b[0].num_classes} classes at {b[0].input.shape[1:]}")


def _one_sided(base: dict[tuple[CellKey, str | None], Cell],
               new: dict[tuple[CellKey, str | None], Cell]) -> list[OneSided]:
    out = []
    for side, here, there in (("base", base, new), ("new", new, base)):
        for (cell_key, target), cell in here.items():
            if not cell.ok:
                continue
            other = there.get((cell_key, target))
            key = cell_key if target is None else (*cell_key[:3], f"{cell_key[3]} @{target}")
            if other is None:
                out.append(OneSided(side, _label(key), f"ok in {side} only; absent from the other run"))
            elif not other.ok:
                out.append(OneSided(side, _label(key), f"ok in {side} only; {other.status.value} in the other "
                                                       f"run ({other.reason})"))
    return out


def compare_runs(base_dir: Path, new_dir: Path, opts: CompareOptions = CompareOptions()) -> RunComparison:
    """Compare ``new_dir`` with the accepted ``base_dir``, cell by cell (see the module docstring)."""
    base, new = read_run(base_dir), read_run(new_dir)
    _same_model(base, new)
    br, nr = base.results, new.results
    differences = machine_differences(br.environment, nr.environment, br.settings.threads, nr.settings.threads)
    latency_gated = not differences or not opts.same_machine_only
    notes: list[str] = []
    if differences:
        notes.append("the runs come from different machines (" + "; ".join(differences) + "): latency "
                     + ("is gated anyway (--same-machine-only false)" if latency_gated
                        else "is compared but not gated (--same-machine-only false gates it)"))
    b_cells = {(_key(c), c.target): c for c in br.cells}
    n_cells = {(_key(c), c.target): c for c in nr.cells}
    deltas = size_deltas(br.cells, nr.cells, opts)
    for (key, target), cell in b_cells.items():
        other = n_cells.get((key, target))
        if cell.ok and other is not None and other.ok:
            gated = latency_gated
            if cell.node is not None and other.node is not None:
                # Fanned out: each target's cells are compared with that target's, machine against machine.
                gated = not machine_differences(cell.node.environment, other.node.environment,
                                                br.settings.threads, nr.settings.threads) or not opts.same_machine_only
            deltas += [dataclasses.replace(d, target=target) for d in cell_deltas(cell, other, opts, gated)]
    if base.parity is not None and new.parity is not None:
        deltas += parity_deltas(base.parity, new.parity, opts)
    else:
        missing = [str(r.path) for r in (base, new) if r.parity is None]
        notes.append(f"parity SQNR not compared: no parity.json in {', '.join(missing)}")
    return RunComparison(base_dir=str(base_dir), new_dir=str(new_dir), model=br.model, options=opts,
                         machine_differences=differences, latency_gated=latency_gated, deltas=deltas,
                         one_sided=_one_sided(b_cells, n_cells), notes=notes)


def require_no_regression(comparison: RunComparison) -> None:
    """Raise :class:`RegressionError` (exit 5): one short line naming the worst kind of regression first
    (accuracy, then parity, then latency and size) with its values and threshold, and how many more; every
    regression is in the summary (``--summary``) and JUnit (``--junit-xml``)."""
    bad = comparison.regressions()
    if bad:
        first = min(bad, key=lambda d: (not d.metric.startswith("top"), not d.metric.startswith("parity")))
        more = f"; +{len(bad) - 1} more" if len(bad) > 1 else ""
        raise RegressionError(f"{len(bad)} regression(s) against {Path(comparison.base_dir).name}: "
                              f"{first.describe()}{more} (every one in --summary and --junit-xml)")


def verdict_counts(deltas: Iterable[Delta]) -> dict[str, int]:
    counts: dict[str, int] = {v.value: 0 for v in Verdict}
    for d in deltas:
        counts[d.verdict.value] += 1
    return counts
