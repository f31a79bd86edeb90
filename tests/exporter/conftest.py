"""Fixtures shared by the compression-step tests (small resnet18, 64x64 batches)."""

import pytest
import torch

from runtimes import architectures


@pytest.fixture(scope="module")
def float_model():
    torch.manual_seed(0)
    return architectures.build_float_model("resnet18", 10)


@pytest.fixture(scope="module")
def batches():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(4, 3, 64, 64, generator=g) for _ in range(2)]
