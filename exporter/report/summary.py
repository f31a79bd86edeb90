"""The speed-up summary and the per-device recommendation, found by role (baseline, headline, peer)."""

from __future__ import annotations

from typing import Sequence

from exporter.report.context import ReportContext, reference_runtimes, runtime_order, variants_with
from exporter.report.recommend import failed_parity, not_deployable, pick_line, recommend, where
from exporter.report.sections import register_section
from exporter.report.verdict import disagreements, sentence
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
    # Every deployable variant of the headline's precision competes (int8-dense, int8-slim, ...), not only
    # the headline: a compact model's user deploys int8-dense.
    failed = failed_parity(ctx)
    same_precision = [c for c in cells if c.precision == heads[0].precision and c.format != Format.EAGER
                      and not c.excluded and not_deployable(c, failed) is None]
    best = min(same_precision or heads, key=lambda c: c.median)
    across = "" if best.runtime == base.runtime else f" (across runtimes: {best.runtime} vs {base.runtime})"
    lines.append(f"- Best {h_label}: `{best.variant}` as `{best.format}` on {best.runtime}, {best.median:.2f} ms "
                 f"vs {b_label} {base.runtime} {base.median:.2f} ms: **{base.median / best.median:.2f}×**{across}")
    # One verdict per question: where the interleaved rounds contradict the separate cells' direction, say
    # which to believe, once, and use that figure in the table below.
    labels = {base.variant: b_label, heads[0].variant: h_label}
    contradicted = {(d.comparison.runtime, d.comparison.a, d.comparison.b, d.comparison.a_format): d
                    for d in disagreements(ctx.cells, [c for c in ctx.results.comparisons if c.device == CPU])}
    lines += [f"- ⚠ {sentence(d, labels)}" for d in contradicted.values()]
    rows = []
    for rt in runtime_order(cells):
        for c in heads:
            ref = look.get((base.variant, c.format, rt))
            if c.runtime == rt and ref is not None:
                noisy = " ⚠ noisy" if not (c.stable and ref.stable) else ""
                ratio = f"{ref.median / c.median:.2f}×{noisy}"
                d = contradicted.get((rt, base.variant, c.variant, c.format))
                if d is not None:
                    ratio = (f"undecided (separate {d.separate:.2f}×, interleaved {d.interleaved:.2f}×)"
                             if d.believe is None else f"{d.figure:.2f}× ({d.believe}; see above)")
                rows.append(f"| {rt} | {c.format} | {ref.median:.2f} | {c.median:.2f} | {ratio} |")
    if rows:
        lines += ["", f"Same runtime, {h_label} vs {b_label} (separate cells):", "",
                  f"| Runtime | Format | {b_label} ms | {h_label} ms | Speed-up |", "|---|---|---:|---:|---:|",
                  *rows]
    lines += interleaved_rows(ctx, {base.variant: b_label, heads[0].variant: h_label})
    peers = variants_with(Role.PEER, ctx.cells)
    peer = [c for c in cells if peers and c.variant == peers[0]]
    if peer:
        p = min(peer, key=lambda c: c.median)
        versus = (f"{best.median:.2f} ms vs {p.median:.2f} ms on {p.runtime}" if best.runtime == p.runtime else
                  f"{best.median:.2f} ms ({_at(best)}) vs {p.median:.2f} ms ({_at(p)})")
        lines += ["", f"- {h_label} vs {p.variant} (best of each): {versus}: **{p.median / best.median:.2f}×**"]
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
        runtime = c.runtime
        if c.b_runtime:  # one artifact in two runtimes
            name, runtime = f"`{c.a}`: {c.b_runtime} vs {c.runtime}", f"{c.b_runtime} vs {c.runtime}"
        if not c.ok:
            rows.append(f"| {runtime} | {name} | {c.a_format} | {c.status}: {c.reason} | | |")
            continue
        note = "" if c.stable else " ⚠ noisy"
        rows.append(f"| {runtime} | {name} | {c.a_format} | **{c.ratio:.2f}×**{note} | "
                    f"{c.ratio_p10:.2f}–{c.ratio_p90:.2f} | {c.rounds} |")
    return ["", "Interleaved in one process (alternating rounds; a burst of load slows both sides of a round, "
                "so noise cannot bias these ratios; switching models costs cache, so they can sit below the "
                "separate-cell ratios on a quiet machine):", "",
            "| Runtime | Comparison | Format | Speed-up (median of rounds) | p10–p90 | Rounds |",
            "|---|---|---|---:|---:|---:|", *rows]


@register_section("recommendation", order=50)
def recommendation(ctx: ReportContext) -> str:
    """Rendered from :func:`exporter.report.recommend.recommend`: what a user may deploy, and why not the rest."""
    lines = ["## Recommendation", ""]
    for r in recommend(ctx):
        if r.batch is None:
            lines.append(f"- **{r.device.upper()}:** {r.rule}.")
            continue
        head = f"- **{r.device.upper()}, batch {r.batch}:**"
        if r.pick is None:
            lines.append(f"{head} nothing meets: {r.rule}.")
        else:
            lines.append(f"{head} {pick_line(r)} ({r.rule})" + (" — its timing is noisy" if not r.pick.stable else ""))
        if r.undecided:
            lines.append(f"  - undecided, rerun on a quiet machine: its timing spread (±{r.band * 100:.0f}%) is too "
                         f"wide to rank it against " + "; ".join(where(o) for o in r.rivals))
        elif r.tie:
            lines.append(f"  - tie within the noise band (±{r.band * 100:.0f}%), not a decision: "
                         + "; ".join(where(o) for o in r.rivals))
        faster = [x for x in r.left_out if r.pick is None or x.cell.median < r.pick.median]
        if faster:
            lines.append("  - faster but not deployable: " + "; ".join(
                f"{where(x.cell)}" + (f", top-1 {x.cell.top1:.2f}%" if x.cell.top1 is not None else "")
                + f" ({x.reason})" for x in sorted(faster, key=lambda x: x.cell.median)))
    if not ctx.results.weights.trained and any(c.top1 is not None for c in ctx.cells):
        lines.append("- Weights are UNTRAINED: the accuracy criterion above is not meaningful.")
    return "\n".join(lines)
