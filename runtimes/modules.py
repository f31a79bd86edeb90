"""Tiny nn.Modules that artifacts and eager references are built from.

They live in ``runtimes`` so that unpickling an eager reference needs only
``runtimes`` (and torch/torchvision), never ``exporter``.
"""

from __future__ import annotations

import torch
from torch import nn


class Float32IO(nn.Module):
    """Runs ``inner`` in ``dtype`` but takes and returns float32.

    Every artifact has the same float32 interface, so every runtime feeds the
    same bytes; the cast is part of the graph (and of the measured latency).
    """

    def __init__(self, inner: nn.Module, dtype: torch.dtype = torch.float16) -> None:
        super().__init__()
        self.inner = inner
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.to(self.dtype)).float()
