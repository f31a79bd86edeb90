"""The report's figures (matplotlib, Agg, object API: no global pyplot state).

Each function draws from records already on disk and writes one PNG
atomically; it returns None when there is nothing to draw (no ok cell, no
per-layer sparsity), and raises :class:`ArtifactError` when a file it needs is
malformed. :func:`draw_figures` draws them all for a report and the
``figures`` section links them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from exporter.report.context import ReportContext, devices, role_of
from exporter.report.sections import register_section
from exporter.variants import Role
from runtimes.bench.results import Cell
from runtimes.errors import ArtifactError
from runtimes.manifest import Format, Manifest
from runtimes.records import atomic_write_bytes

# A quantized Linear keeps (weight, bias) under this key of its state_dict.
PACKED_LINEAR = "_packed_params._packed_params"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats in both coordinates (both minimized), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best_y = float("inf")
    for i in order:
        if points[i][1] < best_y:
            front.append(i)
            best_y = points[i][1]
    return front


def best_per_artifact(cells: Sequence[Cell], device: str, batch: int) -> list[Cell]:
    """The fastest usable ok cell of each deployable (variant, format) on ``device`` at ``batch``
    (a pathological one only when that artifact has nothing else)."""
    best: dict[tuple[str, str], Cell] = {}
    for c in cells:
        if c.ok and c.device == device and c.batch == batch and c.format != Format.EAGER and c.median is not None:
            key = (c.variant, c.format)
            if key not in best or (c.excluded, c.median) < (best[key].excluded, best[key].median):
                best[key] = c
    return list(best.values())


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def trusted_front(pts: Sequence[Cell], xs: list[float], ys: list[float],
                  key: Callable[[float, float], tuple[float, float]]) -> list[int]:
    """The Pareto front (indices, by x) over stable, usable cells only: a pathological or noisy
    measurement can neither be on it nor push a trusted point off it."""
    trusted = [i for i, c in enumerate(pts) if not c.excluded and c.stable]
    return [trusted[j] for j in pareto_front([key(xs[i], ys[i]) for i in trusted])]


def _scatter_with_front(ax, pts: Sequence[Cell], xs: list[float], ys: list[float],
                        key: Callable[[float, float], tuple[float, float]], log_x: bool = False,
                        log_y: bool = False) -> None:
    """Points, their Pareto front and a numbered key.

    Pathological cells are drawn as grey crosses and never set the axes (off-scale ones are
    said so in the key); noisy cells are hollow. Neither can be on the front: the front is
    drawn over stable, usable measurements only.
    """
    usable = [i for i, c in enumerate(pts) if not c.excluded]
    stable = [i for i in usable if pts[i].stable]
    front = trusted_front(pts, xs, ys, key)
    for group, style in ((stable, dict(color="tab:blue")),
                         ([i for i in usable if i not in stable],
                          dict(facecolors="none", edgecolors="tab:orange", label="noisy timing")),
                         ([i for i in range(len(pts)) if pts[i].excluded],
                          dict(color="grey", marker="x", label="pathological (not a deployment option)"))):
        if group:
            ax.scatter([xs[i] for i in group], [ys[i] for i in group], zorder=2, **style)
    if front:
        ax.plot([xs[i] for i in front], [ys[i] for i in front], color="tab:red", marker="o",
                markerfacecolor="none", markersize=11, linestyle="--", label="Pareto front", zorder=3)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    if usable:  # the usable points set the view; a pathological one far outside is off scale
        _limits(ax.set_xlim, [xs[i] for i in usable], log_x)
        _limits(ax.set_ylim, [ys[i] for i in usable], log_y)
    lo_x, hi_x = ax.get_xlim()
    lo_y, hi_y = ax.get_ylim()
    off = {i for i in range(len(pts)) if not (lo_x <= xs[i] <= hi_x and lo_y <= ys[i] <= hi_y)}
    # Artifacts cluster (one variant in several runtimes): number the points, stagger numbers that
    # would overlap, and list the names beside the axes.
    placed: list[tuple[float, float]] = []
    for i in sorted(set(range(len(pts))) - off, key=lambda i: (xs[i], ys[i])):
        fx = _fraction(xs[i], lo_x, hi_x, log_x)
        fy = _fraction(ys[i], lo_y, hi_y, log_y)
        clash = sum(1 for px, py in placed if abs(px - fx) < 0.04 and abs(py - fy) < 0.05)
        placed.append((fx, fy))
        ax.annotate(str(i + 1), (xs[i], ys[i]), textcoords="offset points", xytext=(4, 3 + 8 * clash), fontsize=7)
    lines = []
    for i, c in enumerate(pts):
        mark = " *" if i in front else (" (noisy)" if not c.stable else "")
        mark += " (pathological, off scale)" if i in off else (" (pathological)" if c.excluded else "")
        lines.append(f"{i + 1}. {c.variant}/{c.format} ({c.runtime}){mark}")
    ax.text(1.02, 1.0, "\n".join(lines) + "\n(* on the Pareto front)", transform=ax.transAxes, va="top",
            fontsize=7, family="monospace")
    ax.figure.set_size_inches(11, 5)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(loc="best", fontsize=8)


def _limits(setter: Callable[[float, float], object], values: list[float], log: bool) -> None:
    lo, hi = min(values), max(values)
    if log and lo > 0:
        setter(lo / 1.25, hi * 1.25)
    else:
        pad = (hi - lo) * 0.12 or max(abs(hi) * 0.05, 1e-3)
        setter(lo - pad, hi + pad)


def _fraction(v: float, lo: float, hi: float, log: bool) -> float:
    if log and v > 0 and lo > 0:
        return (np.log(v) - np.log(lo)) / max(np.log(hi) - np.log(lo), 1e-12)
    return (v - lo) / max(hi - lo, 1e-12)


def _wide(values: list[float]) -> bool:
    """Whether values span enough to need a log axis."""
    return bool(values) and min(values) > 0 and max(values) / min(values) > 20


def latency_vs_size(cells: Sequence[Cell], device: str, batch: int, path: Path) -> Path | None:
    pts = [c for c in best_per_artifact(cells, device, batch) if c.size is not None]
    if not pts:
        return None
    xs = [c.size.compressed_bytes / 1e6 for c in pts]
    ys = [c.median for c in pts]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    usable_y = [y for c, y in zip(pts, ys) if not c.excluded]
    _scatter_with_front(ax, pts, xs, ys, lambda x, y: (x, y), log_y=_wide(usable_y))
    ax.set_xlabel(f"{pts[0].size.compression} compressed size (MB)")
    ax.set_ylabel(f"median latency, batch {batch} (ms)")
    ax.set_title(f"{device.upper()}: latency vs compressed size (best runtime per artifact)")
    return _save(fig, path)


def latency_vs_accuracy(cells: Sequence[Cell], device: str, batch: int, path: Path) -> Path | None:
    pts = [c for c in best_per_artifact(cells, device, batch) if c.top1 is not None]
    if not pts:
        return None
    xs = [c.median for c in pts]
    ys = [c.top1 for c in pts]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    # Lower latency and higher top-1 are better: minimize (latency, -top1).
    usable_x = [x for c, x in zip(pts, xs) if not c.excluded]
    _scatter_with_front(ax, pts, xs, ys, lambda x, y: (x, -y), log_x=_wide(usable_x))
    ax.set_xlabel(f"median latency, batch {batch} (ms)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"{device.upper()}: latency vs top-1 (best runtime per artifact)")
    return _save(fig, path)


def sparsity_per_layer(manifest: Manifest, path: Path) -> Path | None:
    series: dict[str, list] = {}
    for rec in [*manifest.artifacts, *manifest.references]:
        if rec.sparsity.per_layer and rec.variant not in series:
            series[rec.variant] = rec.sparsity.per_layer
    if not series or all(max(l.sparsity for l in s) == 0 for s in series.values()):
        return None
    layers = list(dict.fromkeys(l.name for s in series.values() for l in s))
    fig = Figure(figsize=(max(7, 0.22 * len(layers)), 4.5))
    ax = fig.subplots()
    # Variants pruned alike give identical series: each gets its own marker and line style and a
    # small horizontal offset, so none hides another.
    styles = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("P", "--"), ("X", "-.")]
    width = 0.5 / max(1, len(series))
    for k, (variant, per_layer) in enumerate(series.items()):
        by_name = {l.name: l.sparsity * 100 for l in per_layer}
        marker, line = styles[k % len(styles)]
        xs = np.arange(len(layers)) + (k - (len(series) - 1) / 2) * width
        ax.plot(xs, [by_name.get(n, np.nan) for n in layers], marker=marker, markersize=3, linestyle=line,
                linewidth=1, label=variant, alpha=0.85)
    ax.set_xticks(range(len(layers)), layers, rotation=90, fontsize=6)
    ax.set_ylabel("zero weights (%)")
    ax.set_ylim(-2, 102)
    ax.set_title("Sparsity per layer")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def classifier_weight(path: Path, num_classes: int | None = None) -> np.ndarray:
    """The classifier weight of a saved eager state_dict, dequantized for INT8 (loaded weights-only).

    The classifier is the last Linear weight in the state_dict's (module) order; for
    a model whose head is a 1×1 convolution (SqueezeNet), the last such convolution
    with ``num_classes`` outputs.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same here
        raise ArtifactError(f"cannot load {path} as a state_dict: {exc}") from exc
    if not isinstance(state, dict):
        raise ArtifactError(f"{path} is not a state_dict")
    linear, conv = None, None
    for key, value in state.items():
        if key.endswith(PACKED_LINEAR) and isinstance(value, (tuple, list)):
            value = value[0]  # INT8 Linear: (packed qint8 weight, bias)
        elif not key.endswith("weight"):
            continue
        if not isinstance(value, torch.Tensor):
            continue
        if value.dim() == 2:
            linear = value
        elif value.dim() == 4 and num_classes is not None and value.shape[0] == num_classes:
            conv = value
    found = linear if linear is not None else conv
    if found is None:
        raise ArtifactError(f"{path} has no classifier weight (no Linear weight"
                            f"{'' if num_classes is None else f' and no conv with {num_classes} outputs'})")
    if found.is_quantized:
        found = found.dequantize()
    return found.detach().float().numpy()


