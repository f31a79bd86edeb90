"""Recipes: compose load → (prune) → fuse → prepare → calibrate → convert → (prune) per variant.

Calibrated observer statistics are cached and reused: ``int8``, ``int8-dense`` and
``mixed`` share one calibration (mixed keeps its classifier float by swapping the
layer after calibration), so adding a variant costs a convert, not a calibration.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from exporter import prune, quantize
from exporter.data import batches
from exporter.models import LoadedModel
from exporter.variants import VariantSpec
from runtimes.artifact import (CalibMethod, PruneOrder, PruneRecord, PruneScope, QuantRecord,
                               SparsityRecord)
from runtimes.modules import Float32IO
from runtimes.structure import QUANT_BACKEND

QUANT_SCHEME = ("static PTQ; weights INT8 per-channel symmetric (PerChannelMinMaxObserver); "
                "activations UINT8 per-tensor affine, reduce_range")


@dataclass(frozen=True)
class CompressionOptions:
    sparsity: float = 0.5
    scope: PruneScope = PruneScope.GLOBAL
    order: PruneOrder = PruneOrder.QUANTIZE_THEN_PRUNE
    calib_method: CalibMethod = CalibMethod.HISTOGRAM
    calib_batch: int = 32


@dataclass
class Calibration:
    images: torch.Tensor  # preprocessed float32 NCHW
    source: str  # "synthetic" or the data directory


@dataclass
class BuiltVariant:
    spec: VariantSpec
    model: nn.Module  # final eager module (float32 interface)
    quant: QuantRecord
    pruning: PruneRecord
    sparsity: SparsityRecord
    params: int
    nonzero_params: int
    decisions: dict[str, Any] = field(default_factory=dict)


class Recipe:
    """Builds variants from one loaded model, caching calibrations."""

    def __init__(self, base: LoadedModel, calib: Calibration, opts: CompressionOptions) -> None:
        self.base = base
        self.calib = calib
        self.opts = opts
        self._calibrated: dict[bool, nn.Module] = {}
        self._pruned_float: nn.Module | None = None

    # --- cached steps -----------------------------------------------------------
    def pruned_float(self) -> nn.Module:
        if self._pruned_float is None:
            m = copy.deepcopy(self.base.model)
            prune.prune_model(m, self.opts.sparsity, self.opts.scope.value)
            self._pruned_float = m
        return self._pruned_float

    def calibrated(self, pruned_first: bool) -> nn.Module:
        """A prepared (observed) model calibrated on the calibration images."""
        if pruned_first not in self._calibrated:
            src = self.pruned_float() if pruned_first else self.base.model
            prepared = quantize.prepare_for_calibration(src, self.opts.calib_method.value)
            quantize.calibrate(prepared, batches(self.calib.images, self.opts.calib_batch))
            self._calibrated[pruned_first] = prepared
        return self._calibrated[pruned_first]

    # --- records ----------------------------------------------------------------
    def quant_record(self, keep: tuple[str, ...]) -> QuantRecord:
        return QuantRecord(backend=QUANT_BACKEND, scheme=QUANT_SCHEME,
                           calib_method=self.opts.calib_method.value, calib_source=self.calib.source,
                           calib_images=int(len(self.calib.images)), keep_float=list(keep))

    def prune_record(self, spec: VariantSpec, order: PruneOrder | None) -> PruneRecord:
        if not spec.prune:
            return PruneRecord(method=None, scope=None, order=None, requested=0.0)
        return PruneRecord(method="l1-unstructured", scope=self.opts.scope.value,
                           order=order.value if order else None, requested=self.opts.sparsity)

    # --- the recipe -------------------------------------------------------------
    def build(self, spec: VariantSpec, keep: tuple[str, ...] | None = None,
              sparsity: float | None = None) -> BuiltVariant:
        """Build ``spec``; ``keep``/``sparsity`` override the spec (used by the budget search)."""
        # The budget search evaluates quantize-then-prune candidates on the cached calibration.
        order = PruneOrder.QUANTIZE_THEN_PRUNE if spec.budgeted else self.opts.order
        opts = self.opts if sparsity is None and order == self.opts.order else CompressionOptions(
            self.opts.sparsity if sparsity is None else sparsity, self.opts.scope, order,
            self.opts.calib_method, self.opts.calib_batch)
        keep = tuple(spec.keep_float if keep is None else keep)
        order = opts.order if spec.quantize or spec.half else None
        if spec.quantize:
            model = self._quantized(spec, keep, opts)
            quant = self.quant_record(keep)
        else:
            model = copy.deepcopy(self.base.model)
            if spec.half:
                model = model.half()
            if spec.prune:
                prune.prune_model(model, opts.sparsity, opts.scope.value)
            if spec.half:
                model = Float32IO(model, torch.float16).eval()
            quant = QuantRecord(backend=None, scheme=None)
        model.eval()
        rec = prune.measure_sparsity(model, opts.sparsity if spec.prune else 0.0)
        params, nonzero = prune.count_params(model)
        pr = self.prune_record(spec, order) if opts is self.opts else PruneRecord(
            "l1-unstructured" if opts.sparsity > 0 else None, opts.scope.value,
            order.value if order else None, opts.sparsity)
        return BuiltVariant(spec, model, quant, pr, rec, params, nonzero)

    def _quantized(self, spec: VariantSpec, keep: tuple[str, ...], opts: CompressionOptions) -> nn.Module:
        prune_first = spec.prune and opts.order == PruneOrder.PRUNE_THEN_QUANTIZE and opts.sparsity > 0
        if prune_first and opts is not self.opts:
            # A one-off sparsity: prune and calibrate afresh (the cache holds self.opts' sparsity).
            src = copy.deepcopy(self.base.model)
            prune.prune_model(src, opts.sparsity, opts.scope.value)
            prepared = quantize.prepare_for_calibration(src, opts.calib_method.value)
            quantize.calibrate(prepared, batches(self.calib.images, opts.calib_batch))
        else:
            prepared = self.calibrated(prune_first)
        if keep:
            prepared = quantize.with_float_layers(prepared, keep)
        model = quantize.convert(prepared)
        if spec.prune and not prune_first and opts.sparsity > 0:
            prune.prune_model(model, opts.sparsity, opts.scope.value)
        return model
