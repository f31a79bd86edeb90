"""Least-squares refit: a layer whose inputs lost channels is refit to the unpruned outputs."""

from __future__ import annotations

import copy

import torch
from torch import nn

from exporter.compress import channels, refit
from exporter.compress.batchnorm import recalibrate_batchnorm
from runtimes import architectures


def _teacher_with_redundant_inputs() -> nn.Sequential:
    """conv1's last 8 output channels copy its first 8: removing the copies loses nothing a refit can't
    give back (conv2 can read the originals twice as strongly)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.Conv2d(16, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)).eval()
    with torch.no_grad():
        net[0].weight[8:] = net[0].weight[:8]
        for bn in (net[1], net[4]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
        net[1].running_mean[8:] = net[1].running_mean[:8]
        net[1].running_var[8:] = net[1].running_var[:8]
    return net


def _drop_inputs(student: nn.Sequential, keep: list[int]) -> None:
    c1, bn, c2 = student[0], student[1], student[3]
    c1.weight = nn.Parameter(c1.weight[keep].clone())
    c1.out_channels = len(keep)
    for attr in ("weight", "bias"):
        setattr(bn, attr, nn.Parameter(getattr(bn, attr)[keep].clone()))
    bn.running_mean, bn.running_var, bn.num_features = bn.running_mean[keep], bn.running_var[keep], len(keep)
    c2.weight = nn.Parameter(c2.weight[:, keep].clone())
    c2.in_channels = len(keep)


def test_redundant_channels_are_recovered_exactly():
    teacher = _teacher_with_redundant_inputs()
    student = copy.deepcopy(teacher)
    _drop_inputs(student, list(range(8)))
    x = torch.randn(16, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    assert refit.refittable(student, teacher) == ["3"]
    with torch.no_grad():
        err_before = float((student(x) - teacher(x)).pow(2).mean())
    result = refit.refit_layer(student, teacher, "3", torch.arange(8), x)
    with torch.no_grad():
        err_after = float((student(x) - teacher(x)).pow(2).mean())
    assert result.before > 0.1 and result.after < 1e-4  # the ridge (λ = 1e-3 of diag) leaves a trace
    assert err_before > 0.01 and err_after < 1e-5 * err_before


def test_refit_matches_normalised_outputs_after_batchnorm_re_estimation():
    """Statistics of the refit layer's BatchNorm re-estimated first (here: changed by hand, as re-estimation
    would): the refit targets what the teacher's BatchNorm outputs, under the student's own statistics."""
    teacher = _teacher_with_redundant_inputs()
    student = copy.deepcopy(teacher)
    _drop_inputs(student, list(range(8)))
    with torch.no_grad():
        student[4].running_mean.add_(0.3)
        student[4].running_var.mul_(2.5)
    x = torch.randn(32, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    refit.refit_layer(student, teacher, "3", torch.arange(8), x)
    with torch.no_grad():
        err = float((student(x) - teacher(x)).pow(2).mean())
        energy = float(teacher(x).pow(2).mean())
    assert err < 1e-5 * energy
    assert not torch.allclose(student[4].running_var, teacher[4].running_var)  # its statistics were kept


def test_following_batchnorm_pairs():
    m = architectures.build_float_model("resnet18", 4)
    assert refit.following_batchnorm(m, "conv1") is m.bn1
    assert refit.following_batchnorm(m, "layer2.0.downsample.0") is m.layer2[0].downsample[1]
    assert refit.following_batchnorm(m, "fc") is None


def test_refit_of_a_slim_resnet_lowers_every_layers_error():
    torch.manual_seed(0)
    teacher = architectures.build_float_model("resnet18", 4).eval()
    images = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    student = copy.deepcopy(teacher)
    plan = channels.remove_channels(student, images, 0.5, 8, channels.MAGNITUDE)
    layers, seconds = refit.refit(student, teacher, plan, images)
    assert [r.name for r in layers][-1] == "fc" and "conv1" not in [r.name for r in layers]  # stem inputs intact
    assert all(r.after <= r.before for r in layers) and seconds > 0
