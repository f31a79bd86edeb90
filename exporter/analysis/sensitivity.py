"""Layer sensitivity: what each layer alone costs when quantized to INT8 or pruned.

For every prunable layer L:

* **quantize-only-L**: every other layer is kept FP32 (``quantize.with_float_layers``
  on the one calibrated model, so no re-calibration), L runs in INT8. The model's
  input quantization and the residual adds stay INT8 in every such model; that
  shared floor is the ``baseline`` model (every layer FP32, only those stubs), and
  quantization rows are measured against it, so each row shows L's own error.
* **prune-only-L**: the FP32 model with only L pruned at the chosen sparsity.

Each row reports output SQNR against the FP32 model (always) and top-1 (when
labelled eval data is given). Rows are ranked by the quantization loss, which is
the order the ``auto`` variant keeps layers in FP32.
"""

from __future__ import annotations

import copy
import time
from typing import Callable

import numpy as np
import torch

from exporter.analysis.records import LayerSensitivity, SensitivityReport
from exporter.compress import magnitude, quantize
from exporter.evaluation import EvalSet, accuracy, model_logits
from exporter.options import check_sparsity
from runtimes.metrics import sqnr_db

Say = Callable[[str], None]


def _score(logits: np.ndarray, ref: np.ndarray, ev: EvalSet, fp32_top1: float | None):
    sq = sqnr_db(ref, logits)
    if ev.labels is None:
        return sq, None, None
    top1 = accuracy(logits, ev.labels)[0]
    return sq, top1, fp32_top1 - top1


def quant_rank_key(row: LayerSensitivity) -> tuple:
    """Most sensitive first: the largest top-1 drop, then the lowest SQNR."""
    drop = row.quant_top1_drop if row.quant_top1_drop is not None else 0.0
    return (-drop, row.quant_sqnr_db)


def layer_sensitivity(float_model: torch.nn.Module, prepared: torch.nn.Module, ev: EvalSet,
                      sparsity: float, model_name: str = "", say: Say = lambda m: None,
                      with_pruning: bool = True,
                      prune_layer: Callable[[torch.nn.Module, str, float], None] | None = None) -> SensitivityReport:
    """``prepared`` is a calibrated prepared copy of ``float_model`` (see ``Recipe.calibrated``)."""
    t0 = time.perf_counter()
    check_sparsity(sparsity)
    ref = model_logits(float_model, ev.images)
    fp32_top1 = accuracy(ref, ev.labels)[0] if ev.labels is not None else None
    layers = quantize.quantizable_layers(prepared)
    everything_float = quantize.convert(quantize.with_float_layers(prepared, layers))
    base_logits = model_logits(everything_float, ev.images)
    base_sq, base_top1, _ = _score(base_logits, ref, ev, fp32_top1)
    weights = {w.name: w for w in magnitude.prunable_weights(float_model)}
    rows = []
    for i, name in enumerate(layers):
        say(f"sensitivity {i + 1}/{len(layers)}: {name}")
        only_q = quantize.convert(quantize.with_float_layers(prepared, [n for n in layers if n != name]))
        q_sq, q_top1, q_drop = _score(model_logits(only_q, ev.images), base_logits, ev, base_top1)
        p_sq, p_top1, p_drop = float("nan"), None, None
        if with_pruning:
            pruned = copy.deepcopy(float_model)
            if prune_layer is not None:  # e.g. OBS: this layer alone, reconstructed from calibration images
                prune_layer(pruned, _weight_name(name, weights), sparsity)
            else:
                target = [w for w in magnitude.prunable_weights(pruned) if w.name == _weight_name(name, weights)]
                magnitude.apply_masks(target, magnitude.compute_masks(magnitude.l1_scores(target), sparsity, "layer"))
            p_sq, p_top1, p_drop = _score(model_logits(pruned, ev.images), ref, ev, fp32_top1)
        n_params = int(weights[_weight_name(name, weights)].magnitudes().numel())
        rows.append(LayerSensitivity(name, n_params, q_sq, q_top1, q_drop, p_sq, p_top1, p_drop))
    rows.sort(key=quant_rank_key)
    return SensitivityReport(model_name, ev.source, int(len(ev.images)), sparsity, fp32_top1, base_sq,
                             base_top1, rows, time.perf_counter() - t0)


def _weight_name(layer: str, weights: dict) -> str:
    """Fused layer names (e.g. ``layer1.0.conv1``) are the conv's own name in the float model."""
    if layer in weights:
        return layer
    for cand in (f"{layer}.0", layer.removesuffix(".0")):
        if cand in weights:
            return cand
    raise KeyError(f"no prunable weight for layer {layer!r}")
