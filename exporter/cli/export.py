"""``export``: build the variants, write TorchScript + ONNX + manifest, then the parity gate."""

from __future__ import annotations

from typing import Annotated

import typer

from exporter.cli.app import REPORTER, app, cli_errors, command_line
from exporter.cli.check import show_parity
from exporter.cli.options import (Target, BiasCorrectionOpt, EqualizeOpt, QatEpochs, QatLr, ChannelRound, ChannelSparsity, FinetuneData, FinetuneEpochs, Seed,
                                  recovery_options, BnRecalibrate, Method, EXPORT_VARIANTS, Degenerate, StrictPeers, Force, CalibData, CalibImages, CalibMethodOpt, EvalData, EvalImages,
                                  InputSize, MaxDrop, Mean, Model, Order, Out, ParityImages, Resize, Scope,
                                  Sparsity, FormatsOpt, Int8OnnxLaneOpt, Std, Tolerance, VariantsOpt, Weights, export_options, parity_options)
from exporter.export import ExportOptions
from exporter.formats.base import Int8OnnxLane
from exporter.options import (CalibrationOptions, ChannelOptions, CompressionOptions, FinetuneOptions, EvalOptions,
                              ModelOptions, ParityOptions, QatOptions)


@app.command("export")
@cli_errors
def export_command(
    out: Out = ExportOptions.out,
    model: Model = ModelOptions.model,
    weights: Weights = ModelOptions.weights,
    formats: FormatsOpt = None,
    int8_onnx_lane: Int8OnnxLaneOpt = Int8OnnxLane.FBGEMM,
    variants_csv: VariantsOpt = EXPORT_VARIANTS,
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
    skip_parity: Annotated[bool, typer.Option(help="do not run the parity gate after exporting")] = False,
    force: Force = ExportOptions.force,
    eval_data: EvalData = EvalOptions.data,
    eval_images: EvalImages = EvalOptions.images,
    max_accuracy_drop: MaxDrop = EvalOptions.max_accuracy_drop,
) -> None:
    """Compress the model into the variants, write TorchScript + ONNX + manifest, then check parity."""
    from exporter.export import export

    opts = export_options(out, model, weights, variants_csv, sparsity, prune_scope, order, calib_data,
                          calib_images, calib_method, resize, input_size, mean, std, eval_data, eval_images,
                          max_accuracy_drop, command_line(), force, prune_method, bn_recalibrate,
                          recovery_options(channel_sparsity, channel_round, finetune_data, finetune_epochs, seed, qat_epochs, qat_lr),
                          target, bias_correction, equalize, formats, int8_onnx_lane)
    parity = parity_options(parity_images, tolerance, calib_data, fail_on_degenerate=fail_on_degenerate,
                                 strict_peers=strict_peers)
    export(opts, REPORTER)
    if not skip_parity:
        show_parity(out, parity, as_json=False)
