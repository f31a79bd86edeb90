import copy

import pytest
import torch
from torch import nn

from exporter.compress import magnitude, quantize
from exporter.errors import BadInputError
from runtimes import structure
from runtimes.quant_lanes import eager_mode
from runtimes.manifest import SparsityRecord
from runtimes.modules import Float32IO


TOL = 0.01


@pytest.fixture(scope="module")
def int8_model(float_model, batches):
    return quantize.quantize_static(float_model, batches)[0]


@pytest.fixture(scope="module")
def mixed_model(float_model, batches):
    return quantize.quantize_static(float_model, batches, keep=("fc",))[0]


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def _qparams(model):
    out = {}
    for w in magnitude.prunable_weights(model):
        qw = w.module.weight()
        out[w.name] = (qw.q_per_channel_scales().clone(), qw.q_per_channel_zero_points().clone(),
                       qw.q_per_channel_axis())
    return out


def _runs(model, x):
    with torch.no_grad():
        out = model(x)
    assert out.shape == (x.shape[0], 10)
    assert torch.isfinite(out).all()
    return out


def test_prunable_weights_of_each_kind(float_model, int8_model, mixed_model):
    floats = magnitude.prunable_weights(float_model)
    assert [w.name for w in floats][:2] == ["conv1", "layer1.0.conv1"]
    assert len(floats) == 21 and {w.kind for w in floats} == {"float"}
    # the conv inside a fused ConvReLU2d is named after its layer
    fused = magnitude.prunable_weights(eager_mode.fuse(copy.deepcopy(float_model)))
    assert [w.name for w in fused] == [w.name for w in floats]
    ints = magnitude.prunable_weights(int8_model)
    assert [w.name for w in ints] == [w.name for w in floats]
    assert {w.kind for w in ints} == {"int8"}
    mixed = {w.name: w.kind for w in magnitude.prunable_weights(mixed_model)}
    # the FP32 classifier of a mixed model is "fc", not its wrapper slot "fc.1"
    assert mixed["fc"] == "float" and mixed["layer1.0.conv1"] == "int8" and len(mixed) == 21


def test_int8_quantize_then_prune_global(int8_model, x):
    model = copy.deepcopy(int8_model)
    before = _qparams(model)
    params_before, nonzero_before = magnitude.count_params(model)
    weights = magnitude.prunable_weights(model)
    assert params_before == sum(w.module.weight().numel() + w.module.bias().numel() for w in weights)
    masks = magnitude.compute_masks(magnitude.l1_scores(weights), 0.5, "global")
    magnitude.apply_masks(weights, masks)

    for w, keep in zip(weights, masks):
        deq = w.module.weight().dequantize()
        assert torch.equal(deq[~keep], torch.zeros_like(deq[~keep]))  # exactly 0, not just small
        scales, zps, axis = before[w.name]
        qw = w.module.weight()
        assert torch.equal(qw.q_per_channel_scales(), scales)
        assert torch.equal(qw.q_per_channel_zero_points(), zps)
        assert qw.q_per_channel_axis() == axis
    record = magnitude.measure_sparsity(model, 0.5)
    assert isinstance(record, SparsityRecord)
    assert abs(record.achieved - 0.5) <= TOL
    assert record.total == sum(layer.total for layer in record.per_layer) > 11_000_000
    # global threshold: layers differ from each other
    assert max(lay.sparsity for lay in record.per_layer) - min(lay.sparsity for lay in record.per_layer) > 0.1
    # quantized weights and biases are counted although they are not parameters()
    params, nonzero = magnitude.count_params(model)
    nonzero_biases = sum(int(torch.count_nonzero(w.module.bias())) for w in weights)
    assert params == params_before
    assert nonzero == record.total - record.zeros + nonzero_biases < nonzero_before
    _runs(model, x)


def test_int8_layer_scope_prunes_every_layer(int8_model, x):
    model = copy.deepcopy(int8_model)
    before = model.layer3[0].conv2.weight().int_repr().clone()
    magnitude.prune_model(model, 0.3, scope="layer")
    after = model.layer3[0].conv2.weight().int_repr()
    changed = before != after
    assert changed.any()
    assert (after[changed] == 0).all()  # symmetric per-channel: the zero point is 0
    record = magnitude.measure_sparsity(model, 0.3)
    assert len(record.per_layer) == 21
    for layer in record.per_layer:
        assert abs(layer.sparsity - 0.3) <= TOL, layer
    assert abs(record.achieved - 0.3) <= TOL
    _runs(model, x)


def test_prune_then_quantize_keeps_zeros(float_model, batches, x):
    pruned = copy.deepcopy(float_model)
    magnitude.prune_model(pruned, 0.6, "global")
    assert abs(magnitude.measure_sparsity(pruned, 0.6).achieved - 0.6) <= TOL
    q, _ = quantize.quantize_static(pruned, batches)
    record = magnitude.measure_sparsity(q, 0.6)
    # BN folding scales whole output channels and symmetric quantization maps 0 to 0
    assert record.achieved >= 0.6 - TOL
    assert record.per_layer[0].name == "conv1"
    _runs(q, x)


