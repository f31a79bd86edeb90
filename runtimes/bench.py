"""The benchmark sweep: every artifact × runtime × batch, one subprocess per cell.

Each cell runs ``python -m runtimes.cell`` under a timeout; a hang, a crash or
a runtime that cannot run here becomes an ``error``/``skipped`` cell with a
reason and the sweep goes on, so ``results.json`` never has silent gaps.
Pathological cells are flagged from the data (see :func:`flag_cells`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import runtimes
from runtimes.artifact import ArtifactRecord, from_jsonable, require_verified
from runtimes.base import RuntimeName, get_runtime, parse_runtime
from runtimes.cell import (DEFAULT_MAX_TIME_S, EAGER_RUNTIMES, RUNTIME_FORMAT, CellSpec,
                           one_line, runtime_device)
from runtimes.environment import collect_environment
from runtimes.errors import BadInputError, RuntimeUnavailable
from runtimes.results import (RESULTS_SCHEMA_VERSION, Cell, Results, SizeRecord, Status,
                              write_results)

Progress = Callable[[int, int, Cell], None]

# On tiny inputs PyTorch's per-op overhead alone makes eager FP32 >10x slower than ORT; a
# 20x gap (FP16 in PyTorch on CPU is ~45x at 224 px) marks a configuration, not overhead.
PATHOLOGICAL_FACTOR = 20.0
# Level 19 is what a deployment would ship; it costs ~20 s per 45 MB on one core, once per file.
# Level 9 is within ~5% of level 19's size on these files at ~20x the speed.
ZSTD_LEVEL = 9
IO_BINDING_NOTE = ("ort-cuda is timed with IO binding: input and output stay on the GPU, so "
                   "host<->device copies are excluded")
_PYTORCH_CPU = {RuntimeName.EAGER.value, RuntimeName.TORCHSCRIPT.value, RuntimeName.LIBTORCH_CPP.value}
FP16_CPU_FLAG = "FP16 in PyTorch on CPU has no fast kernels"


def bench(run_dir: Path, runtimes: Sequence[RuntimeName | str] | None = None,
          batches: Iterable[int] = (1, 8), threads: int | None = None, min_time_s: float = 1.0,
          min_iters: int = 10, warmup: int = 3, timeout_s: float = 300,
          eval_tensors: Path | None = None, progress: Progress | None = None,
          variants: Sequence[str] | None = None, command: str = "",
          max_time_s: float = DEFAULT_MAX_TIME_S, max_accuracy_drop: float = 1.0) -> Results:
    """Run the sweep over ``run_dir`` and write ``results.json`` + ``results.csv`` there."""
    run_dir = Path(run_dir)
    names = _parse_runtimes(runtimes)
    batches = _check_options(list(batches), threads, min_time_s, min_iters, warmup, timeout_s,
                             max_time_s, eval_tensors)
    manifest = require_verified(run_dir)
    chosen = _check_variants(manifest.variants() + [r.variant for r in manifest.references], variants)

    plan: list[tuple[ArtifactRecord, RuntimeName]] = []
    for variant in dict.fromkeys([*manifest.variants(), *(r.variant for r in manifest.references)]):
        if variant not in chosen:
            continue
        for ref in manifest.references:
            if ref.variant == variant:
                plan += [(ref, n) for n in names if n in EAGER_RUNTIMES]
        for rec in manifest.artifacts:
            if rec.variant == variant:
                plan += [(rec, n) for n in names if n not in EAGER_RUNTIMES]

    env = collect_environment(threads)
    child_env = _child_env(threads)
    sizes: dict[str, SizeRecord] = {}
    supports: dict[tuple[str, str, str], Cell | None] = {}
    total = len(plan) * len(batches)
    cells: list[Cell] = []
    for rec, name in plan:
        size = sizes.get(rec.path) or sizes.setdefault(rec.path, size_record(run_dir, rec))
        key = (rec.variant, rec.format.value, name.value)
        if key not in supports:
            supports[key] = _precheck(rec, name, threads)
        for batch in batches:
            pre = supports[key]
            if pre is not None:
                cell = dataclasses.replace(pre, batch=batch)
            else:
                # Accuracy does not depend on the batch size: measure it once, at the largest.
                evaluate = eval_tensors is not None and batch == max(batches)
                spec = CellSpec(run_dir.resolve(), rec.variant, rec.format.value, name.value, batch,
                                threads, min_time_s, min_iters, warmup, max_time_s,
                                Path(eval_tensors).resolve() if evaluate else None)
                cell = spawn_cell(spec, timeout_s, child_env, rec.precision.value)
            cell = dataclasses.replace(cell, size=size)
            cells.append(cell)
            if progress is not None:
                progress(len(cells), total, cell)

    results = Results(
        schema_version=RESULTS_SCHEMA_VERSION,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        run_dir=str(run_dir), model=manifest.model, weights=manifest.weights, environment=env,
        command=command,
        settings={"batches": batches, "threads": threads, "runtimes": [n.value for n in names],
                  "min_time_s": min_time_s, "min_iters": min_iters, "warmup": warmup,
                  "max_time_s": max_time_s, "timeout_s": timeout_s,
                  "eval_tensors": str(eval_tensors) if eval_tensors else None,
                  "variants": list(chosen), "io_binding": IO_BINDING_NOTE,
                  "max_accuracy_drop": max_accuracy_drop},
        cells=flag_cells(share_accuracy(cells)),
        notes=[f"compressed size: zstd level {ZSTD_LEVEL} of the whole artifact file",
               "accuracy: the last eval batch is run as is (smaller), not padded",
               f"accuracy: measured once per artifact and runtime, at batch {max(batches)}; "
               "the other batch rows of that pair show the same figures"],
    )
    write_results(run_dir, results)
    return results


# ---------------------------------------------------------------- one cell

def spawn_cell(spec: CellSpec, timeout_s: float, env: dict[str, str], precision: str = "") -> Cell:
    """Run one cell in a fresh interpreter; a timeout or crash becomes an ``error`` cell."""
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "runtimes.cell", *spec.argv()]
    # Own session, so a timeout kills the cell and anything it spawned (libtorch-cpp's binary).
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        return _failed(spec, precision, f"timed out after {timeout_s:g} s", started)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if proc.returncode == 0 and lines:
        try:
            return from_jsonable(Cell, json.loads(lines[-1]))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return _failed(spec, precision, f"unreadable cell output: {one_line(exc)}", started)
    err_lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    last = err_lines[-1] if err_lines else "no output"
    return _failed(spec, precision, f"cell process exited with status {proc.returncode}: {last}",
                   started)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it finished between the timeout and the kill


def _failed(spec: CellSpec, precision: str, reason: str, started: float) -> Cell:
    return Cell(spec.variant, spec.format, spec.runtime, runtime_device(spec.runtime), spec.batch,
                precision, Status.ERROR, reason, threads=spec.threads,
                wall_s=time.perf_counter() - started)


def _precheck(rec: ArtifactRecord, name: RuntimeName, threads: int | None) -> Cell | None:
    """A ``skipped`` cell when the runtime cannot run this record here (no spawn needed), else None."""
    base = dict(variant=rec.variant, format=rec.format.value, runtime=name.value,
                device=runtime_device(name.value), batch=0, precision=rec.precision.value,
                threads=threads)
    want = RUNTIME_FORMAT[name]
    if rec.format.value != want:
        return Cell(**base, status=Status.SKIPPED,
                    reason=f"{name.value} runs {want} files, not {rec.format.value}")
    try:
        support = get_runtime(name, threads).supports(rec)
    except RuntimeUnavailable as exc:
        return Cell(**base, status=Status.SKIPPED, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded as the cell's error, the sweep goes on
        return Cell(**base, status=Status.ERROR, reason=one_line(exc))
    return None if support.ok else Cell(**base, status=Status.SKIPPED, reason=support.reason)


# ---------------------------------------------------------------- sizes and flags

def share_accuracy(cells: list[Cell]) -> list[Cell]:
    """Copy the accuracy measured at one batch size to the other ok rows of the same artifact × runtime."""
    measured = {(c.variant, c.format, c.runtime): c for c in cells if c.top1 is not None}
    out = []
    for c in cells:
        src = measured.get((c.variant, c.format, c.runtime))
        if src is not None and c.top1 is None and c.status == Status.OK:
            c = dataclasses.replace(c, top1=src.top1, top5=src.top5, eval_images=src.eval_images)
        out.append(c)
    return out

def zstd_size(data: bytes) -> int:
    """Bytes after general-purpose compression: what unstructured pruning saves on disk and on the wire."""
    import zstandard

    return len(zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1).compress(data))


def size_record(run_dir: Path, rec: ArtifactRecord) -> SizeRecord:
    data = (Path(run_dir) / rec.path).read_bytes()
    return SizeRecord(bytes=len(data), compressed_bytes=zstd_size(data),
                      compression=f"zstd-{ZSTD_LEVEL}",
                      params=rec.params, nonzero_params=rec.nonzero_params)


def flag_cells(cells: list[Cell], factor: float = PATHOLOGICAL_FACTOR) -> list[Cell]:
    """Flag ok cells that are no deployment option.

    Data-driven: a cell more than ``factor`` times slower than the fastest ok cell
    of the same variant, batch and device. By rule: FP16 in a PyTorch runtime on CPU.
    """
    fastest: dict[tuple[str, int, str], Cell] = {}
    for c in cells:
        key = (c.variant, c.batch, c.device)
        if c.ok and c.median is not None and (key not in fastest or c.median < fastest[key].median):
            fastest[key] = c
    out = []
    for c in cells:
        flags = list(c.flags)
        if c.ok and c.median is not None:
            best = fastest[(c.variant, c.batch, c.device)]
            if best.median > 0 and c.median > factor * best.median:
                flags.append(f"pathological: {c.median / best.median:.0f}x slower than "
                             f"{best.runtime} for this variant; not a deployment option")
            if c.precision == "fp16" and c.device == "cpu" and c.runtime in _PYTORCH_CPU:
                flags.append(FP16_CPU_FLAG)
        out.append(dataclasses.replace(c, flags=flags))
    return out


# ---------------------------------------------------------------- validation

def _parse_runtimes(names: Sequence[RuntimeName | str] | None) -> list[RuntimeName]:
    if names is None:
        return list(RuntimeName)
    parsed = [n if isinstance(n, RuntimeName) else parse_runtime(n) for n in names]
    if not parsed:
        raise BadInputError("no runtimes given")
    return list(dict.fromkeys(parsed))


def _check_options(batches: list[int], threads: int | None, min_time_s: float, min_iters: int,
                   warmup: int, timeout_s: float, max_time_s: float,
                   eval_tensors: Path | None) -> list[int]:
    if not batches or any(not isinstance(b, int) or b < 1 for b in batches):
        raise BadInputError(f"batch sizes must be integers >= 1, got {batches}")
    if threads is not None and threads < 1:
        raise BadInputError(f"threads must be >= 1, got {threads}")
    if min_time_s < 0 or min_iters < 1 or warmup < 0:
        raise BadInputError("min time must be >= 0, min iterations >= 1 and warm-up >= 0")
    if timeout_s <= 0 or max_time_s <= 0:
        raise BadInputError("timeout and max time must be > 0 seconds")
    if eval_tensors is not None and not Path(eval_tensors).is_file():
        raise BadInputError(f"eval tensors not found: {eval_tensors}")
    return list(dict.fromkeys(batches))


def _check_variants(present: list[str], wanted: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(present))
    if wanted is None:
        return present
    unknown = [v for v in wanted if v not in present]
    if unknown:
        raise BadInputError(f"variant(s) {', '.join(unknown)} not in this run; it has: "
                            f"{', '.join(present)}")
    return list(dict.fromkeys(wanted))


def _child_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    # The cell must import this very ``runtimes`` package, installed or not.
    root = str(Path(runtimes.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env
