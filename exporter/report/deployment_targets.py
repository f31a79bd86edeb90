"""Deployment targets: when the bench fanned out on a Ray cluster, each target's nodes and its winner.

Ratios are computed within one target only; the side-by-side latency table says, in its heading, that its
columns are different machines. Every other section reads the first target's cells (ReportContext.cells).
"""

from __future__ import annotations

from typing import Sequence

from exporter.report.context import ReportContext
from exporter.report.sections import register_section
from runtimes.bench.results import Cell
from runtimes.manifest import Format, Precision


def candidates(cells: Sequence[Cell], target: str | None, batch: int) -> list[Cell]:
    return [c for c in cells if c.target == target and c.batch == batch and c.ok and not c.excluded
            and c.format != Format.EAGER and c.median is not None]


def winner(cells: Sequence[Cell], target: str | None, batch: int) -> Cell | None:
    got = candidates(cells, target, batch)
    return min(got, key=lambda c: c.median) if got else None


def int8_over_fp32(cells: Sequence[Cell], target: str | None, batch: int) -> float | None:
    got = candidates(cells, target, batch)
    int8 = [c.median for c in got if c.precision == Precision.INT8.value]
    fp32 = [c.median for c in got if c.precision == Precision.FP32.value]
    return min(int8) / min(fp32) if int8 and fp32 else None


def _nodes(cells: Sequence[Cell], target: str | None) -> list[str]:
    out = {}
    for c in cells:
        if c.target == target and c.node is not None:
            env = c.node.environment
            out[c.node.node_id] = (f"`{c.node.hostname}` ({c.node.node_id[:8]}): {env.cpu_model}, "
                                   f"{env.cores_logical} logical cores, ISA {', '.join(env.cpu_flags) or 'none listed'}, "
                                   f"torch {env.versions.get('torch', '?')}, onnxruntime "
                                   f"{env.versions.get('onnxruntime', '?')}")
    return list(out.values())


@register_section("deployment-targets", order=48)
def deployment_targets_section(ctx: ReportContext) -> str:
    cells = ctx.results.cells
    if not any(c.node is not None for c in cells):
        return ""
    targets = ctx.targets
    batches = sorted({c.batch for c in cells})
    lines = ["## Deployment targets", "",
             f"The cells ran as Ray tasks ({len(targets)} target{'s' if len(targets) > 1 else ''}). The other "
             f"sections read the cells of target **{ctx.primary_target or 'any node'}**; this one reads all. "
             "Every ratio here is within one target.", ""]
    retried = [c for c in cells if c.node is not None and c.node.attempt > 1]
    for t in targets:
        lines.append(f"### {t or 'any node'}")
        lines.append("")
        lines += [f"- node {n}" for n in _nodes(cells, t)]
        for b in batches:
            w = winner(cells, t, b)
            ratio = int8_over_fp32(cells, t, b)
            if w is None:
                lines.append(f"- batch {b}: no ok cell")
                continue
            acc = f", top-1 {w.top1:.1f}%" if w.top1 is not None else ""
            lines.append(f"- batch {b}: fastest is **`{w.variant}.{w.format}` in {w.runtime}**, "
                         f"{w.median:.2f} ms{acc}"
                         + (f"; fastest INT8 / fastest FP32 = {ratio:.2f}" if ratio is not None else ""))
        lines.append("")
    b = min(batches)
    keys = list(dict.fromkeys((c.variant, c.format, c.runtime) for c in cells
                              if c.ok and c.batch == b and c.format != Format.EAGER))
    if keys and len(targets) > 1:
        lines += [f"Median latency (ms) at batch {b}, one column per target. **Each column is a different machine**: "
                  "read ratios down a column, not milliseconds across a row.", "",
                  "| artifact | runtime | " + " | ".join(str(t) for t in targets) + " |",
                  "|---|---|" + "---:|" * len(targets)]
        for v, f, r in keys:
            row = []
            for t in targets:
                c = next((c for c in cells if (c.variant, c.format, c.runtime, c.target, c.batch) == (v, f, r, t, b)
                          and c.ok), None)
                row.append(f"{c.median:.2f}" if c is not None and c.median is not None else "—")
            lines.append(f"| `{v}.{f}` | {r} | " + " | ".join(row) + " |")
        lines.append("")
    if retried:
        lines.append(f"{len(retried)} cell(s) were retried by Ray after their worker died "
                     f"({', '.join(f'{c.variant}.{c.format} {c.runtime} b{c.batch} on {c.target}' for c in retried)}); "
                     "each record is the complete retry's.")
    return "\n".join(lines).rstrip()
