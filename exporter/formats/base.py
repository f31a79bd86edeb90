"""What a format writer is, and the writer registry.

A writer serializes one built variant into one file of its format, atomically
(temporary file, then rename). The format's name is what the manifest records
and what runtimes declare they run. This module imports no writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Protocol

import torch

from exporter.builders.base import BuiltVariant
from runtimes.errors import BadInputError


class FormatWriter(Protocol):
    name: ClassVar[str]  # the format name recorded in the manifest
    suffix: ClassVar[str]  # the file is "<variant><suffix>"
    description: ClassVar[str]

    def write(self, built: BuiltVariant, example: torch.Tensor, path: Path) -> None: ...


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
