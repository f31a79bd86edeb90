"""Float variants: FP32 and FP16 (float32 I/O), optionally L1-pruned."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from exporter.builders.base import BuildContext, BuilderParams, BuiltVariant, register_builder
from exporter.compress import magnitude
from exporter.formats.onnx import to_float16
from exporter.options import CompressionOptions
from runtimes.manifest import PruneRecord, QuantRecord
from runtimes.modules import Float32IO

@dataclass(frozen=True)
class FloatParams(BuilderParams):
    half: bool = False  # cast to float16 (compute), keeping a float32 interface

    def order_matters(self) -> bool:
        return self.half and self.prune


def finish(model: torch.nn.Module, quant: QuantRecord, pruning: PruneRecord, **extra) -> BuiltVariant:
    """Measure what was built (sparsity from the stored weights, parameter counts) into its record."""
    model.eval()
    sparsity = magnitude.measure_sparsity(model, pruning.requested)
    params, nonzero = magnitude.count_params(model)
    return BuiltVariant(model, quant, pruning, sparsity, params, nonzero, **extra)


@register_builder
class FloatBuilder:
    name = "float"
    params_type = FloatParams
    quantizes = False
    needs_eval = False
    sweepable = True

    def build(self, ctx: BuildContext, params: FloatParams, opts: CompressionOptions) -> BuiltVariant:
        # Pruned (and reconstructed) in FP32, shared with every other variant pruned the same way;
        # FP16 casts the result.
        model = copy.deepcopy(ctx.pruned_float(opts) if params.prune else ctx.loaded.model)
        warnings = ctx.pruned_float_warnings(opts) if params.prune else []
        if params.half:
            model = model.half()
        extra: dict = {"warnings": warnings, "finetune": ctx.pruned_float_finetune(opts) if params.prune else None}
        if params.half:
            model = Float32IO(model, torch.float16)
            # ONNX is exported from the exact FP32 copy (fp16 -> fp32 is lossless) and converted
            # by ONNX Runtime's float16 tool, which keeps float32 I/O.
            extra.update(onnx_source=copy.deepcopy(model.inner).float().eval(), onnx_passes=(to_float16,))
        # Order is meaningful for FP16 (prune before or after the cast); FP32 has none.
        order = opts.order.value if params.half else None
        return finish(model, QuantRecord(backend=None, scheme=None), ctx.prune_record(params.prune, opts, order),
                      **extra)
