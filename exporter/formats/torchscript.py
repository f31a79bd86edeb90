"""TorchScript: traced and frozen (``.pt``), loadable with plain ``torch.jit.load`` and by libtorch."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from exporter.builders.base import BuiltVariant
from exporter.formats.base import register_format
from runtimes.manifest import Format
from runtimes.records import atomic_write_bytes


def write_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Trace, freeze and save."""
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval(), example, check_trace=False)
        frozen = torch.jit.freeze(traced)
    buf = io.BytesIO()
    torch.jit.save(frozen, buf)
    atomic_write_bytes(path, buf.getvalue())


@register_format
class TorchScriptWriter:
    name = Format.TORCHSCRIPT
    suffix = ".pt"
    description = "traced + frozen TorchScript"

    def write(self, built: BuiltVariant, example: torch.Tensor, path: Path) -> None:
        write_torchscript(built.model, example, path)
