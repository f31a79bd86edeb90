"""OBS reconstruction: better than magnitude, exact sparsity, no empty layer, INT8 grid kept, robust numerics."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from exporter.compress import magnitude, obs, quantize
from exporter.evaluation import model_logits
from runtimes import architectures
from runtimes.metrics import sqnr_db

TOL = 0.01


@pytest.fixture(scope="module")
def images():
    """Correlated, smooth inputs (what OBS exploits and magnitude ignores), 32x32."""
    g = torch.Generator().manual_seed(5)
    coarse = torch.randn(48, 3, 4, 4, generator=g)
    return nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear") + 0.1 * torch.randn(48, 3, 32, 32,
                                                                                                   generator=g)


def _layer_error(layer: nn.Linear, pruned: nn.Linear, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((layer(x) - pruned(x)) ** 2).mean())


def test_obs_beats_magnitude_on_one_layer():
    g = torch.Generator().manual_seed(0)
    # 64 features that live near a 16-dimensional subspace: redundant inputs, whose weights OBS can fold
    # into the kept ones while magnitude just drops them
    x = torch.randn(512, 16, generator=g) @ torch.randn(16, 64, generator=g) + 0.05 * torch.randn(512, 64, generator=g)
    layer = nn.Linear(64, 32)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(32, 64, generator=g))
    acc = obs.HessianAccumulator(layer, 64)
    acc.add(x)
    W, keep, damp, dead, _ = obs.obs_prune_matrix(layer.weight.detach(), acc.H, 0.5)
    reconstructed = copy.deepcopy(layer)
    with torch.no_grad():
        reconstructed.weight.copy_(torch.where(keep, W, torch.zeros_like(W)))
    mag = copy.deepcopy(layer)
    magnitude.prune_model(mag, 0.5, "layer")
    assert float((~keep).float().mean()) == 0.5 and damp == obs.REL_DAMP and dead == 0
    assert _layer_error(layer, reconstructed, x) < 0.2 * _layer_error(layer, mag, x)


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.slow  # OBS over every layer of resnet18
def test_achieved_sparsity_is_exact_and_no_layer_is_emptied(images, scope):
    torch.manual_seed(0)
    model = architectures.build_float_model("resnet18", 10)
    ref = model_logits(model, images)
    pruned = copy.deepcopy(model)
    report = obs.reconstruct(pruned, images, 0.7, scope)
    rec = magnitude.measure_sparsity(pruned, 0.7)
    assert abs(rec.achieved - 0.7) <= TOL
    assert all(layer.sparsity < 0.99 for layer in rec.per_layer)
    assert len(report.layers) == 21 and report.notes() == []
    by_magnitude = copy.deepcopy(model)
    magnitude.prune_model(by_magnitude, 0.7, scope)
    assert sqnr_db(ref, model_logits(pruned, images)) > sqnr_db(ref, model_logits(by_magnitude, images)) + 3


@pytest.mark.slow  # OBS over every layer of resnet18
def test_int8_weights_are_pruned_inside_their_grid(images):
    torch.manual_seed(0)
    model = architectures.build_float_model("resnet18", 10)
    q, _ = quantize.quantize_static(model, [images[:16]], "minmax")
    before = {w.name: w.module.weight() for w in magnitude.prunable_weights(q)}
    obs.reconstruct(q, images, 0.5, "layer")
    assert abs(magnitude.measure_sparsity(q, 0.5).achieved - 0.5) <= TOL
    changed = kept = 0
    for w in magnitude.prunable_weights(q):
        old, new = before[w.name], w.module.weight()
        assert torch.equal(old.q_per_channel_scales(), new.q_per_channel_scales())
        assert torch.equal(old.q_per_channel_zero_points(), new.q_per_channel_zero_points())
        zero = new.int_repr() == new.q_per_channel_zero_points().reshape(-1, *[1] * (new.dim() - 1))
        assert 0.45 < float(zero.float().mean()) < 0.56  # pruned integers sit at the zero point
        changed += int((old.int_repr()[~zero] != new.int_repr()[~zero]).sum())
        kept += int((~zero).sum())
    # kept integers took the compensation (where it moved them by half a step or more) and stayed in range
    assert changed > 0.05 * kept


def test_sparsity_zero_is_a_no_op(images):
    model = architectures.build_float_model("resnet18", 10)
    state = copy.deepcopy(model.state_dict())
    report = obs.reconstruct(model, images, 0.0, "global")
    assert report.layers == [] and all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


@pytest.mark.slow  # OBS over every layer of resnet18
def test_dead_inputs_never_give_nan(images):
    """A layer whose inputs are always zero (dead channels) in part or in full."""
    model = architectures.build_float_model("resnet18", 10)
    with torch.no_grad():
        model.layer1[0].conv2.weight[:32] = 0.0  # half of layer1.0.conv2's outputs are always zero ...
        model.layer1[0].bn2.weight[:32] = 0.0
        model.layer1[0].bn2.bias[:32] = -1.0  # ... and after ReLU stay zero
        model.conv1.weight.zero_()  # conv1's output is constant: every later layer's input is too
    obs.reconstruct(model, images, 0.5, "global")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert np.isfinite(model_logits(model, images)).all()


def test_a_cholesky_failure_falls_back_to_more_damping():
    H = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)  # indefinite: eigenvalues -1 and 3
    W, keep, damp, dead, loss = obs.obs_prune_matrix(torch.tensor([[1.0, -1.0]]), H, 0.5)
    assert damp > obs.REL_DAMP and torch.isfinite(W).all() and int((~keep).sum()) == 1
    report = obs.ReconstructionReport(layers=[obs.LayerResult("fc", 0.5, damp, 0, loss)])
    assert report.notes() == [f"fc: Cholesky of H needed damping {damp:g} (relative) instead of 0.01"]


@pytest.mark.slow  # OBS over every layer of resnet18
def test_an_identical_leading_model_is_reused(images):
    """mixed shares int8's body: reusing its reconstruction gives exactly what reconstructing again gives."""
    torch.manual_seed(0)
    model = architectures.build_float_model("resnet18", 10)
    prepared = quantize.prepare_for_calibration(model, "minmax")
    quantize.calibrate(prepared, [images[:16]])
    int8 = quantize.convert(prepared)
    first = obs.reconstruct(int8, images, 0.5, "layer")
    mixed_a = quantize.convert(quantize.with_float_layers(prepared, ["fc"]))
    mixed_b = copy.deepcopy(mixed_a)
    again = obs.reconstruct(mixed_a, images, 0.5, "layer", known=first.results)
    fresh = obs.reconstruct(mixed_b, images, 0.5, "layer")
    assert again.reused == 20 and len(again.layers) == 1 and fresh.reused == 0
    for a, b in zip(magnitude.prunable_weights(mixed_a), magnitude.prunable_weights(mixed_b)):
        wa = a.module.weight() if a.kind == "int8" else a.module.weight
        wb = b.module.weight() if b.kind == "int8" else b.module.weight
        assert torch.equal(wa.int_repr() if a.kind == "int8" else wa, wb.int_repr() if b.kind == "int8" else wb)