def test_fp32_pruning_is_permanent(float_model, x):
    model = copy.deepcopy(float_model)
    magnitude.prune_model(model, 0.4, "global")
    for name, module in model.named_modules():
        assert not hasattr(module, "weight_orig"), name
        assert not hasattr(module, "weight_mask"), name
        assert not module._forward_pre_hooks, name
    assert isinstance(model.fc.weight, nn.Parameter)
    assert not any(k.endswith(("_orig", "_mask")) for k in model.state_dict())
    assert abs(magnitude.measure_sparsity(model, 0.4).achieved - 0.4) <= TOL
    _runs(model, x)


def test_fp16_pruning_in_float32io_wrapper(float_model):
    model = Float32IO(copy.deepcopy(float_model).half(), torch.float16).eval()
    magnitude.prune_model(model, 0.4, "layer")
    assert model.inner.fc.weight.dtype == torch.float16
    record = magnitude.measure_sparsity(model, 0.4)
    names = [layer.name for layer in record.per_layer]
    assert names[0] == "conv1" and names[-1] == "fc"  # "inner." prefix stripped
    for layer in record.per_layer:
        assert abs(layer.sparsity - 0.4) <= TOL, layer
    assert not any(m._forward_pre_hooks for m in model.modules())


def test_mixed_model_prunes_float_fc_and_int8_convs(mixed_model, x):
    model = copy.deepcopy(mixed_model)
    assert isinstance(model.fc[1], nn.Linear) and model.fc[1].weight.dtype == torch.float32
    magnitude.prune_model(model, 0.5, "layer")
    by_name = {layer.name: layer for layer in magnitude.measure_sparsity(model, 0.5).per_layer}
    assert abs(by_name["fc"].sparsity - 0.5) <= TOL
    assert abs(by_name["layer4.1.conv2"].sparsity - 0.5) <= TOL
    assert float((model.fc[1].weight == 0).float().mean()) == pytest.approx(0.5, abs=TOL)
    _runs(model, x)


@pytest.mark.parametrize("bad", [1.2, 1.0, -0.1])
def test_invalid_sparsity_is_bad_input(float_model, bad):
    with pytest.raises(BadInputError, match=r"--sparsity must be in \[0, 1\), got"):
        magnitude.prune_model(copy.deepcopy(float_model), bad)


def test_unknown_scope_is_bad_input(float_model):
    with pytest.raises(BadInputError, match="scope"):
        magnitude.compute_masks([torch.ones(3)], 0.5, "channel")


def test_zero_sparsity_is_a_no_op(int8_model):
    model = copy.deepcopy(int8_model)
    before = [w.module.weight().int_repr().clone() for w in magnitude.prunable_weights(model)]
    magnitude.prune_model(model, 0.0)
    after = [w.module.weight().int_repr() for w in magnitude.prunable_weights(model)]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_global_masks_use_one_threshold():
    scores = [torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([[0.5, 5.0], [6.0, 0.1]])]
    masks = magnitude.compute_masks(scores, 0.5, "global")
    assert masks[0].tolist() == [False, False, True, True]
    assert masks[1].tolist() == [[False, True], [True, False]]
    layer = magnitude.compute_masks(scores, 0.5, "layer")
    assert layer[1].tolist() == [[False, True], [True, False]] and layer[0].sum() == 2


def test_count_params_of_a_float_model(float_model):
    total, nonzero = magnitude.count_params(float_model)
    assert total == sum(p.numel() for p in float_model.parameters())
    assert nonzero == sum(int(torch.count_nonzero(p)) for p in float_model.parameters())
    assert nonzero < total  # BN biases start at 0


def test_per_tensor_int8_weight_with_nonzero_zero_point():
    import torch.ao.nn.quantized as nnq

    structure.set_quantized_engine()
    lin = nnq.Linear(8, 4)
    w = torch.quantize_per_tensor(torch.randn(4, 8, generator=torch.Generator().manual_seed(4)),
                                  0.05, 3, torch.qint8)
    lin.set_weight_bias(w, torch.zeros(4))
    before = lin.weight()  # as packed (the scale is stored as float32)
    magnitude.prune_model(lin, 0.5, "layer")
    after = lin.weight()
    assert after.qscheme() == torch.per_tensor_affine
    assert (after.q_scale(), after.q_zero_point()) == (before.q_scale(), 3)
    assert int((after.dequantize() == 0).sum()) == 16
    assert int((after.int_repr() == 3).sum()) == 16
    assert magnitude.measure_sparsity(lin, 0.5).achieved == 0.5
