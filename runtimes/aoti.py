"""AOTInductor runtime (``aoti``): ``torch._inductor.aoti_load_package`` of a ``.pt2`` package, in Python.

A ``.pt2`` holds a shared library Inductor compiled for one CPU ISA (the package's ``wrapper_metadata.json``
names it, e.g. ``AVX512 AVX512_VNNI``); run elsewhere its vector instructions would kill the process with
SIGILL. :func:`isa_problem` compares the package's ISA with this CPU's flags before anything is loaded, so
that such a machine gets a clear error instead.

The kernel census reads the package's generated C++ wrapper: each call of an ATen/oneDNN kernel
(``aoti_torch_cpu__qconv_pointwise_tensor``: an INT8 convolution) and each Inductor-generated loop
(``cpp_fused_dequantize_per_tensor_..._quantize_per_tensor_3``), which is what the compiled model executes.
"""

from __future__ import annotations

import json
import platform
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.errors import ArtifactError, RuntimeUnavailable
from runtimes.host_cpu import cpu_flags
from runtimes.kernels import KernelCensus
from runtimes.manifest import ArtifactRecord, Format
from runtimes.protocol import CPU, Support, as_batch, register_runtime
from runtimes.torch_runtime import TorchRuntime

# Inductor's ISA names (torch._inductor.cpu_vec_isa) as /proc/cpuinfo spells the flag each needs.
ISA_FLAGS = {"avx2": "avx2", "avx512": "avx512f", "avx512_vnni": "avx512_vnni", "amx_tile": "amx_tile",
             "neon": "asimd", "asimd": "asimd"}
_METADATA = "wrapper_metadata.json"


def package_metadata(path: Path) -> dict[str, str]:
    """The device information AOTInductor stored in the package (platform, machine, CPU ISA)."""
    try:
        with zipfile.ZipFile(path) as z:
            name = next((n for n in z.namelist() if n.endswith(_METADATA)), None)
            if name is None:
                raise ArtifactError(f"{path} is not an AOTInductor package (no {_METADATA})")
            return json.loads(z.read(name))
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"{path} is not an AOTInductor package: {exc}") from exc


def package_isa(path: Path) -> str:
    return package_metadata(path).get("AOTI_CPU_ISA", "")


def isa_problem(isa: str, machine: str | None = None) -> str | None:
    """Why a package compiled for ``isa`` (and ``machine``) cannot run on this CPU; None when it can."""
    if machine and machine != platform.machine():
        return f"compiled for {machine}, this machine is {platform.machine()}"
    flags = cpu_flags()
    missing = []
    for token in isa.lower().split():
        flag = ISA_FLAGS.get(token)
        if flag is None:
            return f"compiled for CPU ISA {isa!r}, whose {token!r} shrinkwrap cannot check on this CPU"
        if flag not in flags:
            missing.append(token.upper())
    if missing:
        return (f"compiled for CPU ISA {isa}; this CPU lacks {', '.join(missing)} (a .pt2 holds machine code: "
                f"recompile it on, or for, this machine)")
    return None


_CALL = re.compile(r"\b(aoti_torch_cpu_\w+|aoti_torch_\w*(?:qconv|qlinear|mkldnn)\w*|cpp_fused_\w+?)_?\d*\(")
_INTEGER = ("qconv", "qlinear", "_q_", "int8")
# What an Inductor loop's name lists besides compute: the loop only converts when nothing else is left.
_CONVERSION_PARTS = re.compile(r"(de)?quantize_per_(tensor|channel)|view|clone|_")


def census_of_package(path: Path, runtime: str) -> KernelCensus:
    """What the compiled wrapper calls, counted per kernel (see the module doc); ``runtime`` names the reader.

    ATen/oneDNN calls on quantized tensors are integer kernels. An Inductor loop (``cpp_fused_<ops>``) is a
    conversion when it only quantizes or dequantizes, and float compute when it names any other op: a
    ``cpp_fused_hardsigmoid_mul_quantize_per_tensor`` dequantized its inputs, ran hardsigmoid and mul in float and
    re-quantized, where an integer kernel would have stayed in INT8."""
    with zipfile.ZipFile(path) as z:
        sources = [z.read(n).decode(errors="replace") for n in z.namelist() if n.endswith("wrapper.cpp")]
    # Calls only: an Inductor loop is also declared (``extern "C" void cpp_fused_...(``) and held as a pointer.
    lines = (ln for s in sources for ln in s.splitlines() if "void" not in ln)
    calls = Counter(m for ln in lines for m in _CALL.findall(ln) if not m.startswith("aoti_torch_cpu_empty"))
    census = KernelCensus(source=f"{runtime}: the AOTInductor package's generated wrapper.cpp")
    for name, n in calls.items():
        if name.startswith("cpp_fused"):
            ops = _CONVERSION_PARTS.sub("", name.removeprefix("cpp_fused_"))
            (census.float_kernels if ops else census.conversions)[name] = n
        elif any(k in name for k in _INTEGER):
            census.integer_kernels[name] = n
        else:
            census.float_kernels[name] = n
    return census


