"""Sparsity × order sweep: where the accuracy goes, and what pruning buys on disk.

Each point is built by the same recipe as ``export``, serialized to ONNX in
memory, measured in ONNX Runtime's CPU provider (the deployment path; FP16 in
PyTorch on a CPU is too slow to sweep) and compressed with zstd, which is what
unstructured pruning saves on disk and on the wire.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import numpy as np

from exporter.analysis.records import SweepPoint, SweepReport
from exporter.evaluation import EvalSet, accuracy, model_logits, onnx_logits
from exporter.formats.onnx import onnx_bytes
from exporter.recipe import Recipe
from exporter.variants import VariantSpec
from runtimes.bench.sizes import ZSTD_LEVEL, zstd_size
from runtimes.manifest import PruneOrder
from runtimes.metrics import sqnr_db

DEFAULT_SPARSITIES = (0.0, 0.3, 0.5, 0.7, 0.9)

Say = Callable[[str], None]


def run_sweep(recipe: Recipe, specs: Sequence[VariantSpec], ev: EvalSet,
              sparsities: Sequence[float] = DEFAULT_SPARSITIES,
              orders: Sequence[PruneOrder] = tuple(PruneOrder),
              say: Say = lambda m: None) -> SweepReport:
    """Build every variant at every sparsity (and order, where it applies) with ``recipe``."""
    t0 = time.perf_counter()
    ref = model_logits(recipe.loaded.model, ev.images)
    fp32_top1 = accuracy(ref, ev.labels)[0] if ev.labels is not None else None
    example = ev.images[:2]
    points: list[SweepPoint] = []
    for spec in specs:
        # The recipe caches calibrations by the options they depend on, so quantize-then-prune
        # reuses one calibration across every sparsity.
        for order in (list(orders) if spec.params.order_matters() else [None]):
            for s in sparsities:
                t = time.perf_counter()
                opts = dataclasses.replace(recipe.compression, sparsity=s, order=order or recipe.compression.order)
                built = recipe.build(spec, opts)
                data = onnx_bytes(built, example)
                logits = onnx_logits(data, ev.images)
                top1, top5 = accuracy(logits, ev.labels) if ev.labels is not None else (None, None)
                p = SweepPoint(spec.name, order.value if order else None, float(s), built.sparsity.achieved,
                               top1, top5, sqnr_db(ref, logits), len(data), zstd_size(data),
                               time.perf_counter() - t)
                points.append(p)
                say(f"sweep {spec.name} {p.order or ''} sparsity {s:.0%}: "
                         + (f"top-1 {top1:.2f}%, " if top1 is not None else "")
                         + f"SQNR {p.sqnr_db:.1f} dB, zstd {p.zstd_bytes / 1e6:.2f} MB")
    return SweepReport(recipe.loaded.arch, ev.source, int(len(ev.images)), fp32_top1,
                       [float(s) for s in sparsities], points, conclusions(points), time.perf_counter() - t0,
                       zstd_level=ZSTD_LEVEL)


def conclusions(points: Sequence[SweepPoint]) -> list[str]:
    """Which order is better, per variant, from the numbers (accuracy if known, else SQNR)."""
    out = []
    for variant in dict.fromkeys(p.variant for p in points):
        by_order: dict[str, list[SweepPoint]] = {}
        for p in points:
            if p.variant == variant and p.order:
                by_order.setdefault(p.order, []).append(p)
        if len(by_order) != 2:
            continue
        qtp = sorted(by_order[PruneOrder.QUANTIZE_THEN_PRUNE.value], key=lambda p: p.sparsity)
        ptq = sorted(by_order[PruneOrder.PRUNE_THEN_QUANTIZE.value], key=lambda p: p.sparsity)
        use_acc = all(p.top1 is not None for p in qtp + ptq)
        metric = (lambda p: p.top1) if use_acc else (lambda p: p.sqnr_db)
        unit = "points top-1" if use_acc else "dB SQNR"
        diffs = [metric(b) - metric(a) for a, b in zip(qtp, ptq) if a.sparsity == b.sparsity and a.sparsity > 0]
        if not diffs:
            continue
        hi_a, hi_b = qtp[-1], ptq[-1]
        mean = float(np.mean(diffs))
        tail = (f"at {hi_a.sparsity:.0%}: quantize-then-prune {metric(hi_a):.2f}, "
                f"prune-then-quantize {metric(hi_b):.2f}")
        if abs(mean) < 0.01:
            out.append(f"{variant}: no difference between the orders ({unit}); {tail}")
            continue
        better = "prune-then-quantize" if mean > 0 else "quantize-then-prune"
        out.append(f"{variant}: {better} is better by {abs(mean):.2f} {unit} on average over sparsities > 0; "
                   f"{tail}")
    return out


