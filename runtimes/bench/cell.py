"""One benchmark cell, meant to run in its own process.

    python -m runtimes.bench.cell --run-dir DIR --variant V --format F --runtime R --batch N \
        [--threads T] [--min-time S] [--min-iters K] [--warmup W] [--max-time S] \
        [--eval-tensors FILE.npz] [--import MODULE ...]

prints exactly one JSON :class:`~runtimes.results.Cell` as the last line of
stdout and exits 0, also for skipped and failed cells: whatever goes wrong
becomes ``status: error`` with a one-line reason. A fresh process per cell
means one runtime's thread pools, allocator state or crash cannot leak into
the next measurement.

Timing: ``warmup`` untimed runs, then timed runs (``time.perf_counter`` around
each ``run``) until both ``min_time`` seconds and ``min_iters`` iterations are
reached, or ``max_time`` seconds have passed (at least one timed run), so that
pathologically slow cells (FP16 in PyTorch on CPU) stay bounded; the stats
record the iterations actually done. Which call is timed depends on the
runtime's declared capabilities, by preference: :class:`~runtimes.protocol.SelfTimed`
(libtorch-cpp times inside C++, so the process spawn is not measured); else
:class:`~runtimes.protocol.BoundRun`, ``bind`` once + ``run_bound`` per iteration
(the input stays on the device: IO binding for ort-cuda, no copies for the CUDA
torch runtimes); else ``run``. ``runtime_info["timing"]`` says which.

``--import MODULE`` imports a module before the runtime is looked up, so that a
runtime registered outside :data:`runtimes.registry.BUILTIN_MODULES` (a plugin,
a test's stub) is registered in the cell's process too.

Accuracy (``--eval-tensors``): every image is run in batches of ``batch``; the
last batch is run as it is (smaller), not padded.

Test hooks, honoured only when set (for the sweep's tests):
``SHRINKWRAP_TEST_CELL_SLEEP`` = ``SECONDS`` or ``RUNTIME=SECONDS`` sleeps first;
``SHRINKWRAP_TEST_CELL_CRASH`` = ``RUNTIME`` or ``*`` exits with status 70 and
no JSON, as a crashing runtime would.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from runtimes import registry
from runtimes.bench import stability
from runtimes.bench.grid import one_line
from runtimes.bench.options import EVAL_BUDGET_S, BenchOptions
from runtimes.bench.results import Cell, LatencyStats, Status
from runtimes.errors import ArtifactError, BadInputError, RuntimeUnavailable
from runtimes.manifest import QUANTIZED, ArtifactRecord, Manifest, read_manifest
from runtimes.protocol import BatchedEval, BoundRun, Describes, Kernels, SelfTimed
from runtimes.records import to_jsonable

INPUT_SEED = 0
REMEASURE_PAUSE_S = 1.0  # before the 2nd timed window; 2 s before the 3rd, ...


@dataclass(frozen=True)
class CellSpec:
    run_dir: Path
    variant: str
    format: str
    runtime: str
    batch: int
    threads: int | None = None
    min_time_s: float = BenchOptions.min_time_s
    min_iters: int = BenchOptions.min_iters
    warmup: int = BenchOptions.warmup
    max_time_s: float = BenchOptions.max_time_s
    eval_tensors: Path | None = None
    imports: tuple[str, ...] = ()  # modules that register a non-built-in runtime
    attempts: int = BenchOptions.attempts  # timed windows at most, until one is stable

    def argv(self) -> list[str]:
        args = ["--run-dir", str(self.run_dir), "--variant", self.variant, "--format", self.format,
                "--runtime", self.runtime, "--batch", str(self.batch),
                "--min-time", repr(self.min_time_s), "--min-iters", str(self.min_iters),
                "--warmup", str(self.warmup), "--max-time", repr(self.max_time_s)]
        if self.threads is not None:
            args += ["--threads", str(self.threads)]
        if self.eval_tensors is not None:
            args += ["--eval-tensors", str(self.eval_tensors)]
        for module in self.imports:
            args += ["--import", module]
        return args + ["--attempts", str(self.attempts)]


def pick_record(manifest: Manifest, variant: str, fmt: str) -> ArtifactRecord:
    """The record of ``variant`` in format ``fmt``: an eager reference or a deployable artifact."""
    for rec in manifest.records():
        if rec.variant == variant and rec.format == fmt:
            return rec
    raise ArtifactError(f"manifest has no {fmt!r} artifact for variant {variant!r}")


def run_cell(spec: CellSpec) -> Cell:
    """Measure one cell; never raises: failures become ``skipped``/``error`` cells."""
    started = time.perf_counter()
    base = dict(variant=spec.variant, format=spec.format, runtime=spec.runtime,
                device=_device_of(spec.runtime), batch=spec.batch, precision="",
                threads=spec.threads)
    try:
        return _measure(spec, base, started)
    except RuntimeUnavailable as exc:
        return Cell(**base, status=Status.SKIPPED, reason=str(exc),
                    wall_s=time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - a cell records every failure, by contract
        return Cell(**base, status=Status.ERROR, reason=one_line(exc),
                    wall_s=time.perf_counter() - started)


def _device_of(runtime: str) -> str:
    return next((s.device for s in registry.specs() if s.name == runtime), "unknown")


def _measure(spec: CellSpec, base: dict[str, Any], started: float) -> Cell:
    from runtimes import metrics

    for module in spec.imports:
        importlib.import_module(module)
    runtime = registry.get_spec(spec.runtime)
    if spec.batch < 1:
        raise BadInputError(f"batch must be >= 1, got {spec.batch}")
    record = pick_record(read_manifest(spec.run_dir), spec.variant, spec.format)
    base["precision"] = record.precision.value
    if not runtime.runs(record.format):
        raise BadInputError(f"{runtime.name} runs {', '.join(runtime.formats)} files, not {record.format}")
    rt = runtime.create(spec.threads)
    base["device"] = runtime.device
    support = rt.supports(record)
    if not support.ok:
        return Cell(**base, status=Status.SKIPPED, reason=support.reason,
                    wall_s=time.perf_counter() - started)
    rt.load(Path(spec.run_dir), record)
    try:
        x = make_input(record, spec.batch)
        times, warm, out, timing, stable = measure_stably(rt, x, spec)
        check_logits(out, spec.batch, record.num_classes)
        stats = metrics.latency_stats(times)
        latency = LatencyStats(**{k: float(stats[k]) for k in
                                  ("median", "p90", "p99", "mean", "std", "min", "max")},
                               iterations=len(times), warmup=warm)
        top1 = top5 = n_eval = None
        flags: list[str] = [] if stable.stable else [stability.noisy_flag(stable)]
        if spec.eval_tensors is not None:
            # A pathological configuration (FP16 in PyTorch on CPU: ~1 s per image) would need
            # tens of minutes for a full eval set: give it a time budget and say how many it saw.
            limit = max(spec.batch, int(EVAL_BUDGET_S * 1000.0 / max(latency.median, 1e-6)) * spec.batch)
            top1, top5, n_eval, n_total = evaluate(rt.run, spec.eval_tensors, spec.batch, record.num_classes,
                                                   rt.run_all if isinstance(rt, BatchedEval) else None,
                                                   limit=limit)
            if n_eval < n_total:
                flags.append(f"accuracy on {n_eval} of {n_total} eval images only (evenly spaced subset; "
                             f"eval time budget {EVAL_BUDGET_S:.0f} s at this latency)")
        info = {**jsonable_info(rt), "timing": timing}
        # Which kernels ran, for "where INT8 is slower than FP32": read after timing, so it costs no measurement.
        census = rt.kernel_census(x) if isinstance(rt, Kernels) and record.precision in QUANTIZED else None
    finally:
        rt.close()
    return Cell(**base, status=Status.OK, latency_ms=latency,
                throughput=float(metrics.throughput(spec.batch, latency.median)),
                runtime_info=info, top1=top1, top5=top5, eval_images=n_eval, flags=flags,
                wall_s=time.perf_counter() - started, stability=stable, kernels=census)


def timed_window(rt: Any, x: np.ndarray, spec: CellSpec,
                 attempt: int = 1) -> tuple[list[float], int, np.ndarray, str]:
    """One timed window: (per-iteration ms, warm-up runs, last output, which call was timed)."""
    if isinstance(rt, SelfTimed):
        times, out = rt.bench(x, spec.min_time_s * 1000.0, spec.min_iters, spec.warmup)
        return [float(t) for t in times], spec.warmup, out, "runtime's own bench()"
    if isinstance(rt, BoundRun):
        rt.bind(x)
        times, warm, _ = time_runs(_test_noise(lambda _: rt.run_bound(), spec, attempt), x, spec.min_time_s,
                                   spec.min_iters, spec.warmup, spec.max_time_s)
        return times, warm, rt.fetch(), "run_bound() on a bound input (no host<->device copies)"
    times, warm, out = time_runs(_test_noise(rt.run, spec, attempt), x, spec.min_time_s, spec.min_iters,
                                 spec.warmup, spec.max_time_s)
    return times, warm, out, "run() incl. numpy conversion"


def measure_stably(rt: Any, x: np.ndarray,
                   spec: CellSpec) -> tuple[list[float], int, np.ndarray, str, stability.Stability]:
    """Time windows until one is stable, at most ``spec.attempts``; keep the best.

    Between attempts the cell waits a little longer each time, so that a burst of
    load on the machine can pass.
    """
    best = None
    attempt = 0
    for attempt in range(1, spec.attempts + 1):
        if attempt > 1:
            time.sleep(REMEASURE_PAUSE_S * (attempt - 1))
        before = stability.machine_sample()
        times, warm, out, timing = timed_window(rt, x, spec, attempt)
        after = stability.machine_sample()
        verdict = stability.assess(times, stability.other_cores(before, after), attempt, before, after)
        median = float(np.median(times))
        if best is None or stability.better(verdict, median, best[4], float(np.median(best[0]))):
            best = (times, warm, out, timing, verdict)
        if verdict.stable:
            break
    times, warm, out, timing, verdict = best
    return times, warm, out, timing, dataclasses.replace(verdict, attempts=attempt)


def make_input(record: ArtifactRecord, batch: int) -> np.ndarray:
    """A deterministic float32 NCHW batch of the artifact's input shape (same bytes for every runtime)."""
    chw = [int(d) for d in record.input.shape[1:]]
    rng = np.random.default_rng(INPUT_SEED)
    return rng.standard_normal((batch, *chw), dtype=np.float32)


