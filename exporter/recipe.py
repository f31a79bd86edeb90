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
import dataclasses
import time
from typing import TYPE_CHECKING

import torch
from torch import nn

from exporter.builders.base import BuiltVariant, get_builder
from exporter.compress import obs, quantize
from exporter.compress.bias_correction import correct_bias
from exporter.compress.equalize import equalize
from exporter.compress.batchnorm import recalibrate_batchnorm
from exporter.compress.unstructured import SYNTHETIC_WARNING, method_record, prune_as
from exporter.data import batches
from exporter.evaluation import EvalSet
from exporter.models import LoadedModel
from exporter.options import DEFAULT_MAX_ACCURACY_DROP, CalibrationOptions, CompressionOptions
from exporter.progress import SILENT, Reporter
from exporter.variants import VariantSpec, get_variant
from runtimes.architectures import Preprocess
from runtimes.manifest import (BiasCorrection, BiasCorrectionRecord, CalibMethod, EqualizationRecord, FinetuneRecord,
                               PruneMethod, PruneRecord, QuantRecord)
from runtimes import host_cpu, quant_lanes
from runtimes.quant_engine import QUANT_BACKEND
from runtimes.targets import get_target

if TYPE_CHECKING:
    from exporter.compress.slim import SlimModel

# The global allocation only ranks weights across layers; fewer images than the reconstruction suffice.
ALLOCATION_IMAGES = 64


def quant_scheme(target: str) -> str:
    bits = get_target(target).activation_bits
    return ("static PTQ; weights INT8 per-channel symmetric (PerChannelMinMaxObserver); activations UINT8 "
            f"per-tensor affine, {bits} bits " + ("(reduce_range)" if bits == 7 else "(full range)")
            + f" for --target {target}")


