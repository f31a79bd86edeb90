"""The parity section: every artifact against the eager model it was exported from (``parity.json``)."""

from __future__ import annotations

import math

from exporter.report.context import ReportContext
from exporter.report.sections import register_section


@register_section("parity", order=70)
def parity_section(ctx: ReportContext) -> str:
    if ctx.parity is None or not ctx.parity.results:
        return ""
    rows = ctx.parity.results
    first = rows[0]
    lines = ["## Parity", "",
             f"Each artifact against the eager model it was exported from, on {first.n_inputs} "
             f"{first.input_source} inputs; overall: **{'pass' if ctx.parity.passed else 'FAIL'}**. "
             "Tolerances per precision are in the README.", "",
             "| artifact | runtime | vs | max abs | cosine | SQNR dB | top-1 agr. | top-5 ovl. | result |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        sq_text = "identical" if r.sqnr_db == math.inf else f"{r.sqnr_db:.1f}"
        result = "pass" if r.passed else "FAIL: " + "; ".join(r.violations)
        lines.append(f"| {r.path} | {r.runtime} | {r.reference} | {r.max_abs_error:.3g} | "
                     f"{r.cosine:.6f} | {sq_text} | {r.top1_agreement:.3f} | {r.top5_overlap:.3f} | "
                     f"{result} |")
    return "\n".join(lines)
