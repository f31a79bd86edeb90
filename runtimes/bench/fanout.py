"""The benchmark fanned out on a Ray cluster: every cell and comparison once per deployment target, then
accuracy in shards.

The units are the local sweep's: each Ray task writes a verified private run directory from the object
store (:mod:`runtimes.executor.blobs`), runs the cell's own checks on its node (what runs there is a fact
about that node, not about this machine), and starts the same cell process the local sweep starts
(:mod:`runtimes.bench.spawn`). Its record comes back with the node it ran on and that node's environment.

Phases, so that nothing else runs on a node while it times: the timing jobs (cells and comparisons, each
asking for a whole unit of its target and ``job_cpus`` CPUs), then the accuracy shards (image ranges on
a small share of the target). Shard ranges are whole batches, and their top-k counts add up: the merged
top-1/top-5 is the serial evaluation's number exactly (:func:`runtimes.metrics.topk_correct`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from runtimes import registry
from runtimes.bench import grid
from runtimes.bench.cell import CellSpec
from runtimes.bench.compare import CompareSpec
from runtimes.bench.environment import collect_environment
from runtimes.bench.launch import launcher
from runtimes.bench.results import Cell, Comparison, NodeRecord, SizeRecord, Status
from runtimes.bench.sizes import size_record
from runtimes.bench.spawn import child_env, precheck_comparison, spawn_cell, spawn_comparison
from runtimes.errors import BadInputError
from runtimes.executor.blobs import Blob, StagedRun, record_files, staged_run_dir
from runtimes.executor.options import DEFAULT_SHARD_IMAGES, ExecutorOptions
from runtimes.executor.ray_cluster import RayCluster, TaskFailed, attempt_number
from runtimes.manifest import MANIFEST_NAME, ArtifactRecord, Manifest, read_manifest
from runtimes.protocol import BatchedEval

Progress = Callable[[int, int, Any], None]


# ---------------------------------------------------------------- what a task gets

@dataclass(frozen=True)
class CellJob:
    staged: StagedRun
    spec: CellSpec  # its run_dir is replaced by the staged directory on the node
    entry: grid.GridEntry
    timeout_s: float
    target: str | None


@dataclass(frozen=True)
class ComparisonJob:
    staged: StagedRun
    spec: CompareSpec
    timeout_s: float
    target: str | None


@dataclass(frozen=True)
class ShardJob:
    staged: StagedRun
    record: ArtifactRecord
    runtime: str
    batch: int
    threads: int | None
    images: Any  # ray.ObjectRef to the float32 NCHW array (or the array)
    labels: Any
    start: int
    stop: int
    imports: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShardCounts:
    images: int
    top1: int
    top5: int | None


# ---------------------------------------------------------------- what runs on a node

def this_node(target: str | None, threads: int | None, attempt: int) -> NodeRecord:
    import ray

    return NodeRecord(node_id=ray.get_runtime_context().get_node_id(), hostname=socket.gethostname(),
                      target=target, pid=os.getpid(), attempt=attempt, environment=collect_environment(threads))


def run_cell_job(job: CellJob) -> Cell:
    """A Ray task: one cell on this node, in a process of its own, as the local sweep measures it."""
    attempt = attempt_number()
    _test_pid_hook()
    with staged_run_dir(job.staged) as run_dir:
        pre = grid.precheck(job.entry, job.spec.threads)
        if pre is not None:
            cell = dataclasses.replace(pre, batch=job.spec.batch)
        else:
            with launcher(child_env(job.spec.threads), ()) as launch:
                cell = spawn_cell(dataclasses.replace(job.spec, run_dir=run_dir), job.timeout_s, launch, job.entry)
    return dataclasses.replace(cell, target=job.target, node=this_node(job.target, job.spec.threads, attempt))


def run_comparison_job(job: ComparisonJob) -> Comparison:
    attempt = attempt_number()
    with staged_run_dir(job.staged) as run_dir:
        spec = dataclasses.replace(job.spec, run_dir=run_dir)
        manifest = read_manifest(run_dir)
        with launcher(child_env(spec.threads), ()) as launch:
            got = precheck_comparison(spec, manifest) or spawn_comparison(spec, job.timeout_s, launch)
    return dataclasses.replace(got, target=job.target, node=this_node(job.target, spec.threads, attempt))


def run_shard_job(job: ShardJob) -> ShardCounts:
    """A Ray task: top-k counts of one image range of one artifact in one runtime."""
    import importlib

    import ray

    from runtimes import metrics

    for module in job.imports:
        importlib.import_module(module)
    images = job.images if isinstance(job.images, np.ndarray) else ray.get(job.images)
    labels = job.labels if isinstance(job.labels, np.ndarray) else ray.get(job.labels)
    x = np.ascontiguousarray(images[job.start:job.stop], dtype=np.float32)
    y = np.asarray(labels[job.start:job.stop], dtype=np.int64)
    with staged_run_dir(job.staged) as run_dir:
        rt = registry.get_spec(job.runtime).create(job.threads)
        rt.load(run_dir, job.record)
        try:
            if isinstance(rt, BatchedEval):
                logits = np.asarray(rt.run_all(x, job.batch), dtype=np.float32)
            else:
                logits = np.concatenate([np.asarray(rt.run(x[i:i + job.batch]), dtype=np.float32)
                                         for i in range(0, len(x), job.batch)])
        finally:
            rt.close()
    ks = (1, 5) if job.record.num_classes >= 5 else (1,)
    counts = metrics.topk_correct(logits, y, ks=ks)
    return ShardCounts(len(y), counts[1], counts.get(5))


def shard_ranges(n: int, batch: int, shard_images: int = DEFAULT_SHARD_IMAGES) -> list[tuple[int, int]]:
    """[start, stop) ranges covering ``n`` images, each a whole number of batches but the last."""
    size = max(batch, -(-shard_images // batch) * batch)
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


def merge_counts(shards: Sequence[ShardCounts]) -> tuple[float, float | None, int]:
    """(top-1, top-5 or None, images) of the union of the shards: the serial evaluation's figures."""
    from runtimes.metrics import percent

    n = sum(s.images for s in shards)
    top5 = None if any(s.top5 is None for s in shards) else percent(sum(s.top5 for s in shards), n)
    return percent(sum(s.top1 for s in shards), n), top5, n