def time_runs(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, min_time_s: float,
              min_iters: int, warmup: int, max_time_s: float) -> tuple[list[float], int, np.ndarray]:
    """(per-iteration ms, warm-up runs done, last output); bounded by ``max_time_s`` overall."""
    t_begin = time.perf_counter()
    warm = 0
    for _ in range(warmup):
        run(x)
        warm += 1
        # A slow cell spends at most a third of its budget warming up.
        if time.perf_counter() - t_begin > max_time_s / 3:
            break
    times: list[float] = []
    t_start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        out = run(x)
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1000.0)
        if t1 - t_start >= min_time_s and len(times) >= min_iters:
            break
        if t1 - t_begin >= max_time_s:
            break
    return times, warm, out


def check_logits(out: Any, batch: int, num_classes: int) -> None:
    shape = tuple(np.shape(out))
    if shape != (batch, num_classes):
        raise ArtifactError(f"runtime returned logits of shape {shape}, expected {(batch, num_classes)}")


def evaluate(run: Callable[[np.ndarray], np.ndarray], path: Path, batch: int,
             num_classes: int, run_all: Callable[[np.ndarray, int], np.ndarray] | None = None,
             limit: int | None = None) -> tuple[float, float | None, int, int]:
    """(top-1, top-5 or None, images evaluated, images in the set); ``limit`` takes an evenly spaced subset."""
    from runtimes import metrics

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"eval tensors not found: {path}")
    with np.load(path) as data:
        if "images" not in data or "labels" not in data:
            raise BadInputError(f"{path} must hold 'images' (float32 NCHW) and 'labels' (int64)")
        images = np.ascontiguousarray(data["images"], dtype=np.float32)
        labels = np.asarray(data["labels"], dtype=np.int64)
    if images.ndim != 4 or len(images) != len(labels) or len(images) == 0:
        raise BadInputError(f"{path}: images {images.shape} and labels {labels.shape} do not match")
    n_total = len(images)
    if limit is not None and limit < n_total:
        # evenly spaced, so a class-sorted set keeps its spread of classes
        pick = np.unique(np.linspace(0, n_total - 1, limit).round().astype(np.int64))
        images, labels = images[pick], labels[pick]
    if run_all is not None:  # e.g. libtorch-cpp: one process for the whole set
        logits = np.asarray(run_all(images, batch), dtype=np.float32)
    else:
        logits = np.concatenate([np.asarray(run(images[i:i + batch]), dtype=np.float32)
                                 for i in range(0, len(images), batch)])
    ks = (1, 5) if num_classes >= 5 else (1,)
    acc = metrics.topk_accuracy(logits, labels, ks=ks)
    return float(acc[1]), (float(acc[5]) if 5 in acc else None), len(images), n_total