def test_a_very_wide_layer_gets_a_block_diagonal_hessian(monkeypatch):
    """Above MAX_H_COLUMNS inputs (VGG's 25088-input classifier) H is split into blocks of inputs: still the
    exact sparsity, still far better than magnitude, in float and inside the INT8 grid."""
    monkeypatch.setattr(obs, "MAX_H_COLUMNS", 24)  # 64 inputs -> 4 blocks of 16 (64 % 3 != 0)
    g = torch.Generator().manual_seed(0)
    # each block of 16 inputs lives near a 4-dimensional subspace: redundancy a block-diagonal H can use
    x = torch.cat([torch.randn(512, 4, generator=g) @ torch.randn(4, 16, generator=g) for _ in range(4)], 1)
    x = x + 0.05 * torch.randn(512, 64, generator=g)
    model = nn.Sequential(nn.Linear(64, 32))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(32, 64, generator=g))
    assert obs._layout(model[0]) == (1, 4)
    reconstructed, mag = copy.deepcopy(model), copy.deepcopy(model)
    obs.reconstruct(reconstructed, x, 0.5, "layer")
    magnitude.prune_model(mag, 0.5, "layer")
    assert float((reconstructed[0].weight == 0).float().mean()) == 0.5
    assert _layer_error(model[0], reconstructed[0], x) < 0.5 * _layer_error(model[0], mag[0], x)
