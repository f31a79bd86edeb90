"""One cell or comparison in a process of its own, and the environment that process gets.

Shared by the local sweep (:mod:`runtimes.bench.runner`) and the fanned-out one
(:mod:`runtimes.bench.fanout`), whose Ray tasks start the very same cell processes on their nodes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TypeVar

import runtimes
from runtimes import registry
from runtimes.bench import grid
from runtimes.bench.cell import CellSpec
from runtimes.bench.compare import CompareSpec
from runtimes.bench.launch import Launcher, TimedOut
from runtimes.bench.results import Cell, Comparison, Status
from runtimes.manifest import Manifest
from runtimes.records import from_jsonable

T = TypeVar("T")


# ---------------------------------------------------------------- one cell

def spawn_record(module: str, argv: list[str], cls: type[T], timeout_s: float, launch: Launcher) -> T | str:
    """Run ``python -m module argv`` in a process of its own and read the typed JSON record it prints
    last; a timeout, a crash or unreadable output is returned as the reason (a string)."""
    try:
        done = launch.run(module, argv, timeout_s)
    except TimedOut:
        return f"timed out after {timeout_s:g} s"
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    if done.returncode == 0 and lines:
        try:
            return from_jsonable(cls, json.loads(lines[-1]))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return f"unreadable output: {grid.one_line(exc)}"
    err_lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
    last = err_lines[-1] if err_lines else "no output"
    return f"cell process exited with status {done.returncode}: {last}"


def spawn_cell(spec: CellSpec, timeout_s: float, launch: Launcher, entry: grid.GridEntry) -> Cell:
    """Run one cell in a process of its own; a timeout or crash becomes an ``error`` cell."""
    started = time.perf_counter()
    got = spawn_record("runtimes.bench.cell", spec.argv(), Cell, timeout_s, launch)
    return got if isinstance(got, Cell) else failed_cell(entry, spec, got, started)


def spawn_comparison(spec: CompareSpec, timeout_s: float, launch: Launcher) -> Comparison:
    got = spawn_record("runtimes.bench.compare", spec.argv(), Comparison, timeout_s, launch)
    if isinstance(got, Comparison):
        return got
    device = registry.get_spec(spec.runtime).device
    return Comparison(spec.runtime, device, spec.batch, spec.a[0], spec.a[1], spec.b[0], spec.b[1],
                      status="error", reason=got, b_runtime=spec.b_runtime)


def precheck_comparison(spec: CompareSpec, manifest: Manifest) -> Comparison | None:
    """A ``skipped`` comparison when a runtime cannot run its side's record here (no spawn)."""
    for name, (variant, fmt) in zip(spec.runtimes, (spec.a, spec.b)):
        rt = registry.get_spec(name)
        rec = next(r for r in manifest.records() if r.variant == variant and r.format == fmt)
        support = rt.create(spec.threads).supports(rec)
        if not support.ok:
            return Comparison(spec.runtime, rt.device, spec.batch, spec.a[0], spec.a[1], spec.b[0], spec.b[1],
                              status="skipped", reason=f"{name}: {support.reason}", b_runtime=spec.b_runtime)
    return None


def failed_cell(entry: grid.GridEntry, spec: CellSpec, reason: str, started: float) -> Cell:
    return Cell(**grid.base_cell(entry, spec.batch, spec.threads), status=Status.ERROR, reason=reason,
                wall_s=time.perf_counter() - started)


def child_env(threads: int | None) -> dict[str, str]:
    from runtimes.openmp import cell_environment

    env = cell_environment(dict(os.environ))  # cells wait as a deployment's threads would
    # The cell must import this very ``runtimes`` package, installed or not.
    root = str(Path(runtimes.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env
