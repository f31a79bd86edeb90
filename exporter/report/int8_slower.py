"""Where INT8 is slower than FP32: every runtime and batch where it happened, and why when the run knows.

The seed study reported INT8 54× slower than FP32 without a reason; this section says it wherever it is
true, measured in the same runtime and format, and outside both cells' noise bands. The known reasons come
from the manifest (operators that run float inside the INT8 model, each converted from and back to INT8) and
from the cells: the kernels each runtime really ran after its own graph optimizations (runtimes.kernels:
integer, float, and the quantize/dequantize conversions between them), and a PyTorch runtime's per-operator
overhead at small inputs.
"""

from __future__ import annotations

from exporter.report.context import ReportContext, variants_with
from exporter.report.sections import register_section
from exporter.report.recommend import noise_band
from exporter.variants import Role
from runtimes import registry
from runtimes.bench.results import Cell
from runtimes.manifest import QUANTIZED, ArtifactRecord



def slower_pairs(cells: list[Cell], baseline: str) -> list[tuple[Cell, Cell]]:
    """(INT8 or mixed cell, the baseline's cell in the same runtime, format, device and batch) where the
    quantized one is slower beyond both noise bands."""
    base = {(c.runtime, c.format, c.device, c.batch): c for c in cells if c.variant == baseline and c.ok}
    out = []
    for c in cells:
        if not c.ok or c.precision not in QUANTIZED or c.median is None:
            continue
        ref = base.get((c.runtime, c.format, c.device, c.batch))
        if ref is None or ref.median is None:
            continue
        if c.median > ref.median * (1 + noise_band(c)) * (1 + noise_band(ref)):
            out.append((c, ref))
    return out


def reasons(cell: Cell, record: ArtifactRecord | None) -> list[str]:
    """What the run knows about why this INT8 cell is slow."""
    why = []
    if record is not None and record.quantization.float_ops:
        ops = record.quantization.float_ops
        listed = ", ".join(f"{op} ×{len(where)}" for op, where in sorted(ops.items(), key=lambda kv: -len(kv[1])))
        why.append(f"{sum(len(w) for w in ops.values())} operators run float inside the INT8 model ({listed}), "
                   "each behind a dequantize and a re-quantize")
    if cell.kernels is not None:
        # What the runtime itself chose: a float kernel behind a dequantize/re-quantize pair where it has no
        # integer one, and conversions its fusions could not remove.
        why.append(f"what {cell.runtime} ran: {cell.kernels.summary()}")
    frameworks = {s.name: s.framework for s in registry.specs()}
    if frameworks.get(cell.runtime) == "pytorch" and cell.median is not None and cell.median < 5.0:
        why.append("PyTorch's per-operator overhead dominates at this size, and INT8 adds quantize/dequantize "
                   "operators to it")
    return why


@register_section("int8-slower", order=45)
def int8_slower(ctx: ReportContext) -> str:
    baseline = variants_with(Role.BASELINE, ctx.cells)
    if not baseline:
        return ""
    pairs = slower_pairs(ctx.cells, baseline[0])
    if not pairs:
        return ""
    records = {(a.variant, a.format): a for a in ctx.manifest.artifacts} if ctx.manifest else {}
    lines = ["## ⚠ Where INT8 is slower than FP32", "",
             f"Same runtime, format and batch as `{baseline[0]}`, slower beyond both cells' noise bands:", "",
             "| variant | runtime | format | batch | INT8 ms | FP32 ms | slower by | known reasons |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for c, ref in pairs:
        why = reasons(c, records.get((c.variant, c.format))) or ["not known from this run"]
        noisy = " ⚠ noisy" if not (c.stable and ref.stable) else ""
        lines.append(f"| {c.variant} | {c.runtime} | {c.format} | {c.batch} | {c.median:.2f} | {ref.median:.2f} | "
                     f"{c.median / ref.median:.2f}×{noisy} | {'; '.join(why)} |")
    return "\n".join(lines)
