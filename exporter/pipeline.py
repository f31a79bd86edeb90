"""``shrinkwrap run`` as a library function: export → parity → bench → report.

A parity failure does not stop the pipeline: the artifacts are still measured
and reported (the report shows the failure), then :class:`ParityError` is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from exporter.export import ExportOptions, check_output_dir, export
from exporter.evaluation import eval_tensors_file
from exporter.inputs import load_inputs
from exporter.options import ParityOptions
from exporter.parity_gate import peer_failures, require_parity, run_parity
from exporter.progress import SILENT, Reporter
from exporter.report import render_report
from exporter.report.context import load_context
from exporter.report.recommend import Recommendation, recommend
from exporter.variants import default_comparisons, default_runtime_comparisons, default_variants
from runtimes.bench.options import BenchOptions
from runtimes.bench.results import Results
from runtimes.bench.runner import bench
from runtimes.manifest import Manifest
from runtimes.parity import ParityResult


def _run_defaults() -> ExportOptions:
    return ExportOptions(variants=default_variants(with_peers=True))


@dataclass(frozen=True)
class RunOptions:
    export: ExportOptions = field(default_factory=_run_defaults)
    parity: ParityOptions = ParityOptions()
    bench: BenchOptions = field(default_factory=lambda: BenchOptions(compare=default_comparisons(),
                                                                        compare_across=default_runtime_comparisons()))


@dataclass
class RunOutcome:
    manifest: Manifest
    parity: list[ParityResult]
    results: Results
    report: Path
    recommendations: list[Recommendation]  # what the report's Recommendation section says, as records


def run(opts: RunOptions, reporter: Reporter = SILENT,
        on_parity: Callable[[list[ParityResult]], None] | None = None) -> RunOutcome:
    """Export, check parity, benchmark and report into ``opts.export.out``.

    ``on_parity`` sees the parity results as soon as they exist (the CLI prints them).
    Raises :class:`~runtimes.errors.ParityError` at the end when an artifact failed parity.
    """
    out = Path(opts.export.out)
    e = opts.export
    check_output_dir(out, e.force)  # before minutes of loading and building
    if opts.bench.executor.distributed:
        from runtimes.executor.ray_cluster import preflight

        preflight(opts.bench.executor)  # an unreachable cluster or a target no node carries: before the export
    inputs = load_inputs(e.model, e.preprocess, e.calibration, e.evaluation, reporter)
    reporter.say("[1/4] export")
    manifest = export(e, reporter, inputs)
    reporter.say("[2/4] parity")
    parity = run_parity(out, opts.parity, threads=opts.bench.threads, reporter=reporter)
    if on_parity is not None:
        on_parity(parity)
    reporter.say("[3/4] bench")
    with eval_tensors_file(inputs.eval_set) as tensors:
        results = run_bench(out, opts.bench, tensors, e.command, reporter)
    reporter.say("[4/4] report")
    report = render_report(out)
    outcome = RunOutcome(manifest, parity, results, report, recommend(load_context(out)))
    for r in peer_failures(parity, opts.parity.strict_peers):
        reporter.say(f"peer {r.path} is outside its parity tolerance: reported, not gated (--strict-peers gates it)")
    require_parity(parity, opts.parity.fail_on_degenerate, opts.parity.strict_peers)  # after the report: a failing run is still shown
    return outcome


def run_bench(run_dir: Path, opts: BenchOptions, eval_tensors: Path | None, command: str,
              reporter: Reporter = SILENT) -> Results:
    """The benchmark with a counted progress task (one step per cell)."""
    with reporter.task("bench") as update:
        def progress(done: int, total: int, item) -> None:
            update(done, total, item.label)

        results = bench(run_dir, opts, eval_tensors, progress=progress, command=command)
    ok = sum(c.ok for c in results.cells)
    reporter.say(f"{ok}/{len(results.cells)} cells ok; results.json and results.csv written to {run_dir}")
    return results