class Recipe:
    """Builds variants from one loaded model, caching calibrations and pruned float models."""

    def __init__(self, loaded: LoadedModel, calib_images: torch.Tensor, calib_source: str,
                 compression: CompressionOptions = CompressionOptions(),
                 calibration: CalibrationOptions = CalibrationOptions(),
                 eval_set: EvalSet | None = None,
                 max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP,
                 reporter: Reporter = SILENT, preprocess: Preprocess | None = None) -> None:
        self.loaded = loaded
        self.preprocess = preprocess or loaded.preprocess
        self.calib_images = calib_images
        self.calib_source = calib_source
        self.compression = compression
        self.calibration = calibration
        self.eval_set = eval_set
        self.max_accuracy_drop = max_accuracy_drop
        self.reporter = reporter
        self._calibrated: dict[tuple, nn.Module] = {}
        self._pruned: dict[tuple, tuple[nn.Module, list[str], FinetuneRecord | None]] = {}
        self._slimmed: dict[tuple, "SlimModel"] = {}
        self._dense_macs: int | None = None
        self._targets: dict[tuple, dict[str, float]] = {}
        self._reconstructed: dict[tuple, dict] = {}  # per options: layer -> (before, after), shared
        self._qat: dict[tuple, tuple[nn.Module, FinetuneRecord]] = {}  # per calibrated model and QAT settings
        # Per prepared model (by id; the caches above hold them): what equalization did before its calibration.
        self._equalization: dict[int, EqualizationRecord | None] = {}

    @property
    def calib_method(self) -> CalibMethod:
        return self.calibration.method

    @property
    def reduce_range(self) -> bool:
        return self.calibration.reduce_range

    # --- pruning ----------------------------------------------------------------
    def prune(self, model: nn.Module, opts: CompressionOptions, label: str = "") -> list[str]:
        """Prune ``model`` in place with ``opts``; the warnings to record (damping raised, synthetic inputs)."""
        key = (label, *self._pruned_key(opts))
        known = self._reconstructed.get(key)
        outcome = prune_as(model, opts, self.obs_images, self.reporter, label, self.layer_targets(opts), known)
        self._reconstructed.setdefault(key, {}).update(outcome.results)
        warnings = list(outcome.notes)
        if opts.method is PruneMethod.OBS and opts.sparsity > 0 and self.calib_source == "synthetic":
            warnings.append(SYNTHETIC_WARNING)
        return warnings

    def prune_record(self, prune_it: bool, opts: CompressionOptions, order: str | None) -> PruneRecord:
        if not prune_it:
            return PruneRecord(method=None, scope=None, order=None, requested=0.0)
        method = method_record(opts, len(self.obs_images)) if opts.sparsity > 0 else None
        return PruneRecord(method=method, scope=opts.scope.value, order=order, requested=opts.sparsity)

    @property
    def obs_images(self) -> torch.Tensor:
        """The calibration images OBS reconstruction uses: ``CompressionOptions.obs_images`` of them, evenly
        spaced (an ImageFolder subset is ordered by class, so the first ones would be a few classes only)."""
        return self.calib_images[self._obs_indices()]

    def _obs_indices(self) -> torch.Tensor:
        n, k = len(self.calib_images), self.compression.obs_images
        if k >= n:
            return torch.arange(n)
        return torch.linspace(0, n - 1, k).round().long().unique()

    @property
    def held_out_images(self) -> torch.Tensor:
        """Calibration images no reconstruction used, to measure recovery on (all of them when fewer
        than 16 are left: the measurement is then in-sample)."""
        mask = torch.ones(len(self.calib_images), dtype=torch.bool)
        mask[self._obs_indices()] = False
        return self.calib_images[mask] if int(mask.sum()) >= 16 else self.calib_images

    def layer_targets(self, opts: CompressionOptions) -> dict[str, float] | None:
        """OBS's per-layer sparsities, allocated once on the float model and shared by every variant."""
        if opts.method is not PruneMethod.OBS or opts.sparsity == 0.0:
            return None
        key = (opts.sparsity, opts.scope)
        if key not in self._targets:
            images = self.obs_images
            few = images[torch.linspace(0, len(images) - 1, min(ALLOCATION_IMAGES, len(images))).round().long()]
            t0 = time.perf_counter()
            self._targets[key] = obs.layer_targets(self.loaded.model, few, opts.sparsity, opts.scope.value)
            if opts.scope.value == "global":
                self.reporter.say(f"obs: sparsity allocated over {len(self._targets[key])} layers from "
                                  f"{len(few)} images in {time.perf_counter() - t0:.1f} s")
        return self._targets[key]

    @staticmethod
    def _pruned_key(opts: CompressionOptions) -> tuple:
        return (opts.sparsity, opts.scope, opts.method, opts.bn_recalibrate, opts.finetune)

    # --- cached steps -----------------------------------------------------------
    def pruned_float(self, opts: CompressionOptions) -> nn.Module:
        """The float model pruned at ``opts`` (shared: do not modify it); BatchNorm re-estimated when asked."""
        key = self._pruned_key(opts)
        if key not in self._pruned:
            m = copy.deepcopy(self.loaded.model)
            warnings = self.prune(m, opts, "float")
            if opts.bn_recalibrate and opts.sparsity > 0:
                recalibrate_batchnorm(m, self.calib_images)
            finetune = None
            if opts.finetune.enabled and opts.sparsity > 0:
                from exporter.compress.distill import distill, masks_of

                # The zeros stay where pruning put them: only the kept weights learn.
                finetune = distill(m, self.loaded.model, opts.finetune, self.preprocess, self.reporter,
                                   masks=masks_of(m))
            self._pruned[key] = (m, warnings, finetune)
        return self._pruned[key][0]

    def pruned_float_warnings(self, opts: CompressionOptions) -> list[str]:
        self.pruned_float(opts)
        return list(self._pruned[self._pruned_key(opts)][1])

    def pruned_float_finetune(self, opts: CompressionOptions) -> FinetuneRecord | None:
        self.pruned_float(opts)
        return self._pruned[self._pruned_key(opts)][2]

    def slimmed(self, opts: CompressionOptions) -> "SlimModel":
        """The channel-pruned, recovered float model for ``opts.channels`` (shared: do not modify it)."""
        from exporter.compress.slim import slim

        key = (opts.channels, opts.finetune)
        if key not in self._slimmed:
            self._slimmed[key] = slim(self.loaded.model, self.calib_images, self.obs_images, self.held_out_images,
                                      opts, self.preprocess, self.calib_source == "synthetic", self.reporter)
        return self._slimmed[key]

    def calibrated_model(self, model: nn.Module) -> nn.Module:
        """A prepared copy of the float ``model`` (equalized first when the options ask), calibrated."""
        equalization = None
        if self.calibration.equalize:
            model = copy.deepcopy(model)
            equalization = equalize(model)
            self.reporter.say(f"equalization: {equalization.pairs} conv pairs in {equalization.seconds:.1f} s"
                              if equalization.pairs else f"equalization: nothing equalized, {equalization.note}")
        prepared = quantize.prepare_for_calibration(model, self.calib_method.value,
                                                    reduce_range=self.calibration.reduce_range)
        quantize.calibrate(prepared, batches(self.calib_images, self.calibration.batch))
        self._equalization[id(prepared)] = equalization
        return prepared

    def equalization_of(self, prepared: nn.Module) -> EqualizationRecord | None:
        """The equalization record of a model :meth:`calibrated_model` prepared (None: not asked for)."""
        return self._equalization.get(id(prepared))

    @property
    def dense_macs(self) -> int:
        """Multiply-accumulates per image of the loaded model: what every variant with its structure runs."""
        if self._dense_macs is None:
            from exporter.compress.channels import count_macs_and_params

            self._dense_macs = count_macs_and_params(self.loaded.model, self.calib_images[:1])[0]
        return self._dense_macs

    def calibrated(self, pruned_first: bool, opts: CompressionOptions | None = None) -> nn.Module:
        """A prepared (observed) model calibrated on the calibration images (shared: do not modify it).

        ``pruned_first``: calibrated on the float model pruned at ``opts``, so the
        activation ranges are those of the pruned network.
        """
        opts = opts or self.compression
        key = (True, *self._pruned_key(opts)) if pruned_first else (False,)
        if key not in self._calibrated:
            src = self.pruned_float(opts) if pruned_first else self.loaded.model
            self._calibrated[key] = self.calibrated_model(src)
        return self._calibrated[key]

    def quantization_aware(self, prepared: nn.Module, opts: CompressionOptions
                           ) -> tuple[nn.Module, FinetuneRecord | None]:
        """The calibrated ``prepared`` model after QAT (exporter.compress.qat) when ``opts.qat`` asks for it,
        with its record; else ``prepared`` itself and None. Shared per calibrated model and settings."""
        if not opts.qat.enabled:
            return prepared, None
        # The calibrated models are held by this recipe's caches, so their ids stay unique while it lives.
        key = (id(prepared), opts.qat, opts.finetune)
        if key not in self._qat:
            from exporter.compress.qat import qat

            self._qat[key] = qat(prepared, self.loaded.model, quantize.quantizable_layers(prepared),
                                 opts.qat_finetune, self.preprocess, self.reporter)
        return self._qat[key]

    # --- records ----------------------------------------------------------------
    def correct_bias(self, model: nn.Module, reference: nn.Module) -> BiasCorrectionRecord | None:
        """Bias-correct the converted ``model`` in place towards ``reference`` (the calibrated prepared model of
        the float network it should match) on the calibration images; None when the options say none."""
        mode = self.calibration.bias_correction
        if mode is BiasCorrection.NONE:
            return None
        rec = correct_bias(model, reference, self.calib_images, mode, self.calibration.batch)
        over = f" ({len(rec.skipped)} left as they were: shift over the threshold)" if rec.skipped else ""
        self.reporter.say(f"bias correction ({rec.mode}): {rec.layers} of {rec.layers + len(rec.skipped)} INT8 layers "
                          f"corrected on {rec.images} images in {rec.seconds:.1f} s{over}")
        # The correction measures the converted model on this CPU: where its kernels are not the target's (8-bit
        # activations without VNNI), the shifts also absorb this CPU's saturation, which the target's CPUs and
        # every ONNX runtime do not have. Said and recorded, not hidden.
        risk = get_target(self.calibration.target).risk_on(tuple(host_cpu.int8_kernel_flags()))
        if risk:
            rec = dataclasses.replace(rec, outside_target=risk)
            self.reporter.say(f"⚠ bias correction ran on INT8 kernels outside the target's class ({risk}); "
                              f"build on a CPU of the class, or with --target native for this one")
        return rec

    def quant_record(self, keep: tuple[str, ...], model: nn.Module, bias: BiasCorrectionRecord | None = None,
                     qat: FinetuneRecord | None = None, equalization: EqualizationRecord | None = None
                     ) -> QuantRecord:
        """The record of an INT8 ``model`` built with ``keep`` FP32: its lane and what runs float in it."""
        return QuantRecord(backend=QUANT_BACKEND, scheme=quant_scheme(self.calibration.target),
                           calib_method=self.calib_method.value, reduce_range=self.calibration.reduce_range,
                           target=self.calibration.target, bias_correction=bias, qat=qat,
                           equalization=equalization,
                           calib_source=self.calib_source, calib_images=int(len(self.calib_images)),
                           keep_float=list(keep), lane=quant_lanes.lane_of(model).name,
                           float_ops=quantize.float_ops(model, self.calib_images[:1]))

    # --- building ---------------------------------------------------------------
    def build(self, spec: VariantSpec, opts: CompressionOptions | None = None) -> BuiltVariant:
        """Build ``spec`` with ``opts`` (default: this recipe's compression options)."""
        built = get_builder(spec.builder).build(self, spec.params, opts or self.compression)
        if built.macs is None:
            built.macs = self.dense_macs
        return built

    def build_named(self, variant: str, opts: CompressionOptions) -> BuiltVariant:
        return self.build(get_variant(variant), opts)
