"""The recipe: builds variants from one loaded model, sharing what they have in common.

:class:`Recipe` is the :class:`~exporter.builders.base.BuildContext` every
builder works in. It holds the loaded float model, the calibration images and
the eval set, and caches the expensive shared steps *by the options they depend
on*: a calibration per (pruned first or not, sparsity, scope), a pruned float
model per (sparsity, scope). ``int8``, ``int8-dense`` and ``mixed`` therefore
share one calibration, and a sparsity sweep reuses it across sparsities, with no
caller touching the cache.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from exporter import prune, quantize
from exporter.builders.base import BuiltVariant, get_builder
from exporter.data import batches
from exporter.evaluation import EvalSet
from exporter.models import LoadedModel
from exporter.options import DEFAULT_MAX_ACCURACY_DROP, CalibrationOptions, CompressionOptions
from exporter.progress import SILENT, Reporter
from exporter.variants import VariantSpec, get_variant
from runtimes.manifest import CalibMethod, QuantRecord
from runtimes.quant_engine import QUANT_BACKEND

QUANT_SCHEME = ("static PTQ; weights INT8 per-channel symmetric (PerChannelMinMaxObserver); "
                "activations UINT8 per-tensor affine, reduce_range")


class Recipe:
    """Builds variants from one loaded model, caching calibrations and pruned float models."""

    def __init__(self, loaded: LoadedModel, calib_images: torch.Tensor, calib_source: str,
                 compression: CompressionOptions = CompressionOptions(),
                 calibration: CalibrationOptions = CalibrationOptions(),
                 eval_set: EvalSet | None = None,
                 max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
                 reporter: Reporter = SILENT) -> None:
        self.loaded = loaded
        self.calib_images = calib_images
        self.calib_source = calib_source
        self.compression = compression
        self.calibration = calibration
        self.eval_set = eval_set
        self.max_accuracy_drop = max_accuracy_drop
        self.reporter = reporter
        self._calibrated: dict[tuple, nn.Module] = {}
        self._pruned: dict[tuple, nn.Module] = {}

    @property
    def calib_method(self) -> CalibMethod:
        return self.calibration.method

    # --- cached steps -----------------------------------------------------------
    def pruned_float(self, opts: CompressionOptions) -> nn.Module:
        """The float model pruned at ``opts`` (shared: do not modify it)."""
        key = (opts.sparsity, opts.scope)
        if key not in self._pruned:
            m = copy.deepcopy(self.loaded.model)
            prune.prune_model(m, opts.sparsity, opts.scope.value)
            self._pruned[key] = m
        return self._pruned[key]

    def calibrated(self, pruned_first: bool, opts: CompressionOptions | None = None) -> nn.Module:
        """A prepared (observed) model calibrated on the calibration images (shared: do not modify it).

        ``pruned_first``: calibrated on the float model pruned at ``opts``, so the
        activation ranges are those of the pruned network.
        """
        opts = opts or self.compression
        key = (True, opts.sparsity, opts.scope) if pruned_first else (False,)
        if key not in self._calibrated:
            src = self.pruned_float(opts) if pruned_first else self.loaded.model
            prepared = quantize.prepare_for_calibration(src, self.calib_method.value)
            quantize.calibrate(prepared, batches(self.calib_images, self.calibration.batch))
            self._calibrated[key] = prepared
        return self._calibrated[key]

    # --- records ----------------------------------------------------------------
    def quant_record(self, keep: tuple[str, ...]) -> QuantRecord:
        return QuantRecord(backend=QUANT_BACKEND, scheme=QUANT_SCHEME, calib_method=self.calib_method.value,
                           calib_source=self.calib_source, calib_images=int(len(self.calib_images)),
                           keep_float=list(keep))

    # --- building ---------------------------------------------------------------
    def build(self, spec: VariantSpec, opts: CompressionOptions | None = None) -> BuiltVariant:
        """Build ``spec`` with ``opts`` (default: this recipe's compression options)."""
        return get_builder(spec.builder).build(self, spec.params, opts or self.compression)

    def build_named(self, variant: str, opts: CompressionOptions) -> BuiltVariant:
        return self.build(get_variant(variant), opts)
