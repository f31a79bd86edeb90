"""Bias correction in both INT8 lanes: the mean shift goes, the integers stay."""

from __future__ import annotations

import copy

import pytest
import torch

from exporter.compress import bias_correction as bc
from exporter.compress import quantize
from exporter.compress.batchnorm import recalibrate_batchnorm
from runtimes import architectures
from runtimes.manifest import BiasCorrection

# One family per lane: ResNet-18 is torchvision's quantizable builder (eager), MNASNet goes through FX.
LANE_MODELS = {"eager": "resnet18", "fx": "mnasnet0_5"}


@pytest.fixture(scope="module", params=sorted(LANE_MODELS))
def quantized(request):
    """(float prepared model, converted INT8 model, images): 7-bit activations and 16 calibration images, so that
    there is a mean shift worth correcting."""
    torch.manual_seed(0)
    model = architectures.build_float_model(LANE_MODELS[request.param], 10).eval()
    images = torch.randn(48, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    recalibrate_batchnorm(model, images)  # BatchNorm statistics of these inputs: meaningful folded biases
    prepared = quantize.prepare_for_calibration(model, "minmax", reduce_range=True)
    quantize.calibrate(prepared, [images[:16]])
    return prepared, quantize.convert(prepared), images


def _pre_activation_means(model, names, images, quantized_model=False):
    """Per layer: the mean pre-activation per channel (the INT8 layer emulated in float, as the kernel computes it
    before rounding)."""
    out = {}
    modules = dict(model.named_modules())

    def hook(mod, args, result, name):
        if quantized_model:
            x = args[0].dequantize()
            y = bc._emulate(mod, x)
        else:
            y = result
        out[name] = y.mean(dim=[d for d in range(y.dim()) if d != 1])

    handles = []
    for n in names:
        target = modules[n] if quantized_model else bc._float_core(modules[n])
        handles.append(target.register_forward_hook(lambda m, a, r, n=n: hook(m, a, r, n)))
    with torch.no_grad():
        model(images)
    for h in handles:
        h.remove()
    return out


def _integers(model):
    return {n: (m.weight().int_repr().clone(), m.weight().q_per_channel_scales().clone())
            for n, m in bc.quantized_layers(model).items()}


@pytest.mark.parametrize("mode", [BiasCorrection.FULL, BiasCorrection.FAST])
def test_the_classifier_mean_moves_to_the_float_one_and_the_integers_stay(quantized, mode):
    prepared, converted, images = quantized
    q = copy.deepcopy(converted)
    layers = list(bc.quantized_layers(q))
    head = layers[-1]
    f_mean = _pre_activation_means(prepared, [head], images)[head]
    before = (_pre_activation_means(q, [head], images, quantized_model=True)[head] - f_mean).abs().mean()
    ints = _integers(q)
    rec = bc.correct_bias(q, prepared, images, mode)
    after = (_pre_activation_means(q, [head], images, quantized_model=True)[head] - f_mean).abs().mean()
    assert rec.mode == mode.value and rec.images == len(images) and rec.layers + len(rec.skipped) == len(layers)
    assert rec.layers > 0 and rec.max_abs_shift > 0 and rec.seconds >= 0
    tol = 1e-4 * max(1.0, float(f_mean.abs().max()))
    if head not in rec.skipped and mode is BiasCorrection.FULL:
        # On the INT8 model's own inputs, the last layer's mean is matched exactly.
        assert after < before and after < tol, (before, after)
    if head not in rec.skipped and mode is BiasCorrection.FAST:
        # Fast corrects each layer's own error: on FP32 inputs rounded to its input grid, its mean is matched.
        layers_q = bc.quantized_layers(q)
        qparams = bc._input_qparams(q, layers_q, images[:1])
        floats, own = bc._float_statistics(prepared, [head], images, 16, layers_q, qparams)
        assert (own[head] - floats[head]).abs().mean() < tol
    for name, (w, s) in _integers(q).items():  # only the float bias moved
        assert torch.equal(w, ints[name][0]) and torch.equal(s, ints[name][1]), name
    # the prepared model's observers saw nothing new (it is shared by other variants)
    assert torch.equal(_integers(quantize.convert(prepared))[head][0], ints[head][0])


def test_full_correction_reduces_the_mean_shift_of_the_output(quantized):
    prepared, converted, images = quantized
    q = copy.deepcopy(converted)
    with torch.no_grad():
        f = prepared(images)
        shift_before = (converted(images) - f).mean(0).abs().mean()
        bc.correct_bias(q, prepared, images, BiasCorrection.FULL)
        shift_after = (q(images) - f).mean(0).abs().mean()
    assert shift_after < shift_before


def test_a_zero_bias_is_left_alone_and_named():
    assert not bc._accept(BiasCorrection.FULL, torch.zeros(3), torch.tensor([0.1, 0.0, 0.0]))
    assert bc._accept(BiasCorrection.FULL, torch.ones(3), torch.full((3,), 5.0))
    assert not bc._accept(BiasCorrection.FAST, torch.ones(3), torch.full((3,), 5.0))  # NNCF's fast threshold: 2


def test_none_is_not_a_correction_and_no_images_is_an_error(quantized):
    prepared, converted, images = quantized
    with pytest.raises(ValueError):
        bc.correct_bias(copy.deepcopy(converted), prepared, images, BiasCorrection.NONE)
    from exporter.errors import ShrinkwrapError

    with pytest.raises(ShrinkwrapError, match="calibration images"):
        bc.correct_bias(copy.deepcopy(converted), prepared, images[:0], BiasCorrection.FULL)
