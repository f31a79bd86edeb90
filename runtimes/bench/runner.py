"""The benchmark sweep: every artifact × runtime × batch of the grid, one subprocess per cell.

Each cell runs ``python -m runtimes.bench.cell`` in a process of its own, started by
:mod:`runtimes.bench.launch` (forked from a server that imported torch once, when the
sweep's runtimes declare it), under a timeout; a hang, a crash
or a runtime that cannot run here becomes an ``error``/``skipped`` cell with a
reason and the sweep goes on, so ``results.json`` never has silent gaps.
Pathological cells are flagged from the data (:mod:`runtimes.bench.flags`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Callable

from runtimes import registry
from runtimes.bench import grid, stability
from runtimes.bench.cell import CellSpec
from runtimes.bench.compare import CompareSpec, comparable
from runtimes.bench.environment import collect_environment
from runtimes.bench.flags import flag_cells, share_accuracy
from runtimes.bench.launch import Launcher, launcher
from runtimes.bench.options import BenchOptions
from runtimes.bench.results import (RESULTS_SCHEMA_VERSION, BenchSettings, Cell, Results, SizeRecord,
                                    write_results)
from runtimes.bench.sizes import ZSTD_LEVEL, size_record
from runtimes.bench.spawn import child_env, precheck_comparison, spawn_cell, spawn_comparison
from runtimes.errors import BadInputError
from runtimes.manifest import Manifest, require_verified
from runtimes.protocol import CPU, BoundRun, RuntimeSpec

Progress = Callable[[int, int, Cell], None]



def timing_note(specs) -> str:
    """How device-resident runtimes are timed, from their declared capabilities."""
    bound = [s.name for s in specs if s.device != CPU and BoundRun.__name__ in s.capabilities]
    if not bound:
        return "no runtime on an accelerator was measured"
    return (f"{', '.join(bound)} {'is' if len(bound) == 1 else 'are'} timed on bound, device-resident inputs "
            "(IO binding for ONNX Runtime): input and output stay on the device, so host<->device copies "
            "are excluded")


def bench(run_dir: Path, opts: BenchOptions = BenchOptions(), eval_tensors: Path | None = None,
          progress: Progress | None = None, command: str = "") -> Results:
    """Run the sweep over ``run_dir`` and write ``results.json`` + ``results.csv`` there."""
    run_dir = Path(run_dir)
    if eval_tensors is not None and not Path(eval_tensors).is_file():
        raise BadInputError(f"eval tensors not found: {eval_tensors}")
    specs = [registry.get_spec(n) for n in opts.runtime_names()]
    manifest = require_verified(run_dir)
    chosen = grid.choose_variants(manifest, opts.variants)
    entries = grid.plan(manifest, specs, chosen)
    comparisons = plan_comparisons(run_dir, manifest, specs, opts)
    batches = list(opts.batches)

    env = collect_environment(opts.threads)
    # One preloading server for the whole sweep (runtimes.bench.launch): each cell is still a process of its own.
    preload = tuple(dict.fromkeys(m for s in specs for m in s.preload)) if opts.fork_cells else ()
    budget = RetryBudget(opts.retry_budget_s)
    total = len(entries) * len(batches) + len(comparisons)
    if opts.executor.distributed:
        from runtimes.bench.fanout import measure_on_cluster

        def cell_spec(entry: grid.GridEntry, batch: int) -> CellSpec:
            return CellSpec(run_dir.resolve(), entry.record.variant, entry.record.format, entry.runtime.name,
                            batch, opts.threads, opts.min_time_s, opts.min_iters, opts.warmup, opts.max_time_s,
                            None, imports=_plugin_modules(entry), attempts=opts.attempts)

        cells, compared = measure_on_cluster(run_dir, manifest, entries, batches, comparisons, cell_spec,
                                             opts.timeout_s, eval_tensors, opts.executor, progress)
        launched = fanout_note(opts)
    else:
        with launcher(child_env(opts.threads), preload) as launch:
            cells = measure_cells(run_dir, entries, batches, opts, eval_tensors, launch, progress,
                                  total=total, budget=budget)
            if opts.remeasure:
                cells = remeasure_noisy(run_dir, cells, entries, batches, launch, opts, budget)
            compared = []
            for cspec in comparisons:
                skipped = precheck_comparison(cspec, manifest)
                compared.append(skipped or spawn_comparison(cspec, opts.timeout_s, launch))
                if progress is not None:
                    progress(len(cells) + len(compared), total, compared[-1])
        launched = launch_note(preload)

    results = Results(
        schema_version=RESULTS_SCHEMA_VERSION,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        run_dir=str(run_dir), model=manifest.model, weights=manifest.weights, environment=env,
        command=command,
        settings=BenchSettings(
            batches=batches, threads=opts.threads, runtimes=[s.name for s in specs],
            min_time_s=opts.min_time_s, min_iters=opts.min_iters, warmup=opts.warmup, attempts=opts.attempts,
            remeasure=opts.remeasure, max_time_s=opts.max_time_s, timeout_s=opts.timeout_s,
            eval_tensors=str(eval_tensors) if eval_tensors else None, variants=list(chosen),
            io_binding=timing_note(registry.specs()), max_accuracy_drop=opts.max_accuracy_drop,
            retry_budget_s=opts.retry_budget_s, retry_spent_s=round(budget.spent_s, 1),
            one_window_cells=budget.one_window, not_remeasured=budget.not_remeasured,
            executor=opts.executor.kind.value, targets=list(opts.executor.targets)),
        cells=per_target(cells, lambda group: flag_cells(share_accuracy(group))), comparisons=compared,
        notes=[f"compressed size: zstd level {ZSTD_LEVEL} of the whole artifact file",
               "accuracy: the last eval batch is run as is (smaller), not padded",
               f"accuracy: measured once per artifact and runtime, at batch {max(batches)}; "
               "the other batch rows of that pair show the same figures",
               launched],
    )
    write_results(run_dir, results)
    return results


@dataclasses.dataclass
class RetryBudget:
    """What the sweep may still spend timing unstable cells again (``BenchOptions.retry_budget_s``)."""

    limit_s: float
    spent_s: float = 0.0
    one_window: int = 0
    not_remeasured: int = 0

    @property
    def left(self) -> bool:
        return self.spent_s < self.limit_s

    def charge_windows(self, cell: Cell) -> None:
        """A cell's windows after its first, as their share of its wall time (the windows dominate it)."""
        if cell.ok and cell.stability is not None and cell.stability.attempts > 1:
            self.spent_s += cell.wall_s * (cell.stability.attempts - 1) / cell.stability.attempts


