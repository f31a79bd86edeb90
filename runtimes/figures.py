"""The report's figures (matplotlib, Agg, object API: no global pyplot state).

Each function draws from records already on disk and writes one PNG
atomically; it returns None when there is nothing to draw (no ok cell, no
per-layer sparsity), and raises :class:`ArtifactError` when a file it needs is
malformed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from runtimes.artifact import Manifest, atomic_write_bytes
from runtimes.errors import ArtifactError
from runtimes.results import Cell

# The classifier weight in each eager structure (see runtimes.structure.skeleton).
CLASSIFIER_KEYS = ("fc._packed_params._packed_params", "inner.fc.weight", "fc.1.weight", "fc.weight")
WEIGHT_VARIANTS = ("int8", "fp16", "mixed")


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
    """The fastest ok cell of each deployable (variant, format) on ``device`` at ``batch``."""
    best: dict[tuple[str, str], Cell] = {}
    for c in cells:
        if c.ok and c.device == device and c.batch == batch and c.format != "eager" and c.median is not None:
            key = (c.variant, c.format)
            if key not in best or c.median < best[key].median:
                best[key] = c
    return list(best.values())


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _scatter_with_front(ax, xs: list[float], ys: list[float], labels: list[str],
                        front: list[int], log_y: bool = False) -> None:
    ax.scatter(xs, ys, color="tab:blue", zorder=2)
    fx, fy = [xs[i] for i in front], [ys[i] for i in front]
    ax.plot(fx, fy, color="tab:red", marker="o", markerfacecolor="none", markersize=11,
            linestyle="--", label="Pareto front", zorder=3)
    if log_y:
        ax.set_yscale("log")
    # Artifacts cluster tightly (one variant in several runtimes): number the points and
    # list the names beside the axes instead of writing labels over each other.
    for i, (x, y) in enumerate(zip(xs, ys)):
        ax.annotate(str(i + 1), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    key = "\n".join(f"{i + 1}. {text}{' *' if i in front else ''}" for i, text in enumerate(labels))
    ax.text(1.02, 1.0, key + "\n(* on the Pareto front)", transform=ax.transAxes, va="top", fontsize=7,
            family="monospace")
    ax.figure.set_size_inches(11, 5)
    ax.margins(0.08, 0.12)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(loc="best", fontsize=8)


def _wide(values: list[float]) -> bool:
    """Whether values span enough (a pathological cell next to fast ones) to need a log axis."""
    return min(values) > 0 and max(values) / min(values) > 20


def latency_vs_size(cells: Sequence[Cell], device: str, batch: int, path: Path) -> Path | None:
    pts = [c for c in best_per_artifact(cells, device, batch) if c.size is not None]
    if not pts:
        return None
    xs = [c.size.compressed_bytes / 1e6 for c in pts]
    ys = [c.median for c in pts]
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    _scatter_with_front(ax, xs, ys, [f"{c.variant}/{c.format} ({c.runtime})" for c in pts],
                        pareto_front(list(zip(xs, ys))), log_y=_wide(ys))
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
    _scatter_with_front(ax, xs, ys, [f"{c.variant}/{c.format} ({c.runtime})" for c in pts],
                        pareto_front([(x, -y) for x, y in zip(xs, ys)]))
    if _wide(xs):
        ax.set_xscale("log")
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
    for variant, per_layer in series.items():
        by_name = {l.name: l.sparsity * 100 for l in per_layer}
        ax.plot(range(len(layers)), [by_name.get(n, np.nan) for n in layers], marker=".",
                label=variant)
    ax.set_xticks(range(len(layers)), layers, rotation=90, fontsize=6)
    ax.set_ylabel("zero weights (%)")
    ax.set_ylim(-2, 102)
    ax.set_title("Sparsity per layer")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def classifier_weight(path: Path) -> np.ndarray:
    """The classifier weight of a saved eager state_dict, dequantized for INT8 (loaded weights-only)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same here
        raise ArtifactError(f"cannot load {path} as a state_dict: {exc}") from exc
    if not isinstance(state, dict):
        raise ArtifactError(f"{path} is not a state_dict")
    for suffix in CLASSIFIER_KEYS:
        for key, value in state.items():
            if key.endswith(suffix):
                if isinstance(value, (tuple, list)):  # INT8 Linear: (packed qint8 weight, bias)
                    value = value[0]
                if value.is_quantized:
                    value = value.dequantize()
                return value.detach().float().numpy()
    raise ArtifactError(f"{path} has no classifier weight (looked for keys ending in "
                        f"{', '.join(CLASSIFIER_KEYS)})")


def classifier_weights(run_dir: Path, manifest: Manifest, path: Path) -> Path | None:
    refs = {r.variant: r for r in manifest.references}
    after = [v for v in WEIGHT_VARIANTS if v in refs]
    if "fp32" not in refs or not after:
        return None
    before = classifier_weight(Path(run_dir) / refs["fp32"].path).ravel()
    fig = Figure(figsize=(4.2 * len(after), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(after), sharey=True))
    for ax, variant in zip(axes, after):
        w = classifier_weight(Path(run_dir) / refs[variant].path).ravel()
        lo, hi = float(min(before.min(), w.min())), float(max(before.max(), w.max()))
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 81)
        ax.hist(before, bins=bins, histtype="step", color="black", label="before (fp32)")
        ax.hist(w, bins=bins, alpha=0.55, color="tab:orange",
                label=f"after ({variant}, {np.mean(w == 0) * 100:.0f}% zero)")
        ax.set_yscale("log")
        ax.set_title(f"classifier weights: {variant}", fontsize=10)
        ax.set_xlabel("weight value")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("count (log)")
    return _save(fig, path)
