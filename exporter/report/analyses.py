"""Report sections for the analyses (layer sensitivity, sparsity sweep), from their typed records.

The ``sweep`` and ``sensitivity`` commands draw the same figures when they write
their record; the report re-draws them from ``sweep.json`` / ``sensitivity.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from exporter.analysis.records import SensitivityReport, SweepPoint, SweepReport
from exporter.report.context import ReportContext
from exporter.report.sections import register_section
from runtimes.bench.sizes import ZSTD_LEVEL


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sensitivity_figure(report: SensitivityReport, path: Path) -> Path:
    """Two bar charts, layers in network order: SQNR with only that layer INT8 / only that layer pruned."""
    plt = _plt()

    rows = report.layers
    names = [r.layer for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, max(4, 0.28 * len(rows))), sharey=True)
    for ax, key, title in ((axes[0], "quant_sqnr_db", "only this layer INT8"),
                           (axes[1], "prune_sqnr_db", f"only this layer pruned ({report.sparsity:.0%})")):
        vals = [min(getattr(r, key), 120.0) for r in rows]
        ax.barh(range(len(rows)), vals, color="tab:blue" if key.startswith("quant") else "tab:orange")
        ax.set_title(title)
        ax.set_xlabel(("vs the baseline" if key.startswith("quant") else "vs FP32")
                      + " output SQNR (dB, lower = more sensitive)")
        ax.invert_yaxis()
    axes[0].set_yticks(range(len(rows)), names, fontsize=7)
    fig.suptitle(f"layer sensitivity, ranked most sensitive first ({report.eval_images} {report.eval_source} inputs)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sensitivity_markdown(report: SensitivityReport, figure: str | None = None) -> str:
    has_acc = report.fp32_top1 is not None
    lines = ["## Layer sensitivity", "",
             f"{report.eval_images} inputs ({report.eval_source}); pruning at {report.sparsity:.0%}. "
             f"Baseline (every layer FP32, only input and residual-add quantization): "
             f"SQNR {report.baseline_sqnr_db:.1f} dB"
             + (f", top-1 {report.baseline_top1:.2f}% vs FP32 {report.fp32_top1:.2f}%" if has_acc else "")
             + ". INT8-only rows are measured against that baseline, so they show the layer's own error; "
             "prune-only rows against FP32. Ranked most sensitive to INT8 first.", ""]
    head = "| rank | layer | params | INT8-only SQNR dB | prune-only SQNR dB |"
    sep = "|---:|---|---:|---:|---:|"
    if has_acc:
        head += " INT8-only top-1 drop | prune-only top-1 drop |"
        sep += "---:|---:|"
    lines += [head, sep]
    for i, r in enumerate(report.layers, 1):
        row = f"| {i} | {r.layer} | {r.params:,} | {r.quant_sqnr_db:.1f} | {r.prune_sqnr_db:.1f} |"
        if has_acc:
            row += f" {r.quant_top1_drop:+.2f} | {r.prune_top1_drop:+.2f} |"
        lines.append(row)
    if figure:
        lines += ["", f"![layer sensitivity]({figure})"]
    return "\n".join(lines) + "\n"


def sweep_figures(report: SweepReport, out_dir: Path) -> list[Path]:
    plt = _plt()

    out_dir.mkdir(parents=True, exist_ok=True)
    series: dict[str, list[SweepPoint]] = {}
    for p in (p for p in report.points if p.channel_sparsity is None):
        label = p.variant + (f" {p.method}" if p.method else "") + (f" ({p.order})" if p.order else "")
        series.setdefault(label, []).append(p)
    use_acc = report.fp32_top1 is not None
    paths = []
    for key, ylabel, fname in (("top1" if use_acc else "sqnr_db",
                                "top-1 (%)" if use_acc else "logit SQNR vs FP32 (dB)", "sweep_accuracy.png"),
                               ("zstd_bytes", "zstd-compressed ONNX (MB)", "sweep_size.png")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label, pts in series.items():
            pts = sorted(pts, key=lambda p: p.sparsity)
            ys = [getattr(p, key) / 1e6 if key == "zstd_bytes" else getattr(p, key) for p in pts]
            ax.plot([p.sparsity for p in pts], ys, marker="o", label=label)
        if key == "top1" and use_acc:
            ax.axhline(report.fp32_top1, color="gray", ls="--", lw=1, label="FP32")
        ax.set_xlabel("requested sparsity")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    slim = [p for p in report.points if p.channel_sparsity is not None]
    if slim:
        paths.append(channel_figure(report, slim, out_dir / "sweep_channels.png"))
    return paths


def channel_figure(report: SweepReport, points: Sequence[SweepPoint], path: Path) -> Path:
    """Accuracy (or SQNR) and batch-1 speed-up against the fraction of channels removed."""
    plt = _plt()
    use_acc = report.fp32_top1 is not None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for variant in dict.fromkeys(p.variant for p in points):
        pts = sorted((p for p in points if p.variant == variant), key=lambda p: p.channel_sparsity)
        xs = [p.channel_sparsity for p in pts]
        left.plot(xs, [p.top1 if use_acc else p.sqnr_db for p in pts], marker="o", label=variant)
        if any(p.speedup is not None for p in pts):
            right.plot([x for x, p in zip(xs, pts) if p.speedup], [p.speedup for p in pts if p.speedup],
                       marker="o", label=variant)
    if use_acc:
        left.axhline(report.fp32_top1, color="gray", ls="--", lw=1, label="FP32")
    right.axhline(1.0, color="gray", ls="--", lw=1)
    left.set_ylabel("top-1 (%)" if use_acc else "logit SQNR vs FP32 (dB)")
    right.set_ylabel("batch-1 speed-up vs the dense variant (ORT CPU)")
    for ax in (left, right):
        ax.set_xlabel("channels removed (--channel-sparsity)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def channel_markdown(report: SweepReport) -> list[str]:
    points = [p for p in report.points if p.channel_sparsity is not None]
    if not points:
        return []
    use_acc = report.fp32_top1 is not None
    lines = ["", "### Channel sparsity", "",
             "Slim variants along their own axis; latency is ONNX Runtime CPU at batch 1, timed in process "
             "alternately with the dense variant of the same precision (an indication: `bench` measures "
             "rigorously).", "",
             "| variant | channels removed | MMACs | " + ("top-1 | " if use_acc else "") +
             "SQNR dB | zstd MB | ms | speed-up vs dense |",
             "|---|---:|---:|" + ("---:|" if use_acc else "") + "---:|---:|---:|---:|"]
    for p in points:
        lat = f"{p.latency_ms:.2f}" if p.latency_ms is not None else ""
        speed = f"{p.speedup:.2f}×" if p.speedup is not None else ""
        macs = f"{p.macs / 1e6:.0f}" if p.macs is not None else ""
        lines.append(f"| {p.variant} | {p.channel_sparsity:.0%} | {macs} | " + (f"{p.top1:.2f} | " if use_acc else "")
                     + f"{p.sqnr_db:.1f} | {p.zstd_bytes / 1e6:.2f} | {lat} | {speed} |")
    return lines


def sweep_markdown(report: SweepReport, figures: Sequence[str] = ()) -> str:
    use_acc = report.fp32_top1 is not None
    level = report.zstd_level if report.zstd_level is not None else ZSTD_LEVEL
    lines = ["## Sparsity and order sweep", "",
             f"{report.eval_images} inputs ({report.eval_source}), every point measured in ONNX Runtime CPU; "
             f"size is the ONNX file after zstd -{level}."
             + (f" FP32 top-1: {report.fp32_top1:.2f}%." if use_acc else ""), ""]
    head = "| variant | method | order | sparsity | achieved | " + ("top-1 | top-5 | " if use_acc else "") + \
        "SQNR dB | ONNX MB | zstd MB |"
    sep = "|---|---|---|---:|---:|" + ("---:|---:|" if use_acc else "") + "---:|---:|---:|"
    lines += [head, sep]
    for p in (p for p in report.points if p.channel_sparsity is None):
        row = f"| {p.variant} | {p.method or '-'} | {p.order or '-'} | {p.sparsity:.0%} | {p.achieved_sparsity:.3f} | "
        if use_acc:
            top5 = "–" if p.top5 is None else f"{p.top5:.2f}"
            row += f"{p.top1:.2f} | {top5} | "
        row += f"{p.sqnr_db:.1f} | {p.onnx_bytes / 1e6:.2f} | {p.zstd_bytes / 1e6:.2f} |"
        lines.append(row)
    if report.conclusions:
        lines += ["", "**Which method and order are better?**", ""] + [f"- {c}" for c in report.conclusions]
    lines += channel_markdown(report)
    lines += [""] + [f"![sweep]({f})" for f in figures]
    return "\n".join(lines) + "\n"


@register_section("sweep", order=80)
def sweep_section(ctx: ReportContext) -> str:
    if ctx.sweep is None:
        return ""
    figs = sweep_figures(ctx.sweep, ctx.figures_dir)
    return sweep_markdown(ctx.sweep, [str(f.relative_to(ctx.run_dir)) for f in figs])


@register_section("sensitivity", order=90)
def sensitivity_section(ctx: ReportContext) -> str:
    if ctx.sensitivity is None:
        return ""
    fig = sensitivity_figure(ctx.sensitivity, ctx.figures_dir / "sensitivity.png")
    return sensitivity_markdown(ctx.sensitivity, str(fig.relative_to(ctx.run_dir)))
