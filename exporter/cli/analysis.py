"""``sweep`` and ``sensitivity``: where accuracy goes, by sparsity × order and by layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from exporter.analysis.commands import SweepOptions, default_sweep_variants
from exporter.analysis.inputs import AnalysisOptions
from runtimes.executor.options import LOCAL
from exporter.analysis.sweep import DEFAULT_CHANNEL_SPARSITIES, DEFAULT_SPARSITIES
from exporter.cli.app import REPORTER, app, cli_errors, out_console, say
from exporter.cli.options import (ExecutorOpt, MaxRetries, RayAddress, executor_options,
                                  Target, BiasCorrectionOpt, EqualizeOpt, ChannelRound, FinetuneData, FinetuneEpochs, Seed, recovery_options, Method, parse_methods, CalibData, CalibImages, CalibMethodOpt, EvalData, EvalImages, InputSize, Mean,
                                  Model, Resize, Scope, Sparsity, Std, VariantsOpt, Weights, analysis_options,
                                  parse_floats)
from exporter.options import (CalibrationOptions, ChannelOptions, CompressionOptions, EvalOptions, FinetuneOptions,
                              ModelOptions)
from runtimes.manifest import RUN_FILES, PruneMethod

AnalysisOut = Annotated[Path, typer.Option(help="directory for the record and its figures (e.g. a run directory)")]
Sparsities = Annotated[str, typer.Option(help="comma-separated sparsities")]


@app.command()
@cli_errors
def sweep(
    out: AnalysisOut = AnalysisOptions.out,
    model: Model = ModelOptions.model,
    weights: Weights = ModelOptions.weights,
    variants_csv: VariantsOpt = ",".join(default_sweep_variants()),
    sparsities: Sparsities = ",".join(f"{s:g}" for s in DEFAULT_SPARSITIES),
    prune_scope: Scope = CompressionOptions.scope,
    methods: Annotated[str, typer.Option("--prune-methods", help="comma-separated pruning methods to compare")]
    = ",".join(m.value for m in PruneMethod),
    channel_sparsities: Annotated[str, typer.Option(help="comma-separated channel sparsities (slim variants)")]
    = ",".join(f"{s:g}" for s in DEFAULT_CHANNEL_SPARSITIES),
    channel_round: ChannelRound = ChannelOptions.round_to,
    finetune_data: FinetuneData = FinetuneOptions.data,
    finetune_epochs: FinetuneEpochs = FinetuneOptions.epochs,
    seed: Seed = FinetuneOptions.seed,
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
    eval_data: EvalData = EvalOptions.data,
    eval_images: EvalImages = EvalOptions.images,
    executor: ExecutorOpt = LOCAL.kind.value,
    ray_address: RayAddress = LOCAL.address,
    max_retries: MaxRetries = LOCAL.max_retries,
) -> None:
    """Accuracy and compressed size against sparsity, for both pruning orders (points fan out with --executor ray)."""
    from exporter.analysis.commands import sweep as run_sweep
    from exporter.report.analyses import sweep_figures

    opts = SweepOptions(
        analysis=analysis_options(out, model, weights, CompressionOptions.sparsity, prune_scope, calib_data,
                                  calib_images, calib_method, resize, input_size, mean, std, eval_data,
                                  eval_images, recovery=recovery_options(ChannelOptions.sparsity, channel_round,
                                                                         finetune_data, finetune_epochs, seed),
                                  target=target, bias_correction=bias_correction, equalize=equalize),
        variants=tuple(variants_csv.split(",")), sparsities=parse_floats(sparsities, "--sparsities"),
        methods=tuple(parse_methods(methods)),
        channel_sparsities=parse_floats(channel_sparsities, "--channel-sparsities"),
        executor=executor_options(executor, ray_address, None, max_retries, None))
    if opts.executor.distributed:
        from runtimes.executor.ray_cluster import preflight

        preflight(opts.executor)  # before the model and images load
    report = run_sweep(opts, REPORTER)
    sweep_figures(report, out / RUN_FILES.figures)
    for c in report.conclusions:
        say(c)
    out_console.print(f"wrote {out / RUN_FILES.sweep} and figures in {report.seconds:.0f} s")


@app.command()
@cli_errors
def sensitivity(
    out: AnalysisOut = AnalysisOptions.out,
    model: Model = ModelOptions.model,
    weights: Weights = ModelOptions.weights,
    sparsity: Sparsity = CompressionOptions.sparsity,
    prune_method: Method = CompressionOptions.method.value,
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
    eval_data: EvalData = EvalOptions.data,
    eval_images: EvalImages = EvalOptions.images,
) -> None:
    """Per layer: the loss when only that layer is INT8, and when only that layer is pruned; ranked."""
    from exporter.analysis.commands import sensitivity as run_sensitivity
    from exporter.report.analyses import sensitivity_figure

    opts = analysis_options(out, model, weights, sparsity, CompressionOptions.scope, calib_data, calib_images,
                            calib_method, resize, input_size, mean, std, eval_data, eval_images, prune_method,
                            target=target, bias_correction=bias_correction, equalize=equalize)
    rep = run_sensitivity(opts, REPORTER)
    sensitivity_figure(rep, out / RUN_FILES.figures / "sensitivity.png")
    table = Table("rank", "layer", "INT8-only SQNR dB", "prune-only SQNR dB", "INT8-only top-1 drop")
    for i, r in enumerate(rep.layers[:10], 1):
        table.add_row(str(i), r.layer, f"{r.quant_sqnr_db:.1f}", f"{r.prune_sqnr_db:.1f}",
                      "-" if r.quant_top1_drop is None else f"{r.quant_top1_drop:+.2f}")
    out_console.print(table)
    out_console.print(f"wrote {out / RUN_FILES.sensitivity} in {rep.seconds:.0f} s")
