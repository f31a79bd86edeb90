"""BatchNorm statistics re-estimated on images: after pruning, after a channel cut, and for random weights."""

from __future__ import annotations

import torch
from torch import nn


def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch: int = 32) -> int:
    """Re-estimate every BatchNorm's running statistics on ``images`` (cumulative average); returns how many.

    The images are shuffled (seeded) first: the average of per-batch variances is the variance of the
    whole set only when every batch is a sample of it, and a calibration subset comes ordered by class.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    saved = {m: m.momentum for m in bns}
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            for i in range(0, len(images), batch):
                model(images[order[i:i + batch]])
    finally:
        for m in bns:
            m.momentum = saved[m]
            m.eval()
    return len(bns)
