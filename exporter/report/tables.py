"""The report's header, method and per-device latency/size/accuracy tables."""

from __future__ import annotations

from typing import Sequence

from exporter.report.context import (ReportContext, dense_of, devices, format_order, macs_by_variant, prunes,
                                     runtime_order, table_groups)
from exporter.report.sections import register_section
from runtimes import registry
from runtimes.bench import stability
from runtimes.bench.grid import not_applicable
from runtimes.bench.runner import timing_note
from runtimes.bench.results import Cell, Status
from runtimes.protocol import SelfTimed


@register_section("header", order=10)
def header(ctx: ReportContext) -> str:
    r, env = ctx.results, ctx.results.environment
    w = r.weights
    weights = w.label
    if not w.trained:  # said once, whether or not the label already says it
        weights = (f"**⚠ {w.label}**" if "UNTRAINED" in w.label.upper() else
                   f"**⚠ UNTRAINED (random weights): accuracy is meaningless.** {w.label}")
    threads = env.threads if env.threads is not None else f"runtime default ({env.cores_logical} logical cores)"
    gpu = "none" if env.gpu_name == "none" else f"{env.gpu_name} (driver {env.gpu_driver})"
    versions = ", ".join(f"{k} {v}" for k, v in env.versions.items())
    lines = [
        f"# shrinkwrap benchmark: {r.model}", "",
        f"- **Weights:** {weights}",
        f"- **Command:** `{r.command or 'n/a'}`",
        f"- **Created:** {r.created}", "",
        "## Environment", "",
        f"- **CPU:** {env.cpu_model}; {env.cores_logical} logical / "
        f"{env.cores_physical if env.cores_physical is not None else '?'} physical cores",
        f"- **ISA flags:** {', '.join(env.cpu_flags) or 'none of the relevant ones'}",
        f"- **Threads:** {threads}",
        f"- **GPU:** {gpu}; CUDA (torch build) {env.cuda_version}",
        f"- **Versions:** {versions}",
        f"- **Platform:** {env.platform}",
    ]
    return "\n".join(lines)


def self_timed(names: Sequence[str]) -> list[str]:
    return [s.name for s in registry.specs() if s.name in names and SelfTimed.__name__ in s.capabilities]


def _setting(value: object) -> str:
    return "?" if value is None else str(value)


@register_section("method", order=20)
def method(ctx: ReportContext) -> str:
    s = ctx.results.settings
    ran = s.runtimes or registry.runtime_names()  # records written before settings named them
    lines = [
        "## Method", "",
        "- Every cell (artifact × runtime × batch) runs in a process of its own, under a "
        f"timeout of {_setting(s.timeout_s)} s.",
        f"- {_setting(s.warmup)} untimed warm-up runs, then timed runs until both "
        f"{_setting(s.min_time_s)} s and {_setting(s.min_iters)} iterations are reached "
        f"(capped at {_setting(s.max_time_s)} s per cell; the iteration count is recorded).",
        "- Input: a seeded random float32 batch, identical for every runtime; latency is per batch.",
        f"- {s.io_binding or timing_note([registry.get_spec(r) for r in ran if r in registry.runtime_names()])}",
        *(f"- {name} times itself (inside its own process); its start-up is not measured."
          for name in self_timed(ran)),
    ]
    lines += [f"- {n}" for n in ctx.results.notes]
    lines += noise_lines(ctx)
    return "\n".join(lines)


