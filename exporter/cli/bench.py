"""``bench`` and ``report``: measure every artifact in every runtime; render the report from the records."""

from __future__ import annotations

import json

from exporter.cli.app import REPORTER, app, cli_errors, command_line, out_console
from exporter.cli.options import (ShardImages, ExecutorOpt, JobCpus, MaxRetries, RayAddress, TargetsOpt, executor_options,
                                  DEFAULT_BATCH, Batch, EvalData, EvalImages, Json, MaxDrop, MinIters, Attempts, Remeasure, MinTime,
                                  RetryBudget,
                                  RunDir, Runtimes, Threads, Timeout, VariantsFilter, bench_options)
from exporter.options import EvalOptions
from runtimes.bench.options import BenchOptions
from runtimes.executor.options import LOCAL


@app.command("bench")
@cli_errors
def bench_command(
    run_dir: RunDir,
    runtimes: Runtimes = None,
    batch: Batch = DEFAULT_BATCH,
    threads: Threads = BenchOptions.threads,
    min_time: MinTime = BenchOptions.min_time_s,
    min_iters: MinIters = BenchOptions.min_iters,
    attempts: Attempts = BenchOptions.attempts,
    remeasure: Remeasure = BenchOptions.remeasure,
    retry_budget: RetryBudget = BenchOptions.retry_budget_s,
    timeout: Timeout = BenchOptions.timeout_s,
    eval_data: EvalData = EvalOptions.data,
    eval_images: EvalImages = EvalOptions.images,
    max_accuracy_drop: MaxDrop = BenchOptions.max_accuracy_drop,
    variants: VariantsFilter = None,
    executor: ExecutorOpt = LOCAL.kind.value,
    ray_address: RayAddress = LOCAL.address,
    targets: TargetsOpt = None,
    max_retries: MaxRetries = LOCAL.max_retries,
    job_cpus: JobCpus = LOCAL.job_cpus,
    shard_images: ShardImages = LOCAL.shard_images,
    as_json: Json = False,
) -> None:
    """Time every artifact in every runtime (one subprocess per cell); write results.json and results.csv."""
    from exporter.evaluation import decode_eval_set, eval_tensors_file, preprocess_of
    from exporter.pipeline import run_bench
    from runtimes.manifest import require_verified
    from runtimes.records import to_jsonable

    opts = bench_options(runtimes, batch, threads, min_time, min_iters, timeout, max_accuracy_drop, variants, attempts,
                         remeasure, retry_budget,
                         executor_options(executor, ray_address, targets, max_retries, job_cpus, shard_images))
    evaluation = EvalOptions(eval_data, eval_images)
    manifest = require_verified(run_dir)
    if opts.executor.distributed:
        from runtimes.executor.ray_cluster import preflight

        preflight(opts.executor)  # an unreachable cluster or a target no node carries: one line, before any work
    # Decoded once, with the run's own preprocessing; every cell reads the same tensors.
    eval_set = (decode_eval_set(evaluation.data, preprocess_of(manifest), manifest.artifacts[0].num_classes,
                                evaluation.images, REPORTER) if evaluation.data is not None else None)
    with eval_tensors_file(eval_set) as tensors:
        results = run_bench(run_dir, opts, tensors, command_line(), REPORTER)
    if as_json:
        out_console.print_json(json.dumps(to_jsonable(results)))


@app.command()
@cli_errors
def report(run_dir: RunDir) -> None:
    """Render report.md and figures from results.json alone (nothing is re-run)."""
    from exporter.report import render_report

    out_console.print(f"wrote {render_report(run_dir)}")
