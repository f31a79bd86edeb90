"""The speed-up summary and the per-device recommendation, found by role (baseline, headline, peer)."""

from __future__ import annotations

from typing import Sequence

from exporter.options import DEFAULT_MAX_ACCURACY_DROP
from exporter.report.context import ReportContext, devices, reference_runtimes, runtime_order, variants_with
from exporter.report.sections import register_section
from exporter.variants import Role
from runtimes.bench.results import Cell
from runtimes.manifest import Format
from runtimes.protocol import CPU


def cell_lookup(cells: Sequence[Cell]) -> dict[tuple[str, str, str], Cell]:
    """(variant, format, runtime) -> cell; for cells of one device and batch."""
    return {(c.variant, c.format, c.runtime): c for c in cells}


def _label(cells: Sequence[Cell], variant: str) -> str:
    """How the text names a role's variant: by its precision (``INT8``, ``FP32``)."""
    return next((c.precision.upper() for c in cells if c.variant == variant and c.precision), variant)


def _at(c: Cell) -> str:
    return f"`{c.format}` on {c.runtime}"


@register_section("speedups", order=40)
def speedups(ctx: ReportContext) -> str:
    cells = [c for c in ctx.cells if c.device == CPU and c.batch == 1 and c.ok]
    look = cell_lookup(cells)
    lines = [f"## Speed-up summary ({CPU.upper()}, batch 1)", ""]
    baseline = variants_with(Role.BASELINE, ctx.cells)
    headline = variants_with(Role.HEADLINE, ctx.cells)
    ref_rt = next(iter(reference_runtimes(CPU)), None)
    base = look.get((baseline[0], Format.EAGER, ref_rt)) if baseline and ref_rt else None
    heads = [c for c in cells if headline and c.variant == headline[0]]
    if base is None or not heads:
        lines.append("Not available: needs ok CPU cells for the baseline in its reference runtime and "
                     "the headline variant at batch 1.")
        return "\n".join(lines)
    b_label, h_label = _label(ctx.cells, base.variant), _label(ctx.cells, heads[0].variant)
    best = min(heads, key=lambda c: c.median)
    across = "" if best.runtime == base.runtime else f" (across runtimes: {best.runtime} vs {base.runtime})"
    lines.append(f"- Best {h_label}: `{best.format}` on {best.runtime}, {best.median:.2f} ms vs {b_label} "
                 f"{base.runtime} {base.median:.2f} ms: **{base.median / best.median:.2f}×**{across}")
    rows = []
    for rt in runtime_order(cells):
        for c in heads:
            ref = look.get((base.variant, c.format, rt))
            if c.runtime == rt and ref is not None:
                noisy = " ⚠ noisy" if not (c.stable and ref.stable) else ""
                rows.append(f"| {rt} | {c.format} | {ref.median:.2f} | {c.median:.2f} | "
                            f"{ref.median / c.median:.2f}×{noisy} |")
    if rows:
        lines += ["", f"Same runtime, {h_label} vs {b_label} (separate cells):", "",
                  f"| Runtime | Format | {b_label} ms | {h_label} ms | Speed-up |", "|---|---|---:|---:|---:|",
                  *rows]
    lines += interleaved_rows(ctx, {base.variant: b_label, heads[0].variant: h_label})
    peers = variants_with(Role.PEER, ctx.cells)
    peer = [c for c in cells if peers and c.variant == peers[0]]
    if peer:
        p = min(peer, key=lambda c: c.median)
        where = (f"{best.median:.2f} ms vs {p.median:.2f} ms on {p.runtime}" if best.runtime == p.runtime else
                 f"{best.median:.2f} ms ({_at(best)}) vs {p.median:.2f} ms ({_at(p)})")
        lines += ["", f"- {h_label} vs {p.variant} (best of each): {where}: **{p.median / best.median:.2f}×**"]
        same = look.get((best.variant, p.format, p.runtime))
        if same is not None and same is not best:
            lines.append(f"- Both on {p.runtime}: {same.median:.2f} ms vs {p.median:.2f} ms: "
                         f"**{p.median / same.median:.2f}×**")
    else:
        lines += ["", f"- {h_label} vs the peer: no ok peer cell."]
    return "\n".join(lines)


