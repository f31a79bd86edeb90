"""The markdown summary of ``compare``, fit for a pull-request comment, rendered from its record."""

from __future__ import annotations

from pathlib import Path

from runtimes.bench.regression import Delta, RunComparison, Verdict, verdict_counts
from runtimes.records import atomic_write_bytes

_ICON = {Verdict.REGRESSED: "❌ regressed", Verdict.NOISE: "〰 noise", Verdict.NOT_GATED: "⚠ not gated",
         Verdict.IMPROVED: "✅ improved", Verdict.OK: "ok"}


def _row(d: Delta) -> str:
    return (f"| {d.cell} | {d.metric} | {d.base:.4g} | {d.new:.4g} | {d.moved()} | {d.limit()} | "
            f"{_ICON[d.verdict]}{(' — ' + d.note) if d.note else ''} |")


def compare_markdown(c: RunComparison, all_rows: bool = False) -> str:
    """Verdict first, then the machine warning, then every cell that is not plainly ``ok``
    (every cell with ``all_rows``), then the one-sided cells."""
    o = c.options
    counts = verdict_counts(c.deltas)
    head = "❌ **regression**" if not c.passed else "✅ **no regression**"
    lines = [f"### shrinkwrap compare: {head}", ""]
    if c.machine_differences:
        lines += [f"> ⚠ **Different machines**: {'; '.join(c.machine_differences)}. Latency is "
                  + ("gated anyway (`--same-machine-only false`)." if c.latency_gated
                     else "shown but not gated."), ""]
    lines += [f"`{c.new_dir}` against the baseline `{c.base_dir}` ({c.model}): {len(c.deltas)} comparisons, "
              + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + ".",
              "",
              f"Thresholds: latency +{o.max_slowdown_pct:g}% (median and p90; a slowdown within the runs' own "
              f"spread is noise), accuracy −{o.max_accuracy_drop:g} points, size +{o.max_size_growth_pct:g}%, "
              f"parity SQNR −{o.max_sqnr_drop_db:g} dB.", ""]
    shown = [d for d in c.deltas if all_rows or d.verdict is not Verdict.OK]
    if shown:
        lines += ["| cell | metric | base | new | change | limit | verdict |",
                  "|---|---|---:|---:|---:|---:|---|", *(_row(d) for d in shown), ""]
    if c.one_sided:
        lines += ["Cells in one run only (listed, not failed):", "",
                  *(f"- `{s.cell}`: {s.status}" for s in c.one_sided), ""]
    for note in c.notes:
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def write_summary(path: Path, c: RunComparison) -> Path:
    atomic_write_bytes(Path(path), compare_markdown(c).encode())
    return Path(path)