def jsonable_info(rt: Any) -> dict[str, Any]:
    info = rt.info() if isinstance(rt, Describes) else {}
    # Runtimes may report versions as objects; the record keeps their text.
    return json.loads(json.dumps(to_jsonable(info), default=str))


# ---------------------------------------------------------------- process entry point

# SHRINKWRAP_TEST_CELL_NOISE=RUNTIME=MS[@ONCE_FILE]: in the first timed window only, every other run
# of that runtime takes MS longer, as if another process took the CPU (for the re-measurement tests).
# With ONCE_FILE, only the first process to find that file absent is disturbed (and creates it).
def _test_noise(run: Callable[[np.ndarray], Any], spec: CellSpec, attempt: int) -> Callable[[np.ndarray], Any]:
    hook = os.environ.get("SHRINKWRAP_TEST_CELL_NOISE")
    hook, _, once = (hook or "").partition("@")
    target, _, ms = hook.rpartition("=")
    if not hook or target not in ("", spec.runtime) or attempt > 1:
        return run
    if once:
        try:
            Path(once).touch(exist_ok=False)
        except FileExistsError:
            return run
    calls = {"n": 0}

    def noisy(x: np.ndarray) -> Any:
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            time.sleep(float(ms) / 1000.0)
        return run(x)

    return noisy


