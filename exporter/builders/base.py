"""What a variant builder is, what it returns, and the builder registry.

A builder turns the loaded float model into one variant's eager module, by
composing the steps of :mod:`exporter.compress.quantize` and :mod:`exporter.compress.magnitude`, and
records what it did. It gets everything shared (the model, the calibration
images, cached calibrations, the eval set) from a :class:`BuildContext`
(implemented by :class:`exporter.recipe.Recipe`), and its own typed parameters
from the variant's record. This module imports no builder, so builders import
it and it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

import onnx
import torch
from torch import nn

from exporter.evaluation import EvalSet
from exporter.models import LoadedModel
from exporter.options import CompressionOptions
from exporter.progress import Reporter
from runtimes.errors import BadInputError
if TYPE_CHECKING:
    from exporter.compress.slim import SlimModel
from runtimes.manifest import (BiasCorrectionRecord, ChannelRecord, EqualizationRecord, FinetuneRecord, PruneRecord,
                               QuantRecord, SparsityRecord)


@dataclass(frozen=True)
class BuilderParams:
    """A builder's parameters; every builder's params say whether the variant is pruned."""

    prune: bool = False

    def compare_with(self) -> str | None:
        """The variant whose eager model this one is compared with; None: its own."""
        return None

    def order_matters(self) -> bool:
        """Whether ``--order`` (prune before or after the precision change) applies."""
        return False


@dataclass(frozen=True)
class Pt2eSource:
    """What the pt2e INT8 lane (:mod:`exporter.compress.pt2e`) quantizes for an INT8 variant's ``.pt2``: the
    recipe's float model (dense, pruned or slim) and the layers kept FP32; the calibration images are the run's."""

    float_model: nn.Module
    calib_images: torch.Tensor
    keep_float: tuple[str, ...] = ()
    reduce_range: bool = False  # 7-bit activations, for a target without VNNI (oneDNN sums int16 pairs there too)
    # The lane's result, computed once for every writer that needs it (.pt2, and ONNX with --int8-onnx-lane pt2e).
    _quantized: dict = field(default_factory=dict, compare=False, repr=False)

    def quantized(self, example: torch.Tensor):
        """The pt2e-quantized model (:class:`exporter.compress.pt2e.Pt2eModel`), built on first use."""
        if "model" not in self._quantized:
            from exporter.compress import pt2e

            self._quantized["model"] = pt2e.quantize(self.float_model, example, self.calib_images, self.keep_float,
                                                    self.reduce_range)
        return self._quantized["model"]


@dataclass
class BuiltVariant:
    model: nn.Module  # final eager module (float32 interface): the reference, TorchScript and ONNX source
    quant: QuantRecord
    pruning: PruneRecord
    sparsity: SparsityRecord
    params: int
    nonzero_params: int
    decisions: dict[str, Any] = field(default_factory=dict)
    # The module ONNX is exported from, when it is not ``model`` (FP16: its exact FP32 copy,
    # converted after export by ONNX Runtime's float16 tool), and the passes applied to the
    # exported graph in order.
    onnx_source: nn.Module | None = None
    onnx_passes: tuple[Callable[[onnx.ModelProto], onnx.ModelProto], ...] = ()
    warnings: list[str] = field(default_factory=list)  # recorded in the manifest and said on the console
    macs: int | None = None  # per image, as the dense kernels run it (the recipe fills in the dense model's)
    channels: ChannelRecord | None = None  # slim variants
    finetune: FinetuneRecord | None = None  # recovery by distillation, when it ran
    # INT8 variants: the pt2e lane's input, or why this variant has none (a peer's model, pruning inside the
    # INT8 grid, QAT). Float variants need neither: their ``model`` is exported as it is.
    pt2e: Pt2eSource | None = None
    pt2e_refusal: str | None = None


class BuildContext(Protocol):
    """What every builder may use; :class:`exporter.recipe.Recipe` implements it."""

    loaded: LoadedModel
    calib_images: torch.Tensor
    calib_source: str  # "synthetic" or the calibration folder
    reduce_range: bool  # 7-bit activations: what the deployment target needs (runtimes.targets)
    eval_set: EvalSet | None
    max_accuracy_drop: float
    reporter: Reporter

    def quant_record(self, keep: tuple[str, ...], model: nn.Module, bias: BiasCorrectionRecord | None = None,
                     qat: FinetuneRecord | None = None, equalization: EqualizationRecord | None = None
                     ) -> QuantRecord:
        """The record of the INT8 ``model`` built with the ``keep`` layers FP32 (lane, operators kept float)."""

    def quantization_aware(self, prepared: nn.Module, opts: CompressionOptions
                           ) -> tuple[nn.Module, FinetuneRecord | None]:
        """The calibrated ``prepared`` model after QAT when ``opts.qat`` asks for it (shared), and its record."""

    def correct_bias(self, model: nn.Module, reference: nn.Module) -> BiasCorrectionRecord | None:
        """Bias-correct the converted ``model`` in place towards the calibrated prepared ``reference``, as the
        options ask (None: not corrected)."""

    def prune(self, model: nn.Module, opts: CompressionOptions, label: str = "") -> list[str]:
        """Prune ``model`` in place with ``opts`` (method, scope, sparsity); returns warnings for the record."""

    def prune_record(self, prune_it: bool, opts: CompressionOptions, order: str | None) -> PruneRecord: ...

    def pruned_float(self, opts: CompressionOptions) -> nn.Module: ...

    def pruned_float_warnings(self, opts: CompressionOptions) -> list[str]: ...

    def pruned_float_finetune(self, opts: CompressionOptions) -> FinetuneRecord | None:
        """The distillation that recovered :meth:`pruned_float` (None when it did not run)."""

    def slimmed(self, opts: CompressionOptions) -> SlimModel:
        """The float model with ``opts.channels`` of its channels removed and recovered (shared)."""

    def calibrated_model(self, model: nn.Module) -> nn.Module:
        """A prepared (observed) copy of a float ``model`` calibrated on the calibration images."""

    def calibrated(self, pruned_first: bool, opts: CompressionOptions) -> nn.Module: ...

    def equalization_of(self, prepared: nn.Module) -> EqualizationRecord | None:
        """What cross-layer equalization did before ``prepared`` was calibrated (None: not asked for)."""

    def build_named(self, variant: str, opts: CompressionOptions) -> BuiltVariant: ...


class Builder(Protocol):
    name: ClassVar[str]
    params_type: ClassVar[type[BuilderParams]]
    quantizes: ClassVar[bool]  # needs the model's INT8 lane
    needs_eval: ClassVar[bool]  # needs labelled eval data (an accuracy budget)
    sweepable: ClassVar[bool]  # a sparsity sweep may build it at any sparsity

    def build(self, ctx: BuildContext, params: BuilderParams, opts: CompressionOptions) -> BuiltVariant: ...


_BUILDERS: dict[str, Builder] = {}


def register_builder(cls: type) -> type:
    """Class decorator: register one instance of a builder under its name."""
    if cls.name in _BUILDERS:
        raise ValueError(f"builder {cls.name!r} registered twice")
    _BUILDERS[cls.name] = cls()
    return cls


def get_builder(name: str) -> Builder:
    try:
        return _BUILDERS[name]
    except KeyError:
        raise BadInputError(f"unknown builder {name!r}; registered: {', '.join(_BUILDERS)}") from None