def measure_cells(run_dir: Path, entries: list[grid.GridEntry], batches: list[int], opts: BenchOptions,
                  eval_tensors: Path | None, launch: Launcher, progress: Progress | None,
                  total: int, budget: RetryBudget | None = None) -> list[Cell]:
    """One cell per grid entry and batch, in order; a precheck's ``skipped`` cell spawns nothing. Once the
    retry budget is spent, each cell gets one timed window."""
    budget = budget if budget is not None else RetryBudget(opts.retry_budget_s)
    sizes: dict[str, SizeRecord] = {}
    cells: list[Cell] = []
    for entry in entries:
        rec = entry.record
        size = sizes.get(rec.path) or sizes.setdefault(rec.path, size_record(run_dir, rec))
        pre = grid.precheck(entry, opts.threads)
        for batch in batches:
            if pre is not None:
                cell = dataclasses.replace(pre, batch=batch)
            else:
                # Accuracy does not depend on the batch size: measure it once, at the largest.
                evaluate = eval_tensors is not None and batch == max(batches)
                attempts = opts.attempts if budget.left else 1
                budget.one_window += attempts < opts.attempts
                spec = CellSpec(run_dir.resolve(), rec.variant, rec.format, entry.runtime.name, batch,
                                opts.threads, opts.min_time_s, opts.min_iters, opts.warmup,
                                opts.max_time_s, Path(eval_tensors).resolve() if evaluate else None,
                                imports=_plugin_modules(entry), attempts=attempts)
                cell = spawn_cell(spec, opts.timeout_s, launch, entry)
                budget.charge_windows(cell)
            cell = dataclasses.replace(cell, size=size)
            cells.append(cell)
            if progress is not None:
                progress(len(cells), total, cell)
    return cells


def per_target(cells: list[Cell], fn: Callable[[list[Cell]], list[Cell]]) -> list[Cell]:
    """``fn`` applied to each deployment target's cells on their own (flags compare cells of one machine only),
    in the original order."""
    groups: dict[str | None, list[int]] = {}
    for i, c in enumerate(cells):
        groups.setdefault(c.target, []).append(i)
    out: list[Cell] = list(cells)
    for idx in groups.values():
        for i, c in zip(idx, fn([cells[i] for i in idx])):
            out[i] = c
    return out