def _test_hooks(runtime: str) -> None:
    crash = os.environ.get("SHRINKWRAP_TEST_CELL_CRASH")
    if crash and crash in ("*", runtime):
        sys.stderr.write("simulated crash (SHRINKWRAP_TEST_CELL_CRASH)\n")
        sys.stderr.flush()
        os._exit(70)
    sleep = os.environ.get("SHRINKWRAP_TEST_CELL_SLEEP")
    if sleep:
        target, _, seconds = sleep.rpartition("=")
        if target in ("", runtime):
            time.sleep(float(seconds))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtimes.bench.cell", description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--variant", required=True)
    p.add_argument("--format", required=True)
    p.add_argument("--runtime", required=True)
    p.add_argument("--batch", required=True, type=int)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--min-time", type=float, default=CellSpec.min_time_s)
    p.add_argument("--min-iters", type=int, default=CellSpec.min_iters)
    p.add_argument("--warmup", type=int, default=CellSpec.warmup)
    p.add_argument("--max-time", type=float, default=CellSpec.max_time_s)
    p.add_argument("--eval-tensors", type=Path, default=None)
    p.add_argument("--import", dest="imports", action="append", default=[])
    p.add_argument("--attempts", type=int, default=CellSpec.attempts)
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    _test_hooks(a.runtime)
    spec = CellSpec(a.run_dir, a.variant, a.format, a.runtime, a.batch, a.threads, a.min_time,
                    a.min_iters, a.warmup, a.max_time, a.eval_tensors, tuple(a.imports), a.attempts)
    return print_one_json_line(lambda: run_cell(spec))


def print_one_json_line(compute: Callable[[], Any]) -> int:
    """Run ``compute`` with stdout sent to stderr, then print its record as the process's one JSON line:
    libraries may print to stdout, and the parent reads exactly one line from it."""
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        record = compute()
    finally:
        sys.stdout.flush()
        os.dup2(real_stdout, 1)
        os.close(real_stdout)
    sys.stdout.write(json.dumps(to_jsonable(record)) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