@register_runtime
class Aoti(TorchRuntime):
    """An AOTInductor ``.pt2`` package in Python on the CPU (``torch._inductor.aoti_load_package``)."""

    name = "aoti"
    device = CPU
    formats = (Format.PT2,)
    reference_for = (Format.PT2,)
    format_reason = "aoti runs .pt2 (AOTInductor) packages only"

    def supports(self, artifact: ArtifactRecord) -> Support:
        support = super().supports(artifact)
        if not support.ok or artifact.compile is None:
            return support
        problem = isa_problem(artifact.compile.isa)
        return Support.no(problem) if problem else Support.yes()

    def _build(self, path: Path, artifact: ArtifactRecord) -> Any:
        meta = package_metadata(path)
        problem = isa_problem(meta.get("AOTI_CPU_ISA", ""), meta.get("AOTI_MACHINE"))
        if problem:
            raise RuntimeUnavailable(f"{self.name} cannot run {path.name}: {problem}")
        if artifact.quantization.lane and artifact.quantization.lane.startswith("pt2e"):
            import torchao  # noqa: F401  (registers the quantized_decomposed ops the package may name)
        import torch

        try:
            return torch._inductor.aoti_load_package(str(path))
        except RuntimeError as exc:
            raise ArtifactError(f"{path} is not a loadable AOTInductor package: {str(exc).splitlines()[0]}") from exc

    def kernel_census(self, example: np.ndarray) -> KernelCensus:
        if self._path is None:
            raise RuntimeError(f"{self.name}: call load() first")
        return census_of_package(self._path, self.name)

    def load(self, run_dir: Path, artifact: ArtifactRecord) -> None:
        self._path = Path(run_dir) / artifact.path
        self._compiled_batch = artifact.compile.batch if artifact.compile is not None else None
        super().load(run_dir, artifact)

    _path: Path | None = None
    _compiled_batch: int | None = None
    _rows = 0

    # -- BoundRun: a package compiled for a fixed batch runs a larger one as that many calls (the last padded)
    def bind(self, batch: np.ndarray) -> None:
        import torch

        x = torch.from_numpy(as_batch(batch))
        self._rows = len(x)
        b = self._compiled_batch
        if b is None or len(x) == b:
            self._bound = [x]
            return
        pad = (-len(x)) % b
        if pad:
            x = torch.cat([x, x[-1:].expand(pad, *x.shape[1:])])
        self._bound = list(x.split(b))

    def run_bound(self) -> None:
        import torch

        if self._module is None or self._bound is None:
            raise RuntimeError(f"{self.name}: call load() and bind() before run_bound()")
        with torch.inference_mode():
            outs = [self._module(chunk) for chunk in self._bound]
        self._out = outs[0] if len(outs) == 1 else torch.cat(outs)

    def fetch(self) -> np.ndarray:
        return super().fetch()[:self._rows]


def run_exported_program(path: Path, batch: np.ndarray, chunk: int = 32) -> np.ndarray:
    """Outputs of a saved ExportedProgram (``torch.export.save``) run as Python: a lane's own eager reference."""
    import torch

    try:
        import torchao  # noqa: F401  (the pt2e program names its quantized_decomposed ops)
    except ImportError:
        pass
    try:
        module = torch.export.load(str(path)).module()
    except Exception as exc:
        raise ArtifactError(f"{path} is not a loadable ExportedProgram: {str(exc).splitlines()[0]}") from exc
    out = []
    with torch.no_grad():
        for i in range(0, len(batch), chunk):
            x = torch.from_numpy(np.ascontiguousarray(batch[i:i + chunk], dtype=np.float32))
            out.append(module(x).float().numpy())
    return np.concatenate(out)
