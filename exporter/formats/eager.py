"""The eager reference: the variant's state_dict (``.eager.pt``), loaded weights-only by the eager runtime."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from exporter.builders.base import BuiltVariant
from exporter.formats.base import WriterSettings, register_format
from runtimes.manifest import Format
from runtimes.records import atomic_write_bytes


@register_format
class EagerReferenceWriter:
    name = Format.EAGER
    suffix = ".eager.pt"
    description = "the eager model's state_dict: the reference parity compares every artifact with"

    def write(self, built: BuiltVariant, example: torch.Tensor, path: Path,
              settings: WriterSettings = WriterSettings()) -> None:
        buf = io.BytesIO()
        torch.save(built.model.state_dict(), buf)
        atomic_write_bytes(path, buf.getvalue())
