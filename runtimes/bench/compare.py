"""Interleaved A/B comparisons: two artifacts in one runtime, or one artifact in two runtimes, in one
process, alternating runs.

    python -m runtimes.bench.compare --run-dir DIR --runtime R --batch N \
        --a VARIANT:FORMAT --b VARIANT:FORMAT [--b-runtime R2] [--threads T] [--min-time S] [--min-iters K] \
        [--warmup W]

With ``--b-runtime`` side B runs in another runtime (``openvino`` against ``ort-cpu`` on the same
``.onnx``): each runtime is told another framework shares the process
(:meth:`~runtimes.protocol.Interleaves.share_threads` ``with_others``), so that neither one's idle
threads spin on the cores the other is timed on.

prints one JSON :class:`Comparison` as the last line of stdout. Both artifacts
are loaded and warmed up, then timed in rounds: A, B, B, A, A, B, ... (the
order alternates so neither always runs first). Each round gives one ratio
``time(A) / time(B)``; a burst of load that slows a round slows both halves of
it, so the median of the per-round ratios is what noise cannot bias, where the
ratio of two cells measured minutes apart is not. The run-to-run spread of the
ratios (10th to 90th percentile) is recorded with it.

Sequential cells still give every artifact's own latency; comparisons give the
speed-ups the report states.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes import registry
from runtimes.bench.cell import check_logits, make_input, pick_record, print_one_json_line
from runtimes.bench.grid import one_line
from runtimes.bench.options import BenchOptions
from runtimes.bench.results import Comparison
from runtimes.bench.stability import assess, machine_sample, other_cores
from runtimes.errors import BadInputError, RuntimeUnavailable
from runtimes.manifest import read_manifest
from runtimes.protocol import BoundRun, Interleaves


@dataclass(frozen=True)
class CompareSpec:
    run_dir: Path
    runtime: str
    batch: int
    a: tuple[str, str]  # (variant, format)
    b: tuple[str, str]
    threads: int | None = None
    min_time_s: float = BenchOptions.min_time_s
    min_iters: int = BenchOptions.min_iters
    warmup: int = BenchOptions.warmup
    b_runtime: str | None = None  # side B's runtime when it is not ``runtime``

    def argv(self) -> list[str]:
        args = ["--run-dir", str(self.run_dir), "--runtime", self.runtime, "--batch", str(self.batch),
                "--a", ":".join(self.a), "--b", ":".join(self.b), "--min-time", repr(self.min_time_s),
                "--min-iters", str(self.min_iters), "--warmup", str(self.warmup)]
        args += ["--b-runtime", self.b_runtime] if self.b_runtime else []
        return args + (["--threads", str(self.threads)] if self.threads is not None else [])

    @property
    def runtimes(self) -> tuple[str, str]:
        return self.runtime, self.b_runtime or self.runtime


def comparable(spec) -> bool:
    """Interleaving needs two artifacts bound in one process, sharing one thread pool."""
    return all(p.__name__ in spec.capabilities for p in (BoundRun, Interleaves))


def _base(spec: CompareSpec) -> dict:
    device = next((s.device for s in registry.specs() if s.name == spec.runtime), "unknown")
    return dict(runtime=spec.runtime, device=device, batch=spec.batch, a=spec.a[0], a_format=spec.a[1],
                b=spec.b[0], b_format=spec.b[1], b_runtime=spec.b_runtime)


def run_comparison(spec: CompareSpec) -> Comparison:
    """Measure one comparison; never raises: failures become ``skipped``/``error`` records."""
    try:
        return _measure(spec)
    except RuntimeUnavailable as exc:
        return Comparison(**_base(spec), status="skipped", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        return Comparison(**_base(spec), status="error", reason=one_line(exc))


def _measure(spec: CompareSpec) -> Comparison:
    sides = [registry.get_spec(name) for name in spec.runtimes]
    for runtime in sides:
        if not comparable(runtime):
            return Comparison(**_base(spec), status="skipped",
                              reason=f"{runtime.name} cannot interleave two artifacts in one process")
    manifest = read_manifest(spec.run_dir)
    records = [pick_record(manifest, *side) for side in (spec.a, spec.b)]
    across = sides[0].name != sides[1].name
    for runtime in dict.fromkeys(s.cls for s in sides):
        runtime.share_threads(spec.threads, with_others=across)
    loaded = []
    try:
        for runtime, rec in zip(sides, records):
            if not runtime.runs(rec.format):
                raise BadInputError(f"{runtime.name} does not run {rec.format} files")
            rt = runtime.create(spec.threads)
            support = rt.supports(rec)
            if not support.ok:
                return Comparison(**_base(spec), status="skipped", reason=support.reason)
            rt.load(Path(spec.run_dir), rec)
            loaded.append(rt)
        for rt, rec in zip(loaded, records):
            rt.bind(make_input(rec, spec.batch))
            for _ in range(max(1, spec.warmup)):
                rt.run_bound()
            check_logits(rt.fetch(), spec.batch, rec.num_classes)
        before = machine_sample()
        times: list[list[float]] = [[], []]
        t_start = time.perf_counter()
        rounds = 0
        while True:
            order = (0, 1) if rounds % 2 == 0 else (1, 0)
            for i in order:
                t0 = time.perf_counter()
                loaded[i].run_bound()
                times[i].append((time.perf_counter() - t0) * 1000.0)
            rounds += 1
            if rounds >= spec.min_iters and time.perf_counter() - t_start >= 2 * spec.min_time_s:
                break
        after = machine_sample()
    finally:
        for rt in loaded:
            rt.close()
    a, b = (np.asarray(t) for t in times)
    ratios = a / b
    cores = other_cores(before, after)
    stable = assess(a, cores).stable and assess(b, cores).stable
    p10, p50, p90 = (float(v) for v in np.percentile(ratios, [10, 50, 90]))
    return Comparison(**_base(spec), status="ok", ratio=p50, ratio_p10=p10, ratio_p90=p90,
                      a_ms=float(np.median(a)), b_ms=float(np.median(b)), rounds=rounds, other_cores=cores,
                      stable=stable)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtimes.bench.compare", description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--runtime", required=True)
    p.add_argument("--batch", required=True, type=int)
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--b-runtime", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--min-time", type=float, default=CompareSpec.min_time_s)
    p.add_argument("--min-iters", type=int, default=CompareSpec.min_iters)
    p.add_argument("--warmup", type=int, default=CompareSpec.warmup)
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    spec = CompareSpec(a.run_dir, a.runtime, a.batch, tuple(a.a.split(":", 1)), tuple(a.b.split(":", 1)),
                       a.threads, a.min_time, a.min_iters, a.warmup, a.b_runtime)
    return print_one_json_line(lambda: run_comparison(spec))


if __name__ == "__main__":
    sys.exit(main())
