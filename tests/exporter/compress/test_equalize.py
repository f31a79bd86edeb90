"""Cross-layer equalization: the function is kept, the ranges of each pair are made equal, and a model without
equalizable pairs is left alone with the reason recorded."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from exporter.compress import equalize as eq
from exporter.compress.batchnorm import recalibrate_batchnorm
from runtimes import architectures


@pytest.mark.parametrize("arch", ["mobilenet_v2", "mnasnet0_5"])  # the eager lane's and an FX-lane family
def test_the_function_is_kept_and_each_pair_is_equal(arch):
    torch.manual_seed(0)
    model = architectures.build_float_model(arch, 4).eval()
    x = torch.randn(6, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    recalibrate_batchnorm(model, x)
    with torch.no_grad():
        before = model(x)
    rec = eq.equalize(model)
    with torch.no_grad():
        after = model(x)
    assert rec.pairs >= 16 and rec.note is None and rec.max_log_scale < 1e-3
    assert float((after - before).abs().max() / before.abs().max()) < 1e-4
    modules = dict(model.named_modules())
    pairs, _ = eq.equalizable_pairs(model)
    depthwise = 0
    for a, b, c in pairs:
        r1, r2 = eq._row_ranges(modules[a], modules[b] if b else None), eq._column_ranges(modules[c])
        live = (r1 > 1e-6) & (r2 > 1e-6)
        torch.testing.assert_close(r1[live], r2[live], rtol=1e-4, atol=1e-6)
        depthwise += modules[c].groups > 1
    assert depthwise > 0  # the depthwise-separable stacks are covered, not only 1x1 → 1x1


def test_no_equalizable_pairs_is_said_and_nothing_changes():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.SiLU(), nn.Conv2d(8, 4, 1)).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rec = eq.equalize(model)
    assert rec.pairs == 0 and "no equalizable pairs" in rec.note and "SiLU" in rec.note
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_a_shared_output_ends_the_chain():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.bn, self.relu = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()
            self.b, self.c = nn.Conv2d(8, 4, 1), nn.Conv2d(8, 4, 1)

        def forward(self, x):
            y = self.relu(self.bn(self.a(x)))
            return self.b(y) + self.c(y)

    assert eq.equalizable_pairs(Branchy().eval())[0] == []
