"""INT8 variants (static PTQ): fuse → prepare → calibrate (→ QAT) → convert → bias correction, pruned in either order.

Quantize-then-prune prunes the INT8 weights themselves (pruned integers set to
the zero point, scales and zero points untouched); prune-then-quantize prunes the
float weights and calibrates the pruned network. ``classifier_float`` keeps the
model's classifier (found from the model) in FP32: the ``mixed`` variant.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from exporter.builders.base import BuildContext, BuilderParams, BuiltVariant, Pt2eSource, register_builder
from exporter.builders.floating import finish
from exporter.compress import quantize
from exporter.options import CompressionOptions
from runtimes import structure
from runtimes.manifest import PruneOrder


@dataclass(frozen=True)
class QuantParams(BuilderParams):
    classifier_float: bool = False  # keep the classifier layer in FP32

    def order_matters(self) -> bool:
        return self.prune


def build_int8(ctx: BuildContext, keep: tuple[str, ...], prune_it: bool, opts: CompressionOptions) -> BuiltVariant:
    """The INT8 model with the ``keep`` layers in FP32, pruned at ``opts`` when ``prune_it``."""
    prune_first = prune_it and opts.order == PruneOrder.PRUNE_THEN_QUANTIZE and opts.sparsity > 0
    calibrated = ctx.calibrated(prune_first, opts)
    prepared, qat = ctx.quantization_aware(calibrated, opts)
    warnings = ctx.pruned_float_warnings(opts) if prune_first else []
    if keep:
        prepared = quantize.with_float_layers(prepared, keep)
    model: nn.Module = quantize.convert(prepared)
    if prune_it and not prune_first and opts.sparsity > 0:
        # Inside the INT8 grid: pruned integers to the zero point, kept ones compensated and re-rounded
        # (a layer kept FP32, e.g. mixed's classifier, is pruned as a float layer).
        warnings = ctx.prune(model, opts, "int8")
    # Last, so that it also takes out the mean shift pruning left; towards the dense float model.
    bias = ctx.correct_bias(model, ctx.calibrated(False, opts))
    pruned_in_grid = prune_it and not prune_first and opts.sparsity > 0
    source, refusal = pt2e_source(ctx, ctx.pruned_float(opts) if prune_first else ctx.loaded.model, keep,
                                  pruned_in_grid, qat is not None)
    return finish(model, ctx.quant_record(keep, model, bias, qat, ctx.equalization_of(calibrated)), ctx.prune_record(prune_it, opts, opts.order.value),
                  warnings=warnings, finetune=ctx.pruned_float_finetune(opts) if prune_first else None,
                  pt2e=source, pt2e_refusal=refusal)


def pt2e_source(ctx: BuildContext, float_model: nn.Module, keep: tuple[str, ...], pruned_in_grid: bool = False,
                qat: bool = False) -> tuple[Pt2eSource | None, str | None]:
    """The pt2e lane's input for an INT8 variant built from ``float_model``, or why it has none."""
    if pruned_in_grid:
        return None, ("it is pruned inside the INT8 grid (quantize-then-prune), which stays with the fbgemm "
                      "lanes; --order prune-then-quantize gives it a .pt2")
    if qat:
        return None, "its quantization-aware training is not ported to the pt2e lane"
    return Pt2eSource(float_model, ctx.calib_images, keep, ctx.reduce_range), None


@register_builder
class Int8Builder:
    name = "int8"
    params_type = QuantParams
    quantizes = True
    needs_eval = False
    sweepable = True

    def build(self, ctx: BuildContext, params: QuantParams, opts: CompressionOptions) -> BuiltVariant:
        keep = (structure.classifier_name(ctx.loaded.model),) if params.classifier_float else ()
        return build_int8(ctx, keep, params.prune, opts)
