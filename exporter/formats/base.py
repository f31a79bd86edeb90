"""What a format writer is, and the writer registry.

A writer serializes one built variant into one file of its format, atomically
(temporary file, then rename). The format's name is what the manifest records
and what runtimes declare they run. This module imports no writer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import torch

from exporter.builders.base import BuiltVariant
from runtimes.errors import BadInputError
from runtimes.manifest import CompileRecord, QuantRecord


@dataclass(frozen=True)
class WriteResult:
    """What a writer adds to the artifact's record beyond the variant's (None: nothing)."""

    compile: CompileRecord | None = None  # ahead-of-time compiled formats
    quantization: QuantRecord | None = None  # the file was quantized by another lane than the variant's model
    lane_reference: str | None = None  # a file written next to it: its own eager reference (that lane's)


class Int8OnnxLane(str, enum.Enum):
    """Which INT8 lane an INT8 variant's ONNX carries (``--int8-onnx-lane``)."""

    FBGEMM = "fbgemm"  # the fbgemm model, through torch's TorchScript-based exporter (the same weights as the .pt)
    PT2E = "pt2e"  # the pt2e lane's graph, through the dynamo exporter (PyTorch 2's path; see docs/pt2.md)


@dataclass(frozen=True)
class WriterSettings:
    """Export options that decide how a file is written (not what is built)."""

    int8_onnx_lane: Int8OnnxLane = Int8OnnxLane.FBGEMM


class FormatWriter(Protocol):
    name: ClassVar[str]  # the format name recorded in the manifest
    suffix: ClassVar[str]  # the file is "<variant><suffix>"
    description: ClassVar[str]

    def write(self, built: BuiltVariant, example: torch.Tensor, path: Path,
              settings: WriterSettings = WriterSettings()) -> WriteResult | None: ...

    # Optional: ``refusal(built) -> str | None``, why a built variant cannot be written in this format.


def refusal(writer: FormatWriter, built: BuiltVariant) -> str | None:
    """Why ``writer`` cannot write ``built`` (None: it can)."""
    check = getattr(writer, "refusal", None)
    return check(built) if check is not None else None


_WRITERS: dict[str, FormatWriter] = {}


def register_format(cls: type) -> type:
    """Class decorator: register one writer instance under its format name."""
    if cls.name in _WRITERS:
        raise ValueError(f"format {cls.name!r} registered twice")
    _WRITERS[cls.name] = cls()
    return cls


def get_writer(name: str) -> FormatWriter:
    try:
        return _WRITERS[name]
    except KeyError:
        raise BadInputError(f"no writer for format {name!r}; registered: {', '.join(_WRITERS)}") from None