# ---------------------------------------------------------------- the driver's side

class Shipment:
    """Each file the jobs read, put in the object store once; a job's :class:`StagedRun` names its own."""

    def __init__(self, cluster: RayCluster, run_dir: Path, manifest: Manifest):
        self.cluster, self.run_dir, self.manifest = cluster, Path(run_dir), manifest
        self.manifest_json = (self.run_dir / MANIFEST_NAME).read_bytes()
        self.blobs: dict[str, Blob] = {}

    def staged(self, records: Sequence[ArtifactRecord]) -> StagedRun:
        files = []
        for path, digest in record_files(self.manifest, list(records)):
            if path not in self.blobs:
                self.blobs[path] = Blob(path, digest, self.cluster.put((self.run_dir / path).read_bytes()))
            files.append(self.blobs[path])
        return StagedRun(self.manifest_json, tuple(files))


def _records(manifest: Manifest, spec: CompareSpec) -> list[ArtifactRecord]:
    return [r for r in manifest.records() if (r.variant, r.format) in (spec.a, spec.b)]


def measure_on_cluster(run_dir: Path, manifest: Manifest, entries: list[grid.GridEntry], batches: list[int],
                       comparisons: list[CompareSpec], cell_spec: Callable[[grid.GridEntry, int], CellSpec],
                       timeout_s: float, eval_tensors: Path | None, executor: ExecutorOptions,
                       progress: Progress | None = None) -> tuple[list[Cell], list[Comparison]]:
    """Every cell and comparison on every target, then accuracy in shards; returned in plan order
    (target by target), published by the caller only once everything has finished."""
    targets: list[str | None] = list(executor.targets) or [None]
    job_cpus = executor.cpus_per_job()
    with RayCluster(executor) as cluster:
        cluster.require_targets(executor.targets, job_cpus)  # one line before any work
        ship = Shipment(cluster, run_dir, manifest)
        sizes: dict[str, SizeRecord] = {}
        plan: list[tuple[str | None, grid.GridEntry, int]] = []
        refs, local_cells = [], {}
        for target in targets:
            for entry in entries:
                rec = entry.record
                sizes.setdefault(rec.path, size_record(run_dir, rec))
                for batch in batches:
                    i = len(plan)
                    plan.append((target, entry, batch))
                    if not entry.runtime.runs(rec.format):  # a fact of the registry, not of a node
                        local_cells[i] = dataclasses.replace(grid.precheck(entry, None), batch=batch, target=target)
                        continue
                    job = CellJob(ship.staged([rec]), cell_spec(entry, batch), entry, timeout_s, target)
                    refs.append((i, cluster.submit(run_cell_job, job, target=target, cpus=job_cpus)))
        cmp_refs = [cluster.submit(run_comparison_job, ComparisonJob(ship.staged(_records(manifest, c)), c,
                                                                     timeout_s, target),
                                   target=target, cpus=job_cpus)
                    for target in targets for c in comparisons]
        total = len(plan) + len(cmp_refs)
        done_count = [len(local_cells)]

        def tick(_: int, value: Any) -> None:
            done_count[0] += 1
            if progress is not None and not isinstance(value, TaskFailed):
                progress(done_count[0], total, value)

        got = cluster.gather([r for _, r in refs] + cmp_refs, tick)
        cells: list[Cell] = [None] * len(plan)  # type: ignore[list-item]
        for i, c in local_cells.items():
            cells[i] = c
        for (i, _), value in zip(refs, got[:len(refs)]):
            target, entry, batch = plan[i]
            cells[i] = value if isinstance(value, Cell) else Cell(
                **grid.base_cell(entry, batch, cell_spec(entry, batch).threads), status=Status.ERROR,
                reason=value.reason, target=target)
        compared = []
        for (target, c), value in zip([(t, c) for t in targets for c in comparisons], got[len(refs):]):
            compared.append(value if isinstance(value, Comparison) else Comparison(
                c.runtime, registry.get_spec(c.runtime).device, c.batch, c.a[0], c.a[1], c.b[0], c.b[1],
                status="error", reason=value.reason, b_runtime=c.b_runtime, target=target))
        cells = [dataclasses.replace(c, size=sizes[e.record.path]) for c, (_, e, _) in zip(cells, plan)]
        if eval_tensors is not None:
            cells = evaluate_on_cluster(cluster, ship, cells, plan, max(batches), eval_tensors,
                                        executor.shard_images)
    return cells, compared


