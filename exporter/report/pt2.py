"""PyTorch 2's path against TorchScript: each variant's ``.pt2`` (AOTInductor) against its TorchScript, per batch.

The question a deployment engineer starting today asks is whether to move off TorchScript (deprecated) and
``torch.ao.quantization`` (scheduled for removal). The rows compare, per variant and batch, the fastest runtime of
each format (Python or C++ loader), INT8 ``.pt2`` (pt2e lane) against TorchScript INT8 (fbgemm lane) and against
the ``.pt2`` FP32 of the same run, and say by how much the ``.pt2`` is slower where it is, beyond both cells' noise.
"""

from __future__ import annotations

from exporter.report.context import ReportContext, variants_with
from exporter.report.recommend import noise_band
from exporter.report.sections import register_section
from exporter.variants import Role
from runtimes.bench.results import Cell
from runtimes.manifest import QUANTIZED, ArtifactRecord, Format


def fastest(cells: list[Cell], variant: str, fmt: str, batch: int) -> Cell | None:
    """The fastest ok CPU cell of ``variant`` in format ``fmt`` at ``batch``, over the runtimes that ran it."""
    ok = [c for c in cells if c.ok and c.median is not None and c.device == "cpu"
          and (c.variant, c.format, c.batch) == (variant, fmt, batch)]
    return min(ok, key=lambda c: c.median, default=None)


def ratio_said(pt2: Cell, other: Cell) -> str:
    """``pt2``'s latency as a multiple of ``other``'s, and whether that is slower beyond both noise bands."""
    r = pt2.median / other.median
    slower = pt2.median > other.median * (1 + noise_band(pt2)) * (1 + noise_band(other))
    faster = other.median > pt2.median * (1 + noise_band(pt2)) * (1 + noise_band(other))
    word = f"**{(r - 1) * 100:.0f}% slower**" if slower else "faster" if faster else "within the noise"
    return f"{r:.2f}× ({word})"


def _compile(record: ArtifactRecord | None) -> str:
    c = record.compile if record is not None else None
    if c is None:
        return "—"
    batch = f", batch {c.batch}" if c.batch else ""
    return f"{c.seconds:.0f} s, {c.isa or 'ISA unknown'}{batch}"


@register_section("pt2", order=46)
def pt2_section(ctx: ReportContext) -> str:
    cells = ctx.cells
    pt2_variants = list(dict.fromkeys(c.variant for c in cells if c.format == Format.PT2 and c.ok))
    if not pt2_variants:
        return ""
    records = {(a.variant, a.format): a for a in ctx.manifest.artifacts} if ctx.manifest else {}
    baselines = variants_with(Role.BASELINE, cells)
    baseline = baselines[0] if baselines else None
    lines = ["## PyTorch 2 path: .pt2 against TorchScript", "",
             "Each variant's AOTInductor package against its TorchScript, the fastest runtime of each format "
             "(`aoti`/`aoti-cpp`, `torchscript`/`libtorch-cpp`), median ms per batch; INT8 `.pt2` comes from the "
             "pt2e lane (torchao's X86InductorQuantizer), INT8 TorchScript from the fbgemm lane.", "",
             "| Variant | Batch | TorchScript ms | .pt2 ms | .pt2 vs TorchScript | .pt2 vs .pt2 FP32 | compile | "
             ".pt2 MB | top-1 % TorchScript / .pt2 |",
             "|---|---:|---:|---:|---|---|---|---:|---|"]
    slower = []
    for variant in pt2_variants:
        for batch in sorted({c.batch for c in cells if c.variant == variant and c.format == Format.PT2}):
            pt2 = fastest(cells, variant, Format.PT2, batch)
            if pt2 is None:
                continue
            ts = fastest(cells, variant, Format.TORCHSCRIPT, batch)
            fp = fastest(cells, baseline, Format.PT2, batch) if baseline and pt2.precision in QUANTIZED else None
            vs_ts = ratio_said(pt2, ts) if ts else "—"
            if ts and "slower" in vs_ts:
                slower.append(f"`{variant}` at batch {batch}: {vs_ts.split(' ', 1)[0]} TorchScript's latency")
            rec = records.get((variant, Format.PT2))
            size = f"{rec.bytes / 1e6:.2f}" if rec else "—"
            top1 = " / ".join("—" if c is None or c.top1 is None else f"{c.top1:.2f}" for c in (ts, pt2))
            lines.append(f"| `{variant}` | {batch} | {f'{ts.median:.2f} ({ts.runtime})' if ts else '—'} | "
                         f"{pt2.median:.2f} ({pt2.runtime}) | {vs_ts} | {ratio_said(pt2, fp) if fp else '—'} | "
                         f"{_compile(rec)} | {size} | {top1} |")
    lines.append("")
    if slower:
        lines.append("Where `.pt2` is slower than TorchScript beyond the noise: " + "; ".join(slower) + ".")
    else:
        lines.append("`.pt2` is nowhere slower than TorchScript beyond the noise in this run.")
    lines += ["", "A `.pt2` holds machine code for the CPU ISA it was compiled on (the compile column): recompile it "
              "for another CPU class. A package compiled for batch 1 runs a larger batch as that many calls."]
    return "\n".join(lines) + "\n"
