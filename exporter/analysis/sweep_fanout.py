"""The sweep fanned out: each point a Ray task that rebuilds the sweep's inputs on its node, once per worker.

A point is a pure function of the analysis options and its :class:`~exporter.analysis.sweep.PointPlan`, so a
worker rebuilds the recipe and eval set from the same options (the same images, the same seeds) and keeps them
for the next point it gets. The record is the local sweep's: the same points in the same order, the same
conclusions. Data paths (calibration, eval, fine-tuning images) must exist on every node.
"""

from __future__ import annotations

import dataclasses
import pickle
import tempfile
import time
from pathlib import Path
from typing import Sequence

from exporter.analysis.inputs import SWEEP_SYNTHETIC_IMAGES, AnalysisOptions, analysis_inputs
from exporter.analysis.records import SweepPoint, SweepReport
from exporter.analysis.sweep import PointContext, PointPlan, measure_point, plan_points, point_line, sweep_report
from exporter.evaluation import EvalSet
from exporter.progress import Reporter
from exporter.recipe import Recipe
from exporter.variants import VariantSpec
from runtimes.errors import ShrinkwrapError
from runtimes.executor.options import ExecutorOptions
from runtimes.manifest import PruneMethod, PruneOrder

# One context per analysis per worker process: Ray reuses a worker for many tasks.
_CONTEXTS: dict[bytes, PointContext] = {}


def portable(opts: AnalysisOptions) -> AnalysisOptions:
    """The options with absolute data paths (a worker's working directory is not ours) and a private out."""
    def absolute(p: Path | None) -> Path | None:
        return Path(p).resolve() if p is not None else None

    c = opts.compression
    return dataclasses.replace(
        opts, out=Path(tempfile.gettempdir()) / "shrinkwrap-sweep",
        calibration=dataclasses.replace(opts.calibration, data=absolute(opts.calibration.data)),
        evaluation=dataclasses.replace(opts.evaluation, data=absolute(opts.evaluation.data)),
        compression=dataclasses.replace(c, finetune=dataclasses.replace(c.finetune, data=absolute(c.finetune.data))))


def sweep_point_task(opts: AnalysisOptions, plan: PointPlan) -> SweepPoint:
    """A Ray task: one point, measured with this worker's copy of the sweep's inputs."""
    key = pickle.dumps(opts)
    if key not in _CONTEXTS:
        _CONTEXTS.clear()
        recipe, ev = analysis_inputs(opts, SWEEP_SYNTHETIC_IMAGES)
        _CONTEXTS[key] = PointContext(recipe, ev)
    return measure_point(_CONTEXTS[key], plan)


def sweep_on_cluster(opts: AnalysisOptions, recipe: Recipe, ev: EvalSet, specs: Sequence[VariantSpec],
                     sparsities: Sequence[float], methods: Sequence[PruneMethod],
                     channel_sparsities: Sequence[float], executor: ExecutorOptions,
                     reporter: Reporter) -> SweepReport:
    from runtimes.executor.ray_cluster import RayCluster, TaskFailed

    t0 = time.perf_counter()
    ctx = PointContext(recipe, ev)  # the FP32 reference and the record's header, here
    plans = plan_points(specs, sparsities, tuple(PruneOrder), methods, channel_sparsities)
    shipped = portable(opts)
    with RayCluster(executor) as cluster:
        cluster.require_targets((), 1.0)
        refs = [cluster.submit(sweep_point_task, shipped, plan, cpus=1.0) for plan in plans]
        with reporter.task("sweep") as update:
            count = [0]

            def done(i: int, value) -> None:
                count[0] += 1
                update(count[0], len(plans), plans[i].variant)
                if isinstance(value, SweepPoint):
                    reporter.say(point_line(value))

            points = cluster.gather(refs, done)
    lost = [p for p, v in zip(plans, points) if isinstance(v, TaskFailed)]
    if lost:
        raise ShrinkwrapError(f"{len(lost)} sweep point(s) were lost ({lost[0].variant}: "
                              f"{points[plans.index(lost[0])].reason}); nothing was written")
    return sweep_report(ctx, specs, sparsities, channel_sparsities, list(points), time.perf_counter() - t0)
