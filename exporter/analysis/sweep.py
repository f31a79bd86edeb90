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


def channel_points(recipe: Recipe, spec: VariantSpec, ev: EvalSet, levels: Sequence[float], ref: np.ndarray,
                   say: Say) -> list[SweepPoint]:
    """A slim variant at each channel sparsity: accuracy, MACs, size, and batch-1 latency against its dense
    variant (built once)."""
    from exporter.variants import get_variant

    example = ev.images[:2]
    dense = onnx_bytes(recipe.build(get_variant(spec.dense)), example) if spec.dense else None
    points = []
    for c in levels:
        t = time.perf_counter()
        opts = dataclasses.replace(recipe.compression,
                                   channels=dataclasses.replace(recipe.compression.channels, sparsity=float(c)))
        built = recipe.build(spec, opts)
        data = onnx_bytes(built, example)
        logits = onnx_logits(data, ev.images)
        top1, top5 = accuracy(logits, ev.labels) if ev.labels is not None else (None, None)
        latency = speedup = None
        if dense is not None:
            latency, base = interleaved_latency_ms(data, dense, example.numpy())
            speedup = base / latency
        p = SweepPoint(spec.name, None, 0.0, built.sparsity.achieved, top1, top5, sqnr_db(ref, logits), len(data),
                       zstd_size(data), time.perf_counter() - t, None, float(c), built.macs, latency, speedup)
        points.append(p)
        say(f"sweep {spec.name} channels {c:.0%}: " + (f"top-1 {top1:.2f}%, " if top1 is not None else "")
            + f"SQNR {p.sqnr_db:.1f} dB, {built.macs / 1e6:.0f}M MACs"
            + (f", {latency:.2f} ms ({speedup:.2f}× {spec.dense})" if latency is not None else ""))
    return points


def run_sweep(recipe: Recipe, specs: Sequence[VariantSpec], ev: EvalSet,
              sparsities: Sequence[float] = DEFAULT_SPARSITIES,
              orders: Sequence[PruneOrder] = tuple(PruneOrder),
              say: Say = lambda m: None, methods: Sequence[PruneMethod] = tuple(PruneMethod),
              channel_sparsities: Sequence[float] = DEFAULT_CHANNEL_SPARSITIES) -> SweepReport:
    """Build every variant at every sparsity, method and order (where it applies) with ``recipe``; slim
    variants along their channel-sparsity axis instead."""
    t0 = time.perf_counter()
    ref = model_logits(recipe.loaded.model, ev.images)
    fp32_top1 = accuracy(ref, ev.labels)[0] if ev.labels is not None else None
    example = ev.images[:2]
    points: list[SweepPoint] = []
    for spec in specs:
        if spec.channel_pruned:
            points += channel_points(recipe, spec, ev, channel_sparsities, ref, say)
            continue
        # The recipe caches calibrations by the options they depend on, so quantize-then-prune
        # reuses one calibration across every sparsity.
        for order in (list(orders) if spec.params.order_matters() else [None]):
            for method, s in [(None, 0.0)] * (0.0 in sparsities) + [(m, s) for m in methods for s in sparsities
                                                                        if s > 0]:
                t = time.perf_counter()
                opts = dataclasses.replace(recipe.compression, sparsity=s, order=order or recipe.compression.order,
                                           method=method or recipe.compression.method)
                built = recipe.build(spec, opts)
                data = onnx_bytes(built, example)
                logits = onnx_logits(data, ev.images)
                top1, top5 = accuracy(logits, ev.labels) if ev.labels is not None else (None, None)
                p = SweepPoint(spec.name, order.value if order else None, float(s), built.sparsity.achieved,
                               top1, top5, sqnr_db(ref, logits), len(data), zstd_size(data),
                               time.perf_counter() - t, method.value if method else None)
                points.append(p)
                say(f"sweep {spec.name} {p.method or ''} {p.order or ''} sparsity {s:.0%}: "
                         + (f"top-1 {top1:.2f}%, " if top1 is not None else "")
                         + f"SQNR {p.sqnr_db:.1f} dB, zstd {p.zstd_bytes / 1e6:.2f} MB")
    return SweepReport(recipe.loaded.arch, ev.source, int(len(ev.images)), fp32_top1,
                       [float(s) for s in sparsities], points, conclusions([p for p in points if p.channel_sparsity is None]),
                       time.perf_counter() - t0, zstd_level=ZSTD_LEVEL,
                       channel_sparsities=[float(c) for c in channel_sparsities] if any(s.channel_pruned for s in specs) else [])


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