def noise_lines(ctx: ReportContext) -> list[str]:
    """How noise was handled, and whether the machine was busy while this was measured."""
    s = ctx.results.settings
    judged = [c for c in ctx.cells if c.ok and c.stability is not None]
    if not judged:
        return []
    lines = [f"- Noise: a cell times up to {_setting(s.attempts)} windows until one is stable "
             f"(p90/median ≤ {stability.MAX_SPREAD}, median/min ≤ {stability.MAX_FLOOR}, the two halves of the "
             f"window within {stability.MAX_DRIFT}×, other processes below {stability.MAX_OTHER_CORES} cores); "
             "one still unstable is timed again in a fresh process at the end of the sweep and the better "
             "window kept; one still unstable then is flagged `noisy`. A cell is only called pathological "
             "when its timing and the fastest one's are stable."]
    if s.retry_budget_s is not None:
        spent = f", {s.retry_spent_s:.0f} s spent" if s.retry_spent_s is not None else ""
        lines.append(f"- Retry budget: {s.retry_budget_s:.0f} s for timing unstable cells again{spent}.")
        if s.one_window_cells or s.not_remeasured:
            lines.append(f"- **The retry budget ran out:** {s.one_window_cells or 0} later cells were timed in one "
                         f"window only and {s.not_remeasured or 0} noisy cells were not timed again; their flags "
                         "say so. Rerun on a quiet machine, or raise `--retry-budget`, for figures to compare.")
    again = [c for c in judged if c.stability.attempts > 1]
    noisy = [c for c in judged if not c.stable]
    loads = [v for c in judged for v in (c.stability.loadavg_before, c.stability.loadavg_after) if v is not None]
    load = f"; 1-min load average {min(loads):.2f}–{max(loads):.2f}" if loads else ""
    busy = [c for c in judged if (c.stability.other_cores or 0.0) > stability.MAX_OTHER_CORES]
    if not again:
        lines.append(f"- Every one of {len(judged)} cells was stable in its first window{load}.")
        return lines
    names = ", ".join(f"{c.variant}/{c.runtime}/b{c.batch} ({c.stability.attempts})" for c in again[:12])
    more = f" and {len(again) - 12} more" if len(again) > 12 else ""
    head = "**The machine was busy:** " if (noisy or busy) else ""
    lines.append(f"- {head}{len(again)} of {len(judged)} cells needed more than one window (windows in "
                 f"brackets): {names}{more}; {len(noisy)} stayed noisy; other processes still used the CPU "
                 f"during {len(busy)} kept windows{load}.")
    return lines


# ---------------------------------------------------------------- per-device tables

class Footnotes:
    """Numbered notes under a table; identical texts share one number."""

    def __init__(self) -> None:
        self.items: dict[str, int] = {}

    def mark(self, text: str) -> str:
        return f"[{self.items.setdefault(text, len(self.items) + 1)}]"

    def render(self) -> list[str]:
        return [f"{i}. {text}" for text, i in self.items.items()]


