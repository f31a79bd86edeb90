"""The benchmark on a local two-node Ray cluster: both targets in one results.json, exact sharded accuracy,
a worker killed mid-cell, and the one-line refusals before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from runtimes.bench.results import RESULTS_NAME, Status, read_results
from tests.support.ray_cluster import NODE_CPUS

pytestmark = pytest.mark.slow
FAST = ["--min-time", "0.05", "--min-iters", "3", "--retry-budget", "0", "--job-cpus", str(NODE_CPUS)]
ROOT = Path(__file__).resolve().parents[3]


def shrinkwrap(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from exporter.cli import app; app()", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, **kw)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture
def tiny(copy_run_dir) -> Path:
    return copy_run_dir()


def node_targets(cluster) -> dict[str, str]:
    """Ray node id -> the target its resources carry."""
    import ray

    ray.init(address=cluster.address, logging_level="ERROR")
    try:
        return {n["NodeID"]: next(k.split(":", 1)[1] for k in n["Resources"] if k.startswith("target:"))
                for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()


def test_bench_across_two_targets_in_one_results_file(ray_cluster, tiny):
    from exporter.report import render_report

    code, out, err = finish(shrinkwrap("bench", str(tiny), "--executor", "ray", "--ray-address", ray_cluster.address,
                                       "--targets", "a,b", "--runtimes", "ort-cpu,torchscript", "--batch", "1",
                                       "--variants", "fp32,int8", *FAST))
    assert code == 0, err
    results = read_results(tiny)
    assert results.settings.executor == "ray" and results.settings.targets == ["a", "b"]
    ran = [c for c in results.cells if c.ok]
    # 2 variants x 2 formats, each in the one runtime that runs it, on each target
    assert sorted((c.target, c.variant, c.format) for c in ran) == sorted(
        (t, v, f) for t in "ab" for v in ("fp32", "int8") for f in ("torchscript", "onnx"))
    where = node_targets(ray_cluster)
    for c in ran:
        assert c.node is not None and where[c.node.node_id] == c.target  # pinned to a node carrying target:<name>
        assert c.node.environment.cpu_model and c.node.environment.versions["torch"]
        assert c.latency_ms.median > 0
    report = render_report(tiny).read_text()
    assert "## Deployment targets" in report and "### a" in report and "### b" in report
    assert "**Each column is a different machine**" in report
    # compare: each target's cells against the same target's, gated node against node
    from runtimes.bench.regression import Verdict, compare_runs

    same = compare_runs(tiny, tiny)
    latency = [d for d in same.deltas if d.metric == "latency.median"]
    assert {d.target for d in latency} == {"a", "b"} and len(latency) == len(ran)
    assert all(d.verdict is Verdict.OK and d.cell.endswith(f"@{d.target}") for d in latency)


def test_sharded_accuracy_over_1000_images_equals_the_serial_one(ray_cluster, tiny, tmp_path):
    from runtimes import registry
    from runtimes.bench.cell import evaluate
    from runtimes.manifest import read_manifest

    rng = np.random.default_rng(0)
    path = tmp_path / "eval.npz"
    np.savez(path, images=rng.standard_normal((1000, 3, 64, 64), dtype=np.float32),
             labels=rng.integers(0, 10, 1000))
    from runtimes.bench.options import BenchOptions
    from runtimes.bench.runner import bench
    from runtimes.executor.options import ExecutorOptions

    ex = ExecutorOptions(kind="ray", address=ray_cluster.address, targets=("b",), job_cpus=NODE_CPUS,
                         shard_images=256)  # 4 shards to merge
    results = bench(tiny, BenchOptions(runtimes=("ort-cpu",), batches=(8,), threads=1, variants=("fp32",),
                                       min_time_s=0.05, min_iters=3, retry_budget_s=0, executor=ex),
                    eval_tensors=path)
    cell = next(c for c in results.cells if c.ok)
    rec = next(r for r in read_manifest(tiny).artifacts if (r.variant, r.format) == ("fp32", "onnx"))
    rt = registry.get_spec("ort-cpu").create(1)
    rt.load(tiny, rec)
    try:
        top1, top5, n, total = evaluate(rt.run, path, 8, rec.num_classes)
    finally:
        rt.close()
    assert (cell.top1, cell.top5, cell.eval_images) == (top1, top5, n) == (top1, top5, 1000)
    assert 0 < top1 < 100 and 0 < top5 < 100  # a measure that could have differed


def test_a_worker_killed_mid_cell_is_retried_and_the_results_are_complete(ray_cluster, tiny, tmp_path):
    pids = tmp_path / "pids"
    proc = shrinkwrap("bench", str(tiny), "--executor", "ray", "--ray-address", ray_cluster.address,
                      "--targets", "a,b", "--runtimes", "ort-cpu", "--batch", "1", "--variants", "fp32", *FAST,
                      env={"SHRINKWRAP_TEST_TASK_PIDS": str(pids), "SHRINKWRAP_TEST_CELL_SLEEP": "ort-cpu=6"})
    deadline = time.time() + 120
    while time.time() < deadline and not (pids.is_dir() and any(pids.iterdir())):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    victim = int(sorted(pids.iterdir(), key=lambda p: p.stat().st_mtime)[0].name)
    time.sleep(1.0)  # inside the cell: its process sleeps 6 s before measuring
    os.kill(victim, signal.SIGKILL)
    code, out, err = finish(proc)
    assert code == 0, err
    results = read_results(tiny)
    cells = [c for c in results.cells if c.format == "onnx"]
    assert sorted(c.target for c in cells) == ["a", "b"]
    assert all(c.status is Status.OK for c in cells), [c.reason for c in cells]
    retried = [c for c in cells if c.node.attempt > 1]
    assert len(retried) == 1 and all(c.node.pid != victim for c in cells)


@pytest.mark.parametrize("args, message", [
    (["--targets", "a,c"], "--targets c: no live node of the cluster carries target:c (carried: target:a, target:b)"),
    (["--targets", "a", "--job-cpus", "64"], "no node of target a has 64 CPUs for one timing job"),
])
def test_a_target_no_node_carries_is_one_line_and_nothing_is_written(ray_cluster, tiny, args, message):
    cmd = ["bench", str(tiny), "--executor", "ray", "--ray-address", ray_cluster.address, "--runtimes", "ort-cpu",
           "--batch", "1", "--min-time", "0.05", "--min-iters", "3", *args]
    if "--job-cpus" not in args:
        cmd += ["--job-cpus", str(NODE_CPUS)]
    code, out, err = finish(shrinkwrap(*cmd))
    assert code == 2
    assert message in err and len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    assert not (tiny / RESULTS_NAME).exists()


def test_an_unreachable_cluster_is_one_line_before_any_work(tiny):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = finish(shrinkwrap("bench", str(tiny), "--executor", "ray", "--ray-address", f"127.0.0.1:{port}",
                                       "--runtimes", "ort-cpu"), timeout=60)
    assert code == 2 and "cannot reach a Ray cluster there" in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    assert not (tiny / RESULTS_NAME).exists()
    json.dumps(out)  # nothing else is asserted about stdout: it is empty of records
