"""Channel pruning: coupled channels removed together, the classifier untouched, counts rounded, the plan
recorded, and a model Torch-Pruning cannot follow named in one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from exporter.compress import channels
from exporter.errors import BadInputError
from runtimes import architectures


@pytest.fixture()
def small():
    torch.manual_seed(0)
    return architectures.build_float_model("resnet18", 4).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("criterion", channels.CRITERIA)
def test_half_the_channels_go_coupled_and_rounded(small, images, criterion):
    plan = channels.remove_channels(small, images, 0.5, 8, criterion)
    assert plan.criterion == criterion
    convs = {n: m for n, m in small.named_modules() if isinstance(m, nn.Conv2d)}
    for name, m in convs.items():
        assert m.out_channels % 8 == 0
        assert m.out_channels == plan.original[name] // 2, name
        kept = plan.kept[name]
        assert kept == sorted(set(kept)) and len(kept) == m.out_channels and max(kept) < plan.original[name]
    # the residual stream of a stage is one set of channels: every conv adding into it keeps the same ones
    assert plan.kept["conv1"] == plan.kept["layer1.0.conv2"] == plan.kept["layer1.1.conv2"]
    assert plan.kept["layer2.0.conv2"] == plan.kept["layer2.0.downsample.0"] == plan.kept["layer2.1.conv2"]
    assert small.fc.out_features == 4 and small.fc.in_features == 256  # classifier outputs untouched
    assert small(images).shape == (8, 4)


def test_rounding_keeps_multiples(small, images):
    channels.remove_channels(small, images, 0.3, 16, channels.MAGNITUDE)
    assert all(m.out_channels % 16 == 0 for m in small.modules() if isinstance(m, nn.Conv2d))


def test_zero_sparsity_changes_nothing(small, images):
    before = {k: v.clone() for k, v in small.state_dict().items()}
    plan = channels.remove_channels(small, images, 0.0, 8, channels.TAYLOR)
    assert plan.kept == {} and all(torch.equal(before[k], v) for k, v in small.state_dict().items())


def test_taylor_importance_uses_the_images(images):
    """Taylor scores come from gradients on the images: other images, other channels kept."""
    torch.manual_seed(0)
    a = architectures.build_float_model("resnet18", 4).eval()
    b = architectures.build_float_model("resnet18", 4).eval()
    b.load_state_dict(a.state_dict())
    other = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 3
    pa = channels.remove_channels(a, images, 0.5, 8, channels.TAYLOR)
    pb = channels.remove_channels(b, other, 0.5, 8, channels.TAYLOR)
    assert pa.kept != pb.kept


def test_macs_and_shapes(small, images):
    macs, params = channels.count_macs_and_params(small, images)
    channels.remove_channels(small, images, 0.5, 8, channels.MAGNITUDE)
    macs2, params2 = channels.count_macs_and_params(small, images)
    assert macs2 < macs / 3 and params2 < params / 3  # both sides of most convolutions halved
    shapes = channels.channel_shapes(small)
    assert shapes["layer1.0.conv1"] == [32, 32, 3, 3] and shapes["bn1"] == [32] and shapes["fc"] == [4, 256]


class Sliced(nn.Module):
    """Takes the *second* half of conv1's channels by index: an op a dependency graph cannot follow."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.conv2 = nn.Conv2d(16, 8, 3)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = self.conv1(x)[:, 16:]
        return self.fc(self.conv2(y).mean((2, 3)))


def test_a_model_it_cannot_follow_is_one_line_naming_the_layer(images):
    with pytest.raises(BadInputError) as err:
        channels.remove_channels(Sliced().eval(), images, 0.5, 8, channels.MAGNITUDE)
    message = str(err.value)
    assert "\n" not in message and "channel pruning cannot trace Sliced" in message and "conv" in message
