"""The ``auto`` variant: the most compressed INT8 model within an accuracy budget.

1. Rank layers by how much INT8 alone costs them (layer sensitivity), using the one
   calibrated model: no re-calibration per candidate (``quantize.with_float_layers``).
2. Keep the most sensitive layers FP32, one at a time, until INT8 is within budget.
3. Then take the highest sparsity that stays within budget.

The best artifact found is always built, even when the budget cannot be met;
the decisions (and whether the budget was met) go into the manifest.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from exporter.analysis.sensitivity import layer_sensitivity
from exporter.builders.base import BuildContext, BuilderParams, BuiltVariant, register_builder
from exporter.builders.quantized import build_int8
from exporter.compress import magnitude, quantize
from exporter.errors import BadInputError
from exporter.evaluation import EvalSet, accuracy, model_logits
from exporter.options import CompressionOptions
from runtimes.manifest import PruneOrder
from runtimes.records import to_jsonable

SPARSITY_LADDER = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


@dataclass(frozen=True)
class BudgetParams(BuilderParams):
    prune: bool = True
    sparsity_ladder: tuple[float, ...] = SPARSITY_LADDER  # tried from the top down


@dataclass(frozen=True)
class AutoStep:
    keep_float: list[str]
    sparsity: float
    top1: float
    drop: float
    within_budget: bool


@dataclass(frozen=True)
class AutoDecision:
    max_accuracy_drop: float
    fp32_top1: float
    keep_float: list[str]
    sparsity: float
    top1: float
    drop: float
    budget_met: bool
    message: str
    ranking: list[str]
    eval_images: int
    eval_source: str
    seconds: float
    steps: list[AutoStep] = field(default_factory=list)
    # The search measures magnitude-pruned candidates (seconds each); the chosen one is then built with
    # the configured method (OBS reconstruction is usually the more accurate) and measured again: where that
    # build misses the budget the measured magnitude candidate is built instead. ``built_*`` is the artifact's.
    search_method: str = "magnitude"
    built_method: str = ""
    built_top1: float | None = None


def search(ctx: BuildContext, ev: EvalSet | None, max_drop: float, opts: CompressionOptions,
           ladder: tuple[float, ...] = SPARSITY_LADDER) -> BuiltVariant:
    if ev is None or ev.labels is None:
        raise BadInputError("the auto variant needs labelled --eval-data to measure accuracy against its budget")
    if max_drop < 0:
        raise BadInputError(f"--max-accuracy-drop must be >= 0, got {max_drop}")
    say = ctx.reporter.say
    t0 = time.perf_counter()
    # The search evaluates quantize-then-prune candidates on the one cached calibration.
    opts = dataclasses.replace(opts, order=PruneOrder.QUANTIZE_THEN_PRUNE)
    prepared = ctx.calibrated(False, opts)
    float_model = ctx.loaded.model
    fp32_top1 = accuracy(model_logits(float_model, ev.images), ev.labels)[0]
    say(f"auto: FP32 top-1 {fp32_top1:.2f}% on {len(ev.images)} images; budget {max_drop:.2f} points")
    sens = layer_sensitivity(float_model, prepared, ev, 0.0, say=say, with_pruning=False)
    ranking = [r.layer for r in sens.layers]
    steps: list[AutoStep] = []

    def trial(keep: list[str], sparsity: float) -> AutoStep:
        model = quantize.convert(quantize.with_float_layers(prepared, keep) if keep else prepared)
        if sparsity > 0:
            magnitude.prune_model(model, sparsity, opts.scope.value)
        top1 = accuracy(model_logits(model, ev.images), ev.labels)[0]
        step = AutoStep(list(keep), sparsity, top1, fp32_top1 - top1, fp32_top1 - top1 <= max_drop)
        steps.append(step)
        say(f"auto: {len(keep)} layers FP32, sparsity {sparsity:.0%}: top-1 {top1:.2f}% "
            f"(drop {step.drop:+.2f}){' within budget' if step.within_budget else ''}")
        return step

    keep: list[str] = []
    best = trial(keep, 0.0)
    for layer in ranking:
        if best.within_budget:
            break
        keep = keep + [layer]
        step = trial(keep, 0.0)
        if step.drop < best.drop or step.within_budget:
            best = step
    chosen = best
    if best.within_budget:
        for s in ladder:
            step = trial(best.keep_float, s)
            if step.within_budget:
                chosen = step
                break
        message = (f"budget met: {len(chosen.keep_float)} layers kept FP32, sparsity {chosen.sparsity:.0%}, "
                   f"top-1 {chosen.top1:.2f}% (drop {chosen.drop:.2f} <= {max_drop:.2f})")
    else:
        message = (f"BUDGET NOT MET: the best found drops {best.drop:.2f} points (budget {max_drop:.2f}) with "
                   f"{len(best.keep_float)} layers kept FP32 and no pruning; saved anyway as the best effort")
    say(f"auto: {message}")
    final_opts = dataclasses.replace(opts, sparsity=chosen.sparsity)
    if opts.method.value != AutoDecision.search_method:
        say(f"auto: building the chosen candidate with --prune-method {opts.method.value}")
    built = build_int8(ctx, tuple(chosen.keep_float), True, final_opts)
    built_top1 = accuracy(model_logits(built.model, ev.images), ev.labels)[0]
    method = opts.method
    if chosen.within_budget and fp32_top1 - built_top1 > max_drop and method.value != AutoDecision.search_method:
        # Never save an artifact the search did not see within budget: the measured candidate instead.
        say(f"auto: the {method.value} build reads {built_top1:.2f}% (drop {fp32_top1 - built_top1:.2f} > "
            f"{max_drop:.2f}); building the measured {AutoDecision.search_method} candidate instead")
        method = type(opts.method)(AutoDecision.search_method)
        built = build_int8(ctx, tuple(chosen.keep_float), True, dataclasses.replace(final_opts, method=method))
        built_top1 = accuracy(model_logits(built.model, ev.images), ev.labels)[0]
    met = chosen.within_budget and fp32_top1 - built_top1 <= max_drop
    if chosen.within_budget and not met:
        message = (f"BUDGET NOT MET by the built artifact: {built_top1:.2f}% (drop {fp32_top1 - built_top1:.2f} > "
                   f"{max_drop:.2f}), though its search candidate read {chosen.top1:.2f}%")
        say(f"auto: {message}")
    decision = AutoDecision(max_drop, fp32_top1, chosen.keep_float, chosen.sparsity, chosen.top1, chosen.drop,
                            met, message, ranking, int(len(ev.images)), ev.source,
                            time.perf_counter() - t0, steps, built_method=method.value, built_top1=built_top1)
    built.decisions.update(to_jsonable(decision))
    return built


@register_builder
class BudgetedInt8Builder:
    name = "budgeted-int8"
    params_type = BudgetParams
    quantizes = True
    needs_eval = True
    sweepable = False

    def build(self, ctx: BuildContext, params: BudgetParams, opts: CompressionOptions) -> BuiltVariant:
        return search(ctx, ctx.eval_set, ctx.max_accuracy_drop, opts, params.sparsity_ladder)