def ms(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def pct_range(values: list[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if hi - lo < 0.005 else f"{lo:.2f}–{hi:.2f}"


def latency_text(c: Cell | None, notes: Footnotes) -> str:
    if c is None:
        return ""
    if not_applicable(c):
        return "—"
    if c.status is Status.SKIPPED:
        return f"skipped {notes.mark(f'skipped: {c.reason}')}"
    if c.status is Status.ERROR:
        return f"error {notes.mark(f'error ({c.runtime}, batch {c.batch}): {c.reason}')}"
    text = f"{ms(c.latency_ms.median)} <sub>p90 {ms(c.latency_ms.p90)}</sub>"
    if c.flags:
        text = "⚠ " + text + " " + "".join(notes.mark(f"⚠ {f}") for f in c.flags)
    return text


def speedup_text(cell_row: Sequence[Cell], cells: Sequence[Cell], runtimes: Sequence[str]) -> str:
    """Per runtime, how many times faster a row is than its variant's dense counterpart (same format,
    runtime and batch): the latency channel pruning buys."""
    first = cell_row[0]
    dense = dense_of(first.variant)
    if dense is None:
        return ""
    base = {c.runtime: c for c in cells if (c.variant, c.format, c.batch) == (dense, first.format, first.batch)
            and c.ok}
    parts = []
    for c in sorted((c for c in cell_row if c.ok and c.runtime in base), key=lambda c: list(runtimes).index(c.runtime)):
        mark = "~" if not (c.stable and base[c.runtime].stable) else ""
        parts.append(f"{c.runtime} {mark}{base[c.runtime].median / c.median:.2f}×")
    return ", ".join(parts)


def device_section(cells: Sequence[Cell], device: str, macs: dict[str, int] | None = None) -> str:
    dev = [c for c in cells if c.device == device]
    if not dev:
        return ""
    title = f"## {device.upper()}"
    if all(c.status is Status.SKIPPED for c in dev):
        real = [c for c in dev if not not_applicable(c)]
        reasons = dict.fromkeys(c.reason for c in real)
        return "\n".join([title, "", f"All {len(real)} {device.upper()} cells were skipped:", "",
                          *(f"- {r}" for r in reasons)])
    runtimes = runtime_order(dev)
    with_acc = any(c.top1 is not None for c in dev)
    parts = [title, "Median latency per batch in ms (p90 in small text); — = the runtime does "
                    "not run this format; ⚠ = flagged, see the notes."]
    for name, variants in table_groups(dev):
        table = _table(name, [c for c in dev if c.variant in variants], variants, runtimes, with_acc, macs or {},
                       dev)
        if table:
            parts.append(table)
    return "\n\n".join(parts)


def _table(title: str, cells: list[Cell], variants: Sequence[str], runtimes: list[str],
           with_acc: bool, macs: dict[str, int] | None = None, every: Sequence[Cell] = ()) -> str:
    if not cells:
        return ""
    notes = Footnotes()
    macs = {v: m for v, m in (macs or {}).items() if any(c.variant == v for c in cells)}
    present = {c.variant for c in every or cells}
    speedups = any(dense_of(v) in present for v in {c.variant for c in cells})
    head = ["Variant", "Format", "Batch", *runtimes, *(("Speed-up vs dense",) if speedups else ()),
            "img/s (best)", *(("MMACs",) if macs else ()), "Size MB",
            "zstd MB", "Sparsity", *(("Top-1 %", "Top-5 %") if with_acc else ())]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for v in variants:
        for f in format_order(cells):
            for b in sorted({c.batch for c in cells}):
                row = [c for c in cells if (c.variant, c.format, c.batch) == (v, f, b)]
                if not row or all(not_applicable(c) for c in row):
                    continue
                by_rt = {c.runtime: c for c in row}
                ok = [c for c in row if c.ok]
                size = next((c.size for c in row if c.size is not None), None)
                vals = [v, f, str(b), *(latency_text(by_rt.get(r), notes) for r in runtimes),
                        *((speedup_text(row, every or cells, runtimes),) if speedups else ()),
                        f"{max(c.throughput for c in ok):.1f}" if ok else "",
                        *((f"{macs[v] / 1e6:.0f}" if v in macs else "",) if macs else ()),
                        f"{size.bytes / 1e6:.2f}" if size else "",
                        f"{size.compressed_bytes / 1e6:.2f}" if size else "",
                        sparsity_text(v, size.sparsity) if size else ""]
                if with_acc:
                    vals += [pct_range([c.top1 for c in ok if c.top1 is not None]),
                             pct_range([c.top5 for c in ok if c.top5 is not None])]
                lines.append("| " + " | ".join(vals) + " |")
    if notes.items:
        lines += ["", *notes.render()]
    return "\n".join(lines)


def sparsity_text(variant: str, sparsity: float) -> str:
    """A pruned variant's sparsity; a dense one's zeros are labelled natural (not a pruning result)."""
    return f"{sparsity * 100:.1f}%" + ("" if prunes(variant) else " natural")


@register_section("devices", order=30)
def device_tables(ctx: ReportContext) -> str:
    macs = macs_by_variant(ctx.manifest)
    return "\n\n".join(s for s in (device_section(ctx.cells, d, macs).strip() for d in devices(ctx.cells)) if s)
