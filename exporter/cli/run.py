"""``run``: export → parity → bench → report, in one command."""

from __future__ import annotations

from exporter.cli.app import REPORTER, app, cli_errors, command_line, out_console
from exporter.cli.check import print_parity
from exporter.report.recommend import terminal_lines
from exporter.cli.options import (ShardImages, ExecutorOpt, JobCpus, MaxRetries, RayAddress, TargetsOpt, executor_options,
                                  Target, BiasCorrectionOpt, EqualizeOpt, QatEpochs, QatLr, ChannelRound, ChannelSparsity, FinetuneData, FinetuneEpochs, Seed,
                                  recovery_options, BnRecalibrate, Method, DEFAULT_BATCH, RUN_VARIANTS, Degenerate, StrictPeers, Force, Batch, CalibData, CalibImages, CalibMethodOpt,
                                  EvalData, EvalImages, InputSize, MaxDrop, Mean, MinIters, Attempts, Remeasure, RetryBudget, MinTime, Model, Order,
                                  Out, ParityImages, Resize, Runtimes, Scope, Sparsity, FormatsOpt, Int8OnnxLaneOpt, Std, Threads, Timeout,
                                  Tolerance, VariantsOpt, Weights, bench_options, export_options, parity_options)
from exporter.export import ExportOptions
from exporter.formats.base import Int8OnnxLane
from exporter.options import (CalibrationOptions, ChannelOptions, CompressionOptions, FinetuneOptions, EvalOptions,
                              ModelOptions, ParityOptions, QatOptions)
from runtimes.bench.options import BenchOptions
from runtimes.executor.options import LOCAL


@app.command()
@cli_errors
def run(
    out: Out = ExportOptions.out,
    model: Model = ModelOptions.model,
    weights: Weights = ModelOptions.weights,
    formats: FormatsOpt = None,
    int8_onnx_lane: Int8OnnxLaneOpt = Int8OnnxLane.FBGEMM,
    variants_csv: VariantsOpt = RUN_VARIANTS,
    sparsity: Sparsity = CompressionOptions.sparsity,
    prune_scope: Scope = CompressionOptions.scope,
    order: Order = CompressionOptions.order,
    prune_method: Method = CompressionOptions.method.value,
    bn_recalibrate: BnRecalibrate = CompressionOptions.bn_recalibrate,
    channel_sparsity: ChannelSparsity = ChannelOptions.sparsity,
    channel_round: ChannelRound = ChannelOptions.round_to,
    finetune_data: FinetuneData = FinetuneOptions.data,
    finetune_epochs: FinetuneEpochs = FinetuneOptions.epochs,
    seed: Seed = FinetuneOptions.seed,
    qat_epochs: QatEpochs = QatOptions.epochs,
    qat_lr: QatLr = QatOptions.lr,
    calib_data: CalibData = CalibrationOptions.data,
    calib_images: CalibImages = CalibrationOptions.images,
    calib_method: CalibMethodOpt = CalibrationOptions.method,
    target: Target = CalibrationOptions.target,
    bias_correction: BiasCorrectionOpt = CalibrationOptions.bias_correction,
    equalize: EqualizeOpt = CalibrationOptions.equalize,
    resize: Resize = None,
    input_size: InputSize = None,
    mean: Mean = None,
    std: Std = None,
    parity_images: ParityImages = ParityOptions.DEFAULT_IMAGES,
    tolerance: Tolerance = None,
    fail_on_degenerate: Degenerate = ParityOptions.fail_on_degenerate,
    strict_peers: StrictPeers = ParityOptions.strict_peers,
    force: Force = ExportOptions.force,
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
    max_accuracy_drop: MaxDrop = EvalOptions.max_accuracy_drop,
    executor: ExecutorOpt = LOCAL.kind.value,
    ray_address: RayAddress = LOCAL.address,
    targets: TargetsOpt = None,
    max_retries: MaxRetries = LOCAL.max_retries,
    job_cpus: JobCpus = LOCAL.job_cpus,
    shard_images: ShardImages = LOCAL.shard_images,
) -> None:
    """Export, parity, bench and report in one command."""
    from exporter.pipeline import RunOptions, run as run_pipeline

    # Every option is validated here, before minutes of export (a bad runtime name included).
    opts = RunOptions(
        export=export_options(out, model, weights, variants_csv, sparsity, prune_scope, order, calib_data,
                              calib_images, calib_method, resize, input_size, mean, std, eval_data,
                              eval_images, max_accuracy_drop, command_line(), force, prune_method,
                              bn_recalibrate,
                              recovery_options(channel_sparsity, channel_round, finetune_data, finetune_epochs,
                                               seed, qat_epochs, qat_lr), target, bias_correction, equalize, formats, int8_onnx_lane),
        parity=parity_options(parity_images, tolerance, calib_data, fail_on_degenerate=fail_on_degenerate,
                                 strict_peers=strict_peers),
        bench=bench_options(runtimes, batch, threads, min_time, min_iters, timeout, max_accuracy_drop,
                            attempts=attempts, remeasure=remeasure, retry_budget=retry_budget,
                            executor=executor_options(executor, ray_address, targets, max_retries, job_cpus, shard_images)))
    outcome = run_pipeline(opts, REPORTER, on_parity=print_parity)
    # The terminal ends with the answer: what to deploy (the report's Recommendation), then where the rest is.
    for line in terminal_lines(outcome.recommendations):
        out_console.print(f"deploy: {line}", markup=False, highlight=False, soft_wrap=True)
    out_console.print(f"report: {outcome.report}", markup=False, highlight=False, soft_wrap=True)
