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
    lines.append(f"- Best {h_label}: `{best.format}` on {best.runtime}, {best.median:.2f} ms vs {b_label} "
                 f"{base.runtime} {base.median:.2f} ms: **{base.median / best.median:.2f}×**")
    rows = []
    for rt in runtime_order(cells):
        for c in heads:
            ref = look.get((base.variant, c.format, rt))
            if c.runtime == rt and ref is not None:
                rows.append(f"| {rt} | {c.format} | {ref.median:.2f} | {c.median:.2f} | "
                            f"{ref.median / c.median:.2f}× |")
    if rows:
        lines += ["", f"Same runtime, {h_label} vs {b_label}:", "",
                  f"| Runtime | Format | {b_label} ms | {h_label} ms | Speed-up |", "|---|---|---:|---:|---:|",
                  *rows]
    peers = variants_with(Role.PEER, ctx.cells)
    peer = [c for c in cells if peers and c.variant == peers[0]]
    if peer:
        p = min(peer, key=lambda c: c.median)
        lines += ["", f"- {h_label} vs {p.variant} (best of each): {best.median:.2f} ms vs "
                      f"{p.median:.2f} ms on {p.runtime}: **{p.median / best.median:.2f}×**"]
        same = look.get((best.variant, p.format, p.runtime))
        if same is not None:
            lines.append(f"- Both on {p.runtime}: {same.median:.2f} ms vs {p.median:.2f} ms: "
                         f"**{p.median / same.median:.2f}×**")
    else:
        lines += ["", f"- {h_label} vs the peer: no ok peer cell."]
    return "\n".join(lines)


@register_section("recommendation", order=50)
def recommendation(ctx: ReportContext) -> str:
    cells = ctx.cells
    s = ctx.results.settings
    drop = float(s.max_accuracy_drop if s.max_accuracy_drop is not None else DEFAULT_MAX_ACCURACY_DROP)
    lines = ["## Recommendation", ""]
    for device in devices(cells):
        dev = [c for c in cells if c.device == device]
        cands = [c for c in dev if c.ok and not c.flags and c.format != Format.EAGER]
        if not dev:
            continue
        if not cands:
            lines.append(f"- **{device.upper()}:** no ok, unflagged artifact cell.")
            continue
        base = baseline_top1(cells, device)
        for batch in sorted({c.batch for c in cands}):
            pool = [c for c in cands if c.batch == batch]
            rule = "fastest ok, unflagged artifact"
            if base is not None:
                pool = [c for c in pool if c.top1 is not None and c.top1 >= base[0] - drop]
                rule = f"fastest within {drop:g} top-1 points of {base[1]} ({base[0]:.2f}%)"
            if not pool:
                lines.append(f"- **{device.upper()}, batch {batch}:** nothing meets: {rule}.")
                continue
            c = min(pool, key=lambda c: c.median)
            extra = f"; top-1 {c.top1:.2f}%" if c.top1 is not None else ""
            size = f", zstd {c.size.compressed_bytes / 1e6:.2f} MB" if c.size else ""
            lines.append(f"- **{device.upper()}, batch {batch}:** `{c.variant}` as {c.format} on "
                         f"{c.runtime}: {c.median:.2f} ms{size}{extra} ({rule})")
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