def fanout_note(opts: BenchOptions) -> str:
    where = (f"on the Ray nodes of each target ({', '.join(opts.executor.targets)})" if opts.executor.targets
             else "on any Ray node")
    return (f"cell processes: each started by a Ray task {where}, from a verified copy of its artifact; accuracy "
            f"over the whole eval set in shards of whole batches on the same target; no fresh-process "
            f"re-measure of noisy cells (each cell still times up to {opts.attempts} windows)")


def launch_note(preload: tuple[str, ...]) -> str:
    if not preload:
        return "cell processes: each a fresh Python interpreter"
    return (f"cell processes: each forked from one server that had imported {', '.join(preload)} and run "
            "nothing else (runtimes.bench.launch)")


def remeasure_noisy(run_dir: Path, cells: list[Cell], entries: list[grid.GridEntry], batches: list[int],
                    launch: Launcher, opts: BenchOptions, budget: RetryBudget | None = None) -> list[Cell]:
    """Give every cell still unstable after its own timed windows one more fresh process, now,
    minutes after the first: a burst of load rarely lasts that long. The better of the two
    (a stable one, else the faster) is kept, and it says how many windows it took in all.
    Once the retry budget is spent, the rest keep their noisy flag (and ``budget`` counts them)."""
    budget = budget if budget is not None else RetryBudget(opts.retry_budget_s)
    out = list(cells)
    for i, cell in enumerate(cells):
        if not cell.ok or cell.stable:
            continue
        if not budget.left:
            budget.not_remeasured += 1
            continue
        entry = entries[i // len(batches)]
        spec = CellSpec(run_dir.resolve(), cell.variant, cell.format, cell.runtime, cell.batch, opts.threads,
                        opts.min_time_s, opts.min_iters, opts.warmup, opts.max_time_s, None,
                        imports=_plugin_modules(entry), attempts=opts.attempts)
        again = spawn_cell(spec, opts.timeout_s, launch, entry)
        budget.spent_s += again.wall_s
        if not again.ok or again.stability is None:
            continue
        keep = again if stability.better(again.stability, again.median, cell.stability, cell.median) else cell
        verdict = dataclasses.replace(keep.stability, attempts=cell.stability.attempts + again.stability.attempts)
        # Accuracy (and its flags) came from the first process; it does not depend on the timing.
        flags = [f for f in cell.flags if not f.startswith(stability.NOISY)]
        if not verdict.stable:
            flags.append(stability.noisy_flag(verdict))
        out[i] = dataclasses.replace(keep, stability=verdict, flags=flags, top1=cell.top1, top5=cell.top5,
                                     eval_images=cell.eval_images, size=cell.size, wall_s=cell.wall_s + again.wall_s)
    return out


def _plugin_modules(entry: grid.GridEntry) -> tuple[str, ...]:
    """The module a non-built-in runtime was registered from, for the cell process to import."""
    module = entry.runtime.cls.__module__
    return () if module in registry.BUILTIN_MODULES else (module,)


def plan_comparisons(run_dir: Path, manifest: Manifest, specs: list[RuntimeSpec],
                     opts: BenchOptions) -> list[CompareSpec]:
    """The interleaved comparisons, at the smallest batch:

    * one per requested variant pair (a, b) and runtime that can run both, in the same format;
    * one per variant of ``opts.compare_across`` and pair of runtimes on one device that run its format:
      the format's reference runtime (``ort-cpu`` for ONNX) against each other one (``openvino``).
    """
    out = []
    batch = min(opts.batches)

    def spec(runtime: str, a: tuple[str, str], b: tuple[str, str], b_runtime: str | None = None) -> CompareSpec:
        return CompareSpec(run_dir.resolve(), runtime, batch, a, b, opts.threads, opts.min_time_s,
                           opts.min_iters, opts.warmup, b_runtime)

    for a, b in opts.compare:
        for rt in specs:
            if not comparable(rt):
                continue
            for fmt in rt.formats:
                have = {r.variant for r in manifest.records() if r.format == fmt}
                if a in have and b in have:
                    out.append(spec(rt.name, (a, fmt), (b, fmt)))
                    break
    names = {s.name for s in specs}
    for variant in opts.compare_across:
        for rec in manifest.records():
            if rec.variant != variant:
                continue
            ref = next((s for s in registry.specs() if rec.format in s.reference_for), None)
            if ref is None or ref.name not in names or not comparable(ref):
                continue
            for other in specs:
                if other.name != ref.name and other.runs(rec.format) and other.device == ref.device \
                        and comparable(other):
                    out.append(spec(ref.name, (variant, rec.format), (variant, rec.format), other.name))
    return out


