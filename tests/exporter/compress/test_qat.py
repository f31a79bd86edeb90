"""Label-free QAT: the fake-quantized student computes what its INT8 conversion will, trains with its zeros
held, and converts through the lane as PTQ does."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn.utils import parametrize

from exporter.compress import qat, quantize
from exporter.compress.batchnorm import recalibrate_batchnorm
from exporter.compress.magnitude import prune_model
from exporter.errors import BadInputError
from exporter.options import CompressionOptions, FinetuneOptions, QatOptions
from runtimes import architectures, host_cpu, metrics, targets
from runtimes.architectures import Preprocess
from tests.support import trained

PRE = Preprocess(resize=32, crop=32, mean=trained.MEAN, std=trained.STD)
LANE_MODELS = {"eager": "resnet18", "fx": "mnasnet0_5"}


@pytest.fixture(scope="module", params=[(lane, t.name) for lane in sorted(LANE_MODELS) for t in targets.targets()],
                ids=lambda p: "-".join(p))
def calibrated(request):
    lane, target = request.param
    torch.manual_seed(0)
    model = architectures.build_float_model(LANE_MODELS[lane], 4).eval()
    images = torch.randn(32, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    recalibrate_batchnorm(model, images)
    prepared = quantize.prepare_for_calibration(model, "histogram", reduce_range=targets.get_target(target).reduce_range)
    quantize.calibrate(prepared, [images[:16], images[16:]])
    return model, prepared, images


def test_the_student_computes_what_the_int8_model_will(calibrated, request):
    _, prepared, images = calibrated
    target = targets.get_target(request.node.callspec.params["calibrated"][1])
    if target.risk_on(tuple(host_cpu.int8_kernel_flags())):
        # What fbgemm computes here is not what the target's CPUs compute: no student could match it.
        pytest.skip(f"fbgemm's INT8 kernels on this CPU may saturate {target.name}'s 8-bit activations")
    layers = quantize.quantizable_layers(prepared)
    student = qat.fake_quantized(prepared, layers)
    int8 = quantize.convert(prepared)
    with torch.no_grad():
        fq, q, f = student(images).numpy(), int8(images).numpy(), prepared(images).numpy()
    # Much closer to INT8 than the float model is: the same grids, only the kernels' rounding order differs.
    assert metrics.sqnr_db(q, fq) > metrics.sqnr_db(q, f) + 6.0, (metrics.sqnr_db(q, fq), metrics.sqnr_db(q, f))


def test_made_plain_gives_back_the_prepared_model(calibrated):
    _, prepared, images = calibrated
    layers = quantize.quantizable_layers(prepared)
    plain = qat.made_plain(qat.fake_quantized(prepared, layers))
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    assert not any("forward" in vars(m) or "train" in vars(m) for m in plain.modules())
    with torch.no_grad():
        torch.testing.assert_close(plain(images), prepared(images))
    # ... and it converts to the same INT8 model as the untouched one
    a, b = quantize.convert(plain), quantize.convert(prepared)
    with torch.no_grad():
        torch.testing.assert_close(a(images), b(images))


def test_qat_trains_with_the_zeros_held_and_converts(calibrated, shapes):
    model, _, _ = calibrated
    pruned = copy.deepcopy(model)
    prune_model(pruned, 0.5, "layer")
    images = trained.load_tensors(shapes["train"], 32)[0][:32]
    prepared = quantize.prepare_for_calibration(pruned, "histogram")
    quantize.calibrate(prepared, [images])
    layers = quantize.quantizable_layers(prepared)
    before = {n: p.detach().clone() for n, p in prepared.named_parameters()}
    trained_prepared, record = qat.qat(prepared, model, layers, FinetuneOptions(shapes["train"], epochs=1, seed=0,
                                                                                 images=64, lr=0.0005), PRE)
    assert record.epochs == 1 and record.images == 64 and record.masked_layers > 0
    assert all(torch.equal(p, before[n]) for n, p in prepared.named_parameters())  # the input is untouched
    changed = 0
    for name, p in trained_prepared.named_parameters():
        zeros = before[name] == 0
        if name.endswith("weight") and p.dim() > 1:
            assert bool((p[zeros] == 0).all()), name  # pruned weights stay exactly zero
        changed += int(not torch.equal(p, before[name]))
    assert changed > 0
    int8 = quantize.convert(trained_prepared)
    w = next(m.weight() for m in int8.modules() if hasattr(m, "weight") and callable(m.weight))
    assert w.is_quantized and bool((w.int_repr() == 0).any())


def test_options(shapes):
    with pytest.raises(BadInputError, match="--qat-epochs must be a whole number >= 0"):
        QatOptions(-1)
    with pytest.raises(BadInputError, match="--qat-epochs needs --finetune-data"):
        CompressionOptions(qat=QatOptions(2))
    with pytest.raises(BadInputError, match="--qat-lr must be a number > 0"):
        QatOptions(2, -1e-3)
    opts = CompressionOptions(finetune=FinetuneOptions(shapes["train"], seed=3), qat=QatOptions(2))
    assert opts.qat_finetune.epochs == 2 and opts.qat_finetune.lr == QatOptions.lr and opts.qat_finetune.seed == 3
