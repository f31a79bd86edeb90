"""``study``: many models through export → parity → bench (→ accuracy), fanned out, into one directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exporter.cli.app import REPORTER, app, cli_errors, command_line, out_console
from exporter.cli.options import (DEFAULT_BATCH, RUN_VARIANTS, Batch, CalibData, CalibImages, EvalData, EvalImages,
                                  ExecutorOpt, Force, FormatsOpt, InputSize, JobCpus, MaxDrop, MaxRetries, MinIters,
                                  MinTime, ParityImages, RayAddress, Resize, RetryBudget, Runtimes, Sparsity,
                                  Mean, Std, Target, Threads, Timeout, VariantsOpt, bench_options,
                                  executor_options, export_options, parity_options, split_names)
from exporter.options import CalibrationOptions, CompressionOptions, EvalOptions, ModelOptions, ParityOptions
from runtimes.bench.options import BenchOptions
from runtimes.executor.options import LOCAL

Models = Annotated[str, typer.Option("--models", help="comma-separated torchvision classifiers, or all "
                                     "(see `shrinkwrap models`)")]
StudyWeights = Annotated[str, typer.Option("--weights", help="imagenet, random (UNTRAINED), or a directory "
                                           "holding each model's checkpoint as <model>.pt")]
StudyOut = Annotated[Path, typer.Option("--out", help="study directory to write (a run directory per model, "
                                        "study.json, study.md)")]


@app.command("study")
@cli_errors
def study_command(
    models: Models,
    out: StudyOut = Path("artifacts/study"),
    weights: StudyWeights = ModelOptions.weights,
    variants_csv: VariantsOpt = RUN_VARIANTS,
    formats: FormatsOpt = None,
    sparsity: Sparsity = CompressionOptions.sparsity,
    calib_data: CalibData = CalibrationOptions.data,
    calib_images: CalibImages = CalibrationOptions.images,
    resize: Resize = None,
    input_size: InputSize = None,
    mean: Mean = None,
    std: Std = None,
    target: Target = CalibrationOptions.target,
    parity_images: ParityImages = ParityOptions.DEFAULT_IMAGES,
    runtimes: Runtimes = None,
    batch: Batch = DEFAULT_BATCH,
    threads: Threads = BenchOptions.threads,
    min_time: MinTime = BenchOptions.min_time_s,
    min_iters: MinIters = BenchOptions.min_iters,
    retry_budget: RetryBudget = BenchOptions.retry_budget_s,
    timeout: Timeout = BenchOptions.timeout_s,
    eval_data: EvalData = EvalOptions.data,
    eval_images: EvalImages = EvalOptions.images,
    max_accuracy_drop: MaxDrop = EvalOptions.max_accuracy_drop,
    force: Force = False,
    executor: ExecutorOpt = LOCAL.kind.value,
    ray_address: RayAddress = LOCAL.address,
    max_retries: MaxRetries = LOCAL.max_retries,
    job_cpus: JobCpus = LOCAL.job_cpus,
) -> None:
    """Run every model's export → parity → bench → report (one job per model), then a study table."""
    from exporter.pipeline import RunOptions
    from exporter.study.runner import StudyOptions, study

    command = command_line()
    # Every option is validated here, before any model is loaded; the first model's name stands in for each.
    names = split_names(models) or ()
    export = export_options(out / "model", names[0] if names else "resnet18", weights, variants_csv, sparsity,
                            CompressionOptions.scope, CompressionOptions.order, calib_data, calib_images,
                            CalibrationOptions.method, resize, input_size, mean, std, eval_data, eval_images,
                            max_accuracy_drop, command, True, formats=formats, target=target)
    run = RunOptions(export=export,
                     parity=parity_options(parity_images, None, calib_data),
                     bench=bench_options(runtimes, batch, threads, min_time, min_iters, timeout, max_accuracy_drop,
                                         retry_budget=retry_budget))
    ex = executor_options(executor, ray_address, None, max_retries, job_cpus)
    record = study(StudyOptions(names, out, run, ex, force, command), REPORTER)
    out_console.print(f"study: {out / 'study.md'} ({len(record.models)} models, {record.wall_s:.0f} s)",
                      markup=False, highlight=False, soft_wrap=True)
