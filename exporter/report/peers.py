"""Two deployment questions answered from the records: the best latency each runtime gives each precision, and
our INT8 against each peer quantizer's (ORT ``quantize_static``, NNCF) in every runtime that ran both.

Both read the benchmark's cells and interleaved comparisons by type; a peer row is never among "ours", and an
artifact that failed parity (in that runtime or its format's reference runtime) is never a "best".
"""

from __future__ import annotations

from typing import Sequence

from exporter.report.context import ReportContext, role_of, runtime_order, variants_with
from exporter.report.recommend import failed_parity, not_deployable
from exporter.report.sections import register_section
from exporter.variants import Role
from runtimes.bench.results import Cell, Comparison
from runtimes.manifest import Format, Precision
from runtimes.protocol import CPU

PRECISIONS = [p.value for p in Precision]


def _top1(c: Cell) -> str:
    return f"{c.top1:.2f}%" if c.top1 is not None else "–"


def _cpu_cells(ctx: ReportContext) -> tuple[list[Cell], int | None]:
    """The ok CPU cells of the smallest batch, and that batch."""
    cells = [c for c in ctx.cells if c.device == CPU and c.ok and c.median and c.format != Format.EAGER]
    if not cells:
        return [], None
    batch = min(c.batch for c in cells)
    return [c for c in cells if c.batch == batch], batch


def best_per_runtime(cells: Sequence[Cell], failed) -> dict[tuple[str, str], Cell]:
    """(runtime, precision) -> our fastest deployable, unflagged cell."""
    best: dict[tuple[str, str], Cell] = {}
    for c in cells:
        if c.excluded or not_deployable(c, failed) is not None:
            continue
        key = (c.runtime, c.precision)
        if key not in best or c.median < best[key].median:
            best[key] = c
    return best


@register_section("best-per-runtime", order=42)
def best_latency(ctx: ReportContext) -> str:
    cells, batch = _cpu_cells(ctx)
    best = best_per_runtime(cells, failed_parity(ctx))
    if not best:
        return ""
    precisions = [p for p in PRECISIONS if any(k[1] == p for k in best)]
    lines = [f"## Best latency per runtime and precision ({CPU.upper()}, batch {batch})", "",
             "Our fastest deployable artifact of each precision in each runtime (peer rows and artifacts that "
             "failed parity left out); ms, the variant, and top-1 when measured.", "",
             "| Runtime | " + " | ".join(p.upper() for p in precisions) + " |",
             "|---|" + "---:|" * len(precisions)]
    for rt in runtime_order(cells):
        row = []
        for p in precisions:
            c = best.get((rt, p))
            row.append("–" if c is None else
                       f"{c.median:.2f} (`{c.variant}`{', ' + _top1(c) if c.top1 is not None else ''})")
        if any(x != "–" for x in row):
            lines.append(f"| {rt} | " + " | ".join(row) + " |")
    fastest = min(best.values(), key=lambda c: c.median)
    lines += ["", f"Fastest of all: `{fastest.variant}` ({fastest.precision.upper()}) on {fastest.runtime}, "
                  f"{fastest.median:.2f} ms."]
    return "\n".join(lines)


def _ours_against(peer: str, comps: Sequence[Comparison], cells: Sequence[Cell]) -> str | None:
    """Which of our variants the peer is compared with: the one its interleaved comparison names, else our
    dense INT8 when the run has it, else the headline."""
    named = [c.b for c in comps if c.a == peer and not c.b_runtime and role_of(c.b) is not Role.PEER]
    if named:
        return named[-1]  # the like-for-like pair (peer vs int8-dense) is planned after peer vs headline
    have = {c.variant for c in cells}
    heads = variants_with(Role.HEADLINE, cells)
    dense = [f"{h}-dense" for h in heads if f"{h}-dense" in have]
    return (dense or heads or [None])[0]


@register_section("peers", order=43)
def ours_against_peers(ctx: ReportContext) -> str:
    cells, batch = _cpu_cells(ctx)
    peers = variants_with(Role.PEER, cells)
    if not peers:
        return ""
    comps = [c for c in ctx.results.comparisons if c.device == CPU and c.batch == batch]
    lines = [f"## Ours against the peer quantizers ({CPU.upper()}, batch {batch})", "",
             "Per runtime that ran both: latency (separate cells), top-1 when measured, and the interleaved "
             "ratio peer ÷ ours (above 1: ours is faster), which load cannot bias.", "",
             "| Peer | Runtime | Ours | Ours ms | Peer ms | Ours top-1 | Peer top-1 | Interleaved peer ÷ ours |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for peer in peers:
        ours = _ours_against(peer, comps, cells)
        for rt in runtime_order(cells):
            p = next((c for c in cells if c.variant == peer and c.runtime == rt), None)
            o = next((c for c in cells if c.variant == ours and c.runtime == rt and p is not None
                      and c.format == p.format), None)
            if p is None or o is None:
                continue
            comp = next((c for c in comps if c.a == peer and c.b == ours and c.runtime == rt and not c.b_runtime),
                        None)
            ratio = "–" if comp is None else (f"{comp.ratio:.2f}×" + ("" if comp.stable else " ⚠ noisy")
                                             if comp.ok else f"{comp.status}")
            lines.append(f"| `{peer}` | {rt} | `{ours}` | {o.median:.2f} | {p.median:.2f} | {_top1(o)} | "
                         f"{_top1(p)} | {ratio} |")
    return "\n".join(lines) if len(lines) > 6 else ""
