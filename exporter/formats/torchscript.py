"""TorchScript: traced and frozen (``.pt``), loadable with plain ``torch.jit.load`` and by libtorch.

The archive is normalized so that the same export gives the same bytes from any
clone and any process: ``torch.jit.save`` embeds the exporting machine's
absolute source paths (``*.debug_pkl``, TorchScript's source-range tables, used
only to decorate error messages), a random ``.data/serialization_id``, and type
names mangled with a process-wide counter (``___torch_mangle_411``) that depends
on what was traced before. The debug tables are dropped, the mangled names
renumbered in order of first appearance, and the archive rewritten with torch's
own writer (same layout and 64-byte storage alignment).
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from exporter.builders.base import BuiltVariant
from exporter.formats.base import WriterSettings, register_format
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
    atomic_write_bytes(path, normalize_archive(buf.getvalue()))


_MANGLE = re.compile(rb"___torch_mangle_(\d+)")
_DROPPED = (".debug_pkl", ".data/serialization_id")
_TEXT = (".py", ".pkl")  # code and pickles name the mangled types; tensors do not


def normalize_archive(data: bytes) -> bytes:
    """The same TorchScript archive without machine- and process-specific bytes (see the module doc)."""
    reader = torch._C.PyTorchFileReader(io.BytesIO(data))
    names = [n for n in reader.get_all_records() if not n.endswith(_DROPPED)]
    numbers: dict[bytes, bytes] = {}
    for name in sorted(names):
        text = name.encode() + b"\n" + (reader.get_record(name) if name.endswith(_TEXT) else b"")
        for old in _MANGLE.findall(text):
            numbers.setdefault(old, str(len(numbers)).encode())

    def renumber(b: bytes) -> bytes:
        return _MANGLE.sub(lambda m: b"___torch_mangle_" + numbers[m.group(1)], b)

    out = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(out)
    for name in names:
        payload = reader.get_record(name)
        if name.endswith(_TEXT):
            payload = renumber(payload)
        writer.write_record(renumber(name.encode()).decode(), payload, len(payload))
    writer.write_end_of_file()
    return out.getvalue()


@register_format
class TorchScriptWriter:
    name = Format.TORCHSCRIPT
    suffix = ".pt"
    description = "traced + frozen TorchScript"

    def write(self, built: BuiltVariant, example: torch.Tensor, path: Path,
              settings: WriterSettings = WriterSettings()) -> None:
        write_torchscript(built.model, example, path)
