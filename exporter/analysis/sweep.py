"""Sparsity × order sweep: where the accuracy goes, and what pruning buys on disk.

Each point is built by the same recipe as ``export``, serialized to ONNX in
memory, measured in ONNX Runtime's CPU provider (the deployment path; FP16 in
PyTorch on a CPU is too slow to sweep) and compressed with zstd, which is what
unstructured pruning saves on disk and on the wire.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from exporter.analysis.records import SweepPoint, SweepReport
from exporter.evaluation import EvalSet, accuracy, model_logits, onnx_logits
from exporter.formats.onnx import onnx_bytes
from exporter.recipe import Recipe
from exporter.variants import VariantSpec
from runtimes.bench.sizes import ZSTD_LEVEL, zstd_size
from runtimes.manifest import PruneMethod, PruneOrder
from runtimes.metrics import sqnr_db

DEFAULT_SPARSITIES = (0.0, 0.3, 0.5, 0.7, 0.9)
DEFAULT_CHANNEL_SPARSITIES = (0.3, 0.5, 0.7)
TIMING_ROUNDS = 30  # interleaved batch-1 runs of a slim point and its dense variant

Say = Callable[[str], None]


def interleaved_latency_ms(a: bytes, b: bytes, example: np.ndarray, rounds: int = TIMING_ROUNDS) -> tuple[float, float]:
    """Median batch-1 latency of two ONNX models in ONNX Runtime's CPU provider, timed alternately so that
    a change in the machine's load falls on both (the sweep's indication; ``bench`` measures rigorously)."""
    import onnxruntime as ort

    sessions = [ort.InferenceSession(m, providers=["CPUExecutionProvider"]) for m in (a, b)]
    name = sessions[0].get_inputs()[0].name
    x = example[:1]
    times: list[list[float]] = [[], []]
    for s in sessions:  # warm-up
        for _ in range(3):
            s.run(None, {name: x})
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            t = time.perf_counter()
            s.run(None, {name: x})
            times[i].append((time.perf_counter() - t) * 1e3)
    return float(np.median(times[0])), float(np.median(times[1]))


@dataclass(frozen=True)
class PointPlan:
    """One sweep point: a variant at one (method, order, sparsity), or a slim variant at one channel sparsity."""

    variant: str
    order: PruneOrder | None = None
    method: PruneMethod | None = None
    sparsity: float = 0.0
    channel_sparsity: float | None = None


def plan_points(specs: Sequence[VariantSpec], sparsities: Sequence[float], orders: Sequence[PruneOrder],
                methods: Sequence[PruneMethod], channel_sparsities: Sequence[float]) -> list[PointPlan]:
    """Every point of the sweep, in the order the record lists them."""
    plans: list[PointPlan] = []
    for spec in specs:
        if spec.channel_pruned:
            plans += [PointPlan(spec.name, channel_sparsity=float(c)) for c in channel_sparsities]
            continue
        for order in (list(orders) if spec.params.order_matters() else [None]):
            for method, s in [(None, 0.0)] * (0.0 in sparsities) + [(m, s) for m in methods for s in sparsities
                                                                        if s > 0]:
                plans.append(PointPlan(spec.name, order, method, float(s)))
    return plans


class PointContext:
    """What every point of one sweep reads: the recipe, the eval set, the FP32 logits; dense slim baselines
    built once. The recipe caches calibrations by the options they depend on, so quantize-then-prune reuses one
    calibration across every sparsity."""

    def __init__(self, recipe: Recipe, ev: EvalSet):
        self.recipe, self.ev = recipe, ev
        self.ref = model_logits(recipe.loaded.model, ev.images)
        self.example = ev.images[:2]
        self._dense: dict[str, bytes] = {}

    def dense_onnx(self, name: str) -> bytes:
        from exporter.variants import get_variant

        if name not in self._dense:
            self._dense[name] = onnx_bytes(self.recipe.build(get_variant(name)), self.example)
        return self._dense[name]


def measure_point(ctx: PointContext, plan: PointPlan) -> SweepPoint:
    """Build one point with the sweep's recipe, serialize it to ONNX in memory and measure it."""
    from exporter.variants import get_variant

    spec, recipe, ev = get_variant(plan.variant), ctx.recipe, ctx.ev
    t = time.perf_counter()
    if plan.channel_sparsity is not None:
        opts = dataclasses.replace(recipe.compression, channels=dataclasses.replace(
            recipe.compression.channels, sparsity=plan.channel_sparsity))
    else:
        opts = dataclasses.replace(recipe.compression, sparsity=plan.sparsity,
                                   order=plan.order or recipe.compression.order,
                                   method=plan.method or recipe.compression.method)
    built = recipe.build(spec, opts)
    data = onnx_bytes(built, ctx.example)
    logits = onnx_logits(data, ev.images)
    top1, top5 = accuracy(logits, ev.labels) if ev.labels is not None else (None, None)
    if plan.channel_sparsity is None:
        return SweepPoint(spec.name, plan.order.value if plan.order else None, plan.sparsity,
                          built.sparsity.achieved, top1, top5, sqnr_db(ctx.ref, logits), len(data), zstd_size(data),
                          time.perf_counter() - t, plan.method.value if plan.method else None)
    latency = speedup = None
    if spec.dense:
        latency, base = interleaved_latency_ms(data, ctx.dense_onnx(spec.dense), ctx.example.numpy())
        speedup = base / latency
    return SweepPoint(spec.name, None, 0.0, built.sparsity.achieved, top1, top5, sqnr_db(ctx.ref, logits), len(data),
                      zstd_size(data), time.perf_counter() - t, None, plan.channel_sparsity, built.macs, latency,
                      speedup)


