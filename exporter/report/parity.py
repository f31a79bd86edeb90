"""The parity section: every artifact against the eager model it was exported from (``parity.json``)."""

from __future__ import annotations

import math

from exporter.report.context import ReportContext
from exporter.report.sections import register_section
from runtimes.parity import DEGENERATE


@register_section("parity", order=70)
def parity_section(ctx: ReportContext) -> str:
    if ctx.parity is None or not ctx.parity.results:
        return ""
    rows = ctx.parity.results
    first = rows[0]
    lines = ["## Parity", "",
             f"Each artifact against the eager model it was exported from, on {first.n_inputs} "
             f"{first.input_source} inputs; overall: **{'pass' if ctx.parity.passed else 'FAIL'}**"
             + ("" if ctx.parity.peers_passed else " (a peer row is outside its tolerance: reported, not gated)")
             + ". "
             "Tolerances per precision are in docs/parity.md. **Bold** values were gated by a tolerance; the "
             "others are informational (top-1 agreement is not gated for untrained weights, whose logits "
             "are near-tied; top-5 overlap never is).", "",
             "| artifact | runtime | vs | max abs | max rel | cosine | SQNR dB | top-1 agr. | top-5 ovl. | result |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        gated = set(r.gated())

        def cell(name: str, text: str) -> str:
            return f"**{text}**" if name in gated else text

        sq_text = "identical" if r.sqnr_db == math.inf else f"{r.sqnr_db:.1f}"
        result = r.verdict()
        if r.degenerate:
            result += " ⚠ DEGENERATE"
        rel_text = "–" if r.max_rel_error is None else f"{r.max_rel_error:.3g}"
        lines.append(f"| {r.path} | {r.runtime_label} | {r.reference} | {cell('max_abs_error', f'{r.max_abs_error:.3g}')} | "
                     f"{cell('max_rel_error', rel_text)} | "
                     f"{cell('cosine', f'{r.cosine:.6f}')} | {cell('sqnr_db', sq_text)} | "
                     f"{cell('top1_agreement', f'{r.top1_agreement:.3f}')} | {r.top5_overlap:.3f} | {result} |")
    return "\n".join(lines)


@register_section("warnings", order=15)
def warnings_section(ctx: ReportContext) -> str:
    """What the export and parity found wrong with artifacts (e.g. degenerate ones), said once."""
    found: dict[str, None] = {}
    for rec in (ctx.manifest.records() if ctx.manifest else []):
        found.update(dict.fromkeys(rec.warnings))
    for r in (ctx.parity.results if ctx.parity else []):
        found.update(dict.fromkeys(n for n in r.notes if n.startswith(DEGENERATE)))
    if not found:
        return ""
    return "\n".join(["## ⚠ Warnings", "", *(f"- **{w}**" for w in found)])
