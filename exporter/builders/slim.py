"""Slim variants: channel-pruned (whole channels removed, then recovered), in FP32 or static INT8.

The slimmed float model comes from the recipe (:mod:`exporter.compress.slim`: remove
channels → refit → BatchNorm re-estimation → distillation when asked), shared by
both variants; ``int8-slim`` is calibrated on the slim model itself, so its
activation ranges are the slim network's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from exporter.builders.base import BuildContext, BuilderParams, BuiltVariant, register_builder
from exporter.builders.floating import finish
from exporter.builders.quantized import pt2e_source
from exporter.compress import quantize
from exporter.options import CompressionOptions
from runtimes.manifest import PruneRecord, QuantRecord

@dataclass(frozen=True)
class SlimParams(BuilderParams):
    """Slim variants carry no unstructured pruning (``prune`` stays False): their sparsity is 0."""


def _built(ctx: BuildContext, opts: CompressionOptions, quantized: bool) -> BuiltVariant:
    slim = ctx.slimmed(opts)
    source, refusal = None, None
    if quantized:
        calibrated = ctx.calibrated_model(slim.model)
        prepared, qat = ctx.quantization_aware(calibrated, opts)
        model = quantize.convert(prepared)
        quant = ctx.quant_record((), model, ctx.correct_bias(model, calibrated), qat, ctx.equalization_of(calibrated))
        source, refusal = pt2e_source(ctx, slim.model, (), qat=qat is not None)
    else:
        model = copy.deepcopy(slim.model)
        quant = QuantRecord(backend=None, scheme=None)
    # No unstructured pruning: the weights are dense, the channels fewer (``channels`` says how many).
    pruning = PruneRecord(method=None, scope=None, order=None, requested=0.0)
    return finish(model, quant, pruning, macs=slim.record.macs_after,
                  channels=slim.record, finetune=slim.finetune, pt2e=source, pt2e_refusal=refusal)


@register_builder
class SlimBuilder:
    name = "slim"
    params_type = SlimParams
    quantizes = False
    needs_eval = False
    sweepable = False  # the sparsity sweep varies unstructured sparsity; channels have their own axis

    def build(self, ctx: BuildContext, params: SlimParams, opts: CompressionOptions) -> BuiltVariant:
        return _built(ctx, opts, quantized=False)


@register_builder
class Int8SlimBuilder:
    name = "int8-slim"
    params_type = SlimParams
    quantizes = True
    needs_eval = False
    sweepable = False

    def build(self, ctx: BuildContext, params: SlimParams, opts: CompressionOptions) -> BuiltVariant:
        return _built(ctx, opts, quantized=True)