def point_line(p: SweepPoint) -> str:
    acc = f"top-1 {p.top1:.2f}%, " if p.top1 is not None else ""
    if p.channel_sparsity is not None:
        return (f"sweep {p.variant} channels {p.channel_sparsity:.0%}: {acc}SQNR {p.sqnr_db:.1f} dB, "
                f"{p.macs / 1e6:.0f}M MACs" + (f", {p.latency_ms:.2f} ms ({p.speedup:.2f}× dense)"
                                                if p.latency_ms is not None else ""))
    return (f"sweep {p.variant} {p.method or ''} {p.order or ''} sparsity {p.sparsity:.0%}: {acc}"
            f"SQNR {p.sqnr_db:.1f} dB, zstd {p.zstd_bytes / 1e6:.2f} MB")


def sweep_report(ctx: PointContext, specs: Sequence[VariantSpec], sparsities: Sequence[float],
                 channel_sparsities: Sequence[float], points: list[SweepPoint], seconds: float) -> SweepReport:
    ev = ctx.ev
    fp32_top1 = accuracy(ctx.ref, ev.labels)[0] if ev.labels is not None else None
    return SweepReport(ctx.recipe.loaded.arch, ev.source, int(len(ev.images)), fp32_top1,
                       [float(s) for s in sparsities], points,
                       conclusions([p for p in points if p.channel_sparsity is None]), seconds, zstd_level=ZSTD_LEVEL,
                       channel_sparsities=[float(c) for c in channel_sparsities]
                       if any(s.channel_pruned for s in specs) else [])


def run_sweep(recipe: Recipe, specs: Sequence[VariantSpec], ev: EvalSet,
              sparsities: Sequence[float] = DEFAULT_SPARSITIES,
              orders: Sequence[PruneOrder] = tuple(PruneOrder),
              say: Say = lambda m: None, methods: Sequence[PruneMethod] = tuple(PruneMethod),
              channel_sparsities: Sequence[float] = DEFAULT_CHANNEL_SPARSITIES) -> SweepReport:
    """Build every variant at every sparsity, method and order (where it applies) with ``recipe``; slim
    variants along their channel-sparsity axis instead. One point after another, in this process."""
    t0 = time.perf_counter()
    ctx = PointContext(recipe, ev)
    points = []
    for plan in plan_points(specs, sparsities, orders, methods, channel_sparsities):
        points.append(measure_point(ctx, plan))
        say(point_line(points[-1]))
    return sweep_report(ctx, specs, sparsities, channel_sparsities, points, time.perf_counter() - t0)


def conclusions(points: Sequence[SweepPoint]) -> list[str]:
    """From the numbers (accuracy if known, else SQNR): which method is better, which order, and the
    best method × order per variant, averaged over the sparsities > 0 measured for both."""
    use_acc = all(p.top1 is not None for p in points)
    metric = (lambda p: p.top1) if use_acc else (lambda p: p.sqnr_db)
    unit = "points top-1" if use_acc else "dB SQNR"
    pruned = [p for p in points if p.sparsity > 0]
    out = []
    for variant in dict.fromkeys(p.variant for p in pruned):
        mine = [p for p in pruned if p.variant == variant]
        by: dict[tuple, dict[float, SweepPoint]] = {}
        for p in mine:
            by.setdefault((p.method or PruneMethod.MAGNITUDE.value, p.order), {})[p.sparsity] = p

        def compare(a: tuple, b: tuple) -> float | None:
            common = sorted(set(by.get(a, {})) & set(by.get(b, {})))
            if not common:
                return None
            return float(np.mean([metric(by[b][s]) - metric(by[a][s]) for s in common]))

        methods = list(dict.fromkeys(k[0] for k in by))
        orders = list(dict.fromkeys(k[1] for k in by))
        if len(methods) == 2:
            diffs = [d for o in orders if (d := compare((methods[1], o), (methods[0], o))) is not None]
            if diffs:
                mean = float(np.mean(diffs))
                better, worse = (methods[0], methods[1]) if mean > 0 else (methods[1], methods[0])
                out.append(f"{variant}: {better} pruning beats {worse} by {abs(mean):.2f} {unit} on average")
        if len(orders) == 2 and None not in orders:
            qtp, ptq = PruneOrder.QUANTIZE_THEN_PRUNE.value, PruneOrder.PRUNE_THEN_QUANTIZE.value
            for m in methods:
                d = compare((m, qtp), (m, ptq))
                if d is None:
                    continue
                if abs(d) < 0.01:
                    out.append(f"{variant} ({m}): no difference between the orders ({unit})")
                else:
                    better = ptq if d > 0 else qtp
                    out.append(f"{variant} ({m}): {better} is better by {abs(d):.2f} {unit} on average over "
                               "sparsities > 0")
        best = max(by, key=lambda k: float(np.mean([metric(p) for p in by[k].values()])))
        hi = max(by[best])
        out.append(f"{variant}: best here is {best[0]}" + (f", {best[1]}" if best[1] else "")
                   + f" ({metric(by[best][hi]):.2f} {unit.split()[-1] if not use_acc else 'top-1'} at {hi:.0%})")
    return out