def classifier_weights(run_dir: Path, manifest: Manifest, path: Path) -> Path | None:
    """The baseline's classifier weights against those of the first variant of each other precision."""
    refs = {r.variant: r for r in manifest.references}
    base = next((r for r in manifest.references if role_of(r.variant) is Role.BASELINE), None)
    if base is None:
        return None
    after: dict[str, str] = {}
    for r in manifest.references:
        if r.precision != base.precision and r.precision.value not in after:
            after[r.precision.value] = r.variant
    if not after:
        return None
    before = classifier_weight(Path(run_dir) / base.path, base.num_classes).ravel()
    fig = Figure(figsize=(4.2 * len(after), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(after), sharey=True))
    for ax, variant in zip(axes, after.values()):
        ref = refs[variant]
        w = classifier_weight(Path(run_dir) / ref.path, ref.num_classes).ravel()
        lo, hi = float(min(before.min(), w.min())), float(max(before.max(), w.max()))
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 81)
        ax.hist(before, bins=bins, histtype="step", color="black", label=f"before ({base.variant})")
        ax.hist(w, bins=bins, alpha=0.55, color="tab:orange",
                label=f"after ({variant}, {np.mean(w == 0) * 100:.0f}% zero)")
        ax.set_yscale("log")
        ax.set_title(f"classifier weights: {variant}", fontsize=10)
        ax.set_xlabel("weight value")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("count (log)")
    return _save(fig, path)


