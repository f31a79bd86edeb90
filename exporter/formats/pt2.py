"""``.pt2``: an AOTInductor package, PyTorch 2's deployment format (torch.export → Inductor → a shared library).

Loaded with ``torch._inductor.aoti_load_package`` in Python (runtime ``aoti``) and ``AOTIModelPackageLoader``
in C++. Unlike TorchScript and ONNX, the package is machine code for the CPU ISA it was compiled on; the
manifest records that ISA (``compile.isa``), the Inductor settings and the compile time.

- Float variants (FP32, FP16, pruned, slim) are exported as they are built.
- INT8 variants go through the pt2e lane (:mod:`exporter.compress.pt2e`) from the recipe's float model; the
  converted program is also saved as the artifact's own eager reference (``<variant>.pt2e-program.pt2``, an
  ExportedProgram), which parity compares the package with. A variant without a pt2e source (a peer's ONNX,
  pruning inside the INT8 grid, QAT) has no ``.pt2``: :meth:`Pt2Writer.refusal` says why.

Freezing is on: it folds the weights into constants, which is what lets Inductor turn pt2e's
dequantize → conv → quantize patterns into oneDNN INT8 kernels (without it they stay float GEMMs, pytorch
#113019) and lets it pre-pack float weights for oneDNN.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from exporter.builders.base import BuiltVariant
from exporter.compress import pt2e
from exporter.errors import BadInputError, ExportError
from exporter.formats.base import WriteResult, WriterSettings, register_format
from exporter.formats.lane import pt2e_quant_record, write_lane_reference
from runtimes.aoti import package_isa
from runtimes.manifest import CompileRecord, Format

# The Inductor configs every package is compiled with (recorded in the manifest).
INDUCTOR_CONFIGS = {"freezing": True}
# Packages are compiled for one image per call. With a symbolic batch dimension Inductor cannot pre-pack the
# convolution weights for oneDNN: resnet18 at 32 px, one thread, took 10.7 ms a call against 1.7 ms compiled
# for batch 1 (TorchScript 6.4 ms; 2-core AMD EPYC, torch 2.13.0). The aoti runtimes run a larger batch as
# that many calls (runtimes.aoti), which is what deploying this package at that batch costs.
COMPILE_BATCH = 1


class CompileError(BadInputError):
    """AOTInductor could not compile the model (the C++ compiler's first error line); exit 2, like every input
    this machine cannot turn into a package."""


def compile_package(program: torch.export.ExportedProgram, path: Path) -> None:
    """AOTInductor-compile ``program`` into the package ``path`` (written whole, then renamed)."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix=".pt2-compile-", dir=path.parent) as tmp:
        target = Path(tmp) / path.name  # the package names its inner folder after the file: keep the final name
        try:
            with torch.no_grad():
                torch._inductor.aoti_compile_and_package(program, package_path=str(target),
                                                         inductor_configs=dict(INDUCTOR_CONFIGS))
        except Exception as exc:  # the C++ compiler's and Inductor's failures come as many types
            raise CompileError(f"compiling {path.name} failed: {type(exc).__name__}: {_first_error(exc)}") from exc
        os.chmod(target, 0o644)
        os.replace(target, path)


def _first_error(exc: BaseException) -> str:
    """The compiler's first error line when there is one, else the exception's first line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln:
            return ln[:300]
    return (lines[0] if lines else "no message")[:300]


def _compiler() -> str:
    return f"aotinductor (torch {torch.__version__})"


def write_float(model: nn.Module, example: torch.Tensor, path: Path, batch: int | None) -> CompileRecord:
    t0 = time.perf_counter()
    # FP16 is already a float32-interface module (runtimes.modules.Float32IO), as for TorchScript.
    compile_package(pt2e.capture(model, example, batch=batch), path)
    return _record(path, batch, time.perf_counter() - t0)


def _record(path: Path, batch: int | None, seconds: float, lane: str | None = None) -> CompileRecord:
    return CompileRecord(compiler=_compiler(), settings=dict(INDUCTOR_CONFIGS), isa=package_isa(path),
                         seconds=seconds, batch=batch, lane=lane)


def write_int8(built: BuiltVariant, example: torch.Tensor, path: Path, batch: int | None) -> WriteResult:
    t0 = time.perf_counter()
    quantized = built.pt2e.quantized(example)
    reference = write_lane_reference(built, example, path)
    # The converted GraphModule is exported again (not strictly: it is already an ATen graph) for the
    # package's batch size.
    compile_package(pt2e.capture(quantized.module, example, strict=False, batch=batch), path)
    record = _record(path, batch, time.perf_counter() - t0 + quantized.seconds, lane=pt2e.LANE)
    return WriteResult(compile=record, quantization=pt2e_quant_record(built), lane_reference=reference)


@register_format
class Pt2Writer:
    name = Format.PT2
    suffix = ".pt2"
    description = "AOTInductor package (torch.export, compiled with freezing for this CPU's ISA); INT8 via pt2e"

    def refusal(self, built: BuiltVariant) -> str | None:
        """Why ``built`` has no ``.pt2`` (None: it has one)."""
        if built.quant.backend is None:
            return None
        if built.pt2e is None:
            return built.pt2e_refusal or "its INT8 model was not built by shrinkwrap's own lanes"
        return None

    def write(self, built: BuiltVariant, example: torch.Tensor, path: Path,
              settings: WriterSettings = WriterSettings()) -> WriteResult:
        reason = self.refusal(built)
        if reason is not None:
            raise ExportError(f"no .pt2 for this variant: {reason}")
        if built.quant.backend is None:
            return WriteResult(compile=write_float(built.model, example, path, COMPILE_BATCH))
        return write_int8(built, example, path, COMPILE_BATCH)