def interleaved_rows(ctx: ReportContext, labels: dict[str, str]) -> list[str]:
    """The interleaved A/B comparisons (runtimes.bench.compare), when the benchmark ran them."""
    comps = [c for c in ctx.results.comparisons if c.device == CPU]
    if not comps:
        return []
    rows = []
    for c in comps:
        name = f"{labels.get(c.b, c.b)} vs {labels.get(c.a, c.a)}"
        if not c.ok:
            rows.append(f"| {c.runtime} | {name} | {c.a_format} | {c.status}: {c.reason} | | |")
            continue
        note = "" if c.stable else " ⚠ noisy"
        rows.append(f"| {c.runtime} | {name} | {c.a_format} | **{c.ratio:.2f}×**{note} | "
                    f"{c.ratio_p10:.2f}–{c.ratio_p90:.2f} | {c.rounds} |")
    return ["", "Interleaved in one process (alternating rounds; a burst of load slows both sides of a round, "
                "so noise cannot bias these ratios; switching models costs cache, so they can sit below the "
                "separate-cell ratios on a quiet machine):", "",
            "| Runtime | Comparison | Format | Speed-up (median of rounds) | p10–p90 | Rounds |",
            "|---|---|---|---:|---:|---:|", *rows]


# Sequential cells of the same artifact differ by up to ±5% from run to run on these machines
# (README); a cell's own spread can be wider. Candidates within the band are ties, not a decision.
TIE_FLOOR = 0.05


def noise_band(c: Cell) -> float:
    """Relative half-width of a cell's noise band: its own p90/median spread, at least TIE_FLOOR."""
    return max(TIE_FLOOR, c.latency_ms.p90 / c.latency_ms.median - 1.0)


def _where(c: Cell) -> str:
    noisy = " (noisy timing)" if not c.stable else ""
    return f"`{c.variant}` as {c.format} on {c.runtime}: {c.median:.2f} ms{noisy}"


@register_section("recommendation", order=50)
def recommendation(ctx: ReportContext) -> str:
    cells = ctx.cells
    s = ctx.results.settings
    drop = float(s.max_accuracy_drop if s.max_accuracy_drop is not None else DEFAULT_MAX_ACCURACY_DROP)
    lines = ["## Recommendation", ""]
    for device in devices(cells):
        dev = [c for c in cells if c.device == device]
        cands = [c for c in dev if c.ok and not c.excluded and c.format != Format.EAGER]
        if not dev:
            continue
        if not cands:
            lines.append(f"- **{device.upper()}:** no ok, unflagged artifact cell.")
            continue
        base = baseline_top1(cells, device)
        for batch in sorted({c.batch for c in cands}):
            pool = [c for c in cands if c.batch == batch]
            if base is not None:
                pool = [c for c in pool if c.top1 is not None and c.top1 >= base[0] - drop]
                rule = f"fastest within {drop:g} top-1 points of {base[1]} ({base[0]:.2f}%)"
            else:
                unknown = ", ".join(dict.fromkeys(c.variant for c in pool))
                rule = (f"fastest ok, unflagged artifact; speed only: accuracy not measured (no --eval-data), "
                        f"so it is unknown for {unknown}")
            if not pool:
                lines.append(f"- **{device.upper()}, batch {batch}:** nothing meets: {rule}.")
                continue
            c = min(pool, key=lambda c: c.median)
            extra = f"; top-1 {c.top1:.2f}%" if c.top1 is not None else ""
            size = f", zstd {c.size.compressed_bytes / 1e6:.2f} MB" if c.size else ""
            lines.append(f"- **{device.upper()}, batch {batch}:** `{c.variant}` as {c.format} on "
                         f"{c.runtime}: {c.median:.2f} ms{size}{extra} ({rule})"
                         + (" — its timing is noisy" if not c.stable else ""))
            band = noise_band(c)
            ties = [o for o in pool if o is not c and o.median <= c.median * (1 + band)]
            if ties:
                lines.append(f"  - tie within the noise band (±{band * 100:.0f}%), not a decision: "
                             + "; ".join(_where(o) for o in sorted(ties, key=lambda o: o.median)))
    if not ctx.results.weights.trained and any(c.top1 is not None for c in cells):
        lines.append("- Weights are UNTRAINED: the accuracy criterion above is not meaningful.")
    return "\n".join(lines)


def baseline_top1(cells: Sequence[Cell], device: str) -> tuple[float, str] | None:
    """(top-1, "FP32 eager"): the baseline's accuracy in the device's reference runtime (else the CPU's)."""
    baseline = variants_with(Role.BASELINE, cells)
    if not baseline:
        return None
    for rt in [*reference_runtimes(device), *reference_runtimes(CPU)]:
        for c in cells:
            if c.variant == baseline[0] and c.runtime == rt and c.ok and c.top1 is not None:
                return c.top1, f"{_label(cells, c.variant)} {rt}"
    return None