# ---------------------------------------------------------------- the report's figures

FIGURE_TITLES = {
    "latency_vs_size": "Latency vs compressed size",
    "latency_vs_top1": "Latency vs top-1",
    "sparsity_per_layer": "Sparsity per layer",
    "classifier_weights": "Classifier weights before/after compression",
}


def draw_figures(ctx: ReportContext) -> None:
    """Draw every figure the records allow into ``ctx.figures_dir``; a malformed file becomes a note."""
    fdir = ctx.figures_dir
    cells = ctx.cells
    jobs: list[tuple[str, Callable[[Path], Path | None]]] = []
    for device in devices(cells):
        batches = sorted({c.batch for c in cells if c.device == device and c.ok})
        if batches:
            b = batches[0]
            jobs.append((f"latency_vs_size_{device}", lambda p, d=device, b=b: latency_vs_size(cells, d, b, p)))
            jobs.append((f"latency_vs_top1_{device}", lambda p, d=device, b=b: latency_vs_accuracy(cells, d, b, p)))
    if ctx.manifest is not None:
        m = ctx.manifest
        jobs.append(("sparsity_per_layer", lambda p: sparsity_per_layer(m, p)))
        jobs.append(("classifier_weights", lambda p: classifier_weights(ctx.run_dir, m, p)))
    for name, draw in jobs:
        try:
            out = draw(fdir / f"{name}.png")
        except ArtifactError as exc:
            ctx.notes.append(f"figure {name} not drawn: {exc}")
            continue
        if out is not None:
            ctx.figures[name] = out.relative_to(ctx.run_dir)


@register_section("figures", order=60)
def figures_section(ctx: ReportContext) -> str:
    if not ctx.figures and not ctx.notes:
        return ""
    device_names = devices(ctx.cells)
    lines = ["## Figures", ""]
    for name, rel in ctx.figures.items():
        title = next((t for k, t in FIGURE_TITLES.items() if name.startswith(k)), name)
        suffix = name.rsplit("_", 1)[-1]
        suffix = suffix.upper() if suffix in device_names and name.endswith(f"_{suffix}") else ""
        lines += [f"### {title}{f' ({suffix})' if suffix else ''}", "", f"![{name}]({rel.as_posix()})", ""]
    lines += [f"- {n}" for n in ctx.notes]
    return "\n".join(lines)