def evaluate_on_cluster(cluster: RayCluster, ship: Shipment, cells: list[Cell],
                        plan: list[tuple[str | None, grid.GridEntry, int]], batch: int,
                        eval_tensors: Path, shard_images: int = DEFAULT_SHARD_IMAGES) -> list[Cell]:
    """Top-1/top-5 of every ok cell at ``batch``, over the whole eval set, in shards on the cell's target."""
    path = Path(eval_tensors)
    if not path.is_file():
        raise BadInputError(f"eval tensors not found: {path}")
    with np.load(path) as data:
        images = np.ascontiguousarray(data["images"], dtype=np.float32)
        labels = np.asarray(data["labels"], dtype=np.int64)
    images_ref, labels_ref = cluster.put(images), cluster.put(labels)
    ranges = shard_ranges(len(images), batch, shard_images)
    asks: list[tuple[int, list[Any]]] = []
    for i, (cell, (target, entry, b)) in enumerate(zip(cells, plan)):
        if b != batch or not cell.ok:
            continue
        staged = ship.staged([entry.record])
        jobs = [ShardJob(staged, entry.record, entry.runtime.name, batch, cell.threads, images_ref, labels_ref,
                         lo, hi, _plugin_imports(entry)) for lo, hi in ranges]
        asks.append((i, [cluster.submit(run_shard_job, job, target=target, cpus=1, exclusive=False)
                         for job in jobs]))
    flat = cluster.gather([r for _, rs in asks for r in rs])
    out = list(cells)
    k = 0
    for i, rs in asks:
        shards = flat[k:k + len(rs)]
        k += len(rs)
        failed = [s for s in shards if isinstance(s, TaskFailed)]
        if failed:
            out[i] = dataclasses.replace(out[i], flags=[*out[i].flags, f"accuracy not measured: a shard's {failed[0].reason}"])
            continue
        top1, top5, n = merge_counts(shards)
        out[i] = dataclasses.replace(out[i], top1=top1, top5=top5, eval_images=n)
    return out


def _plugin_imports(entry: grid.GridEntry) -> tuple[str, ...]:
    module = entry.runtime.cls.__module__
    return () if module in registry.BUILTIN_MODULES else (module,)


# SHRINKWRAP_TEST_TASK_PIDS=DIR: each cell task writes its worker's pid there as it starts, so that a test can
# kill that worker mid-cell (the fault-tolerance test).
def _test_pid_hook() -> None:
    where = os.environ.get("SHRINKWRAP_TEST_TASK_PIDS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        (Path(where) / str(os.getpid())).write_text(json.dumps({"started": time.time()}))
