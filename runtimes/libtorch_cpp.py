"""``libtorch-cpp``: TorchScript artifacts run and timed by a small C++ program (``torch::jit::load``; the same
program runs AOTInductor packages for :mod:`runtimes.aoti_cpp`).

``runtimes/cpp/main.cpp`` is compiled on first use with g++ straight against the
torch wheel's headers and libraries. Not with CMake: ``find_package(Torch)``
fails for the CUDA build of the wheel when no CUDA toolkit is installed
(``cpp/CMakeLists.txt`` is kept for manual builds). The binary is cached under
``${SHRINKWRAP_CACHE:-~/.cache/shrinkwrap}/libtorch-cpp/<key>/runner``, keyed by
the torch version and the hash of main.cpp; it is compiled to a temporary name
and renamed, under an fcntl lock, so concurrent first uses build it once.

``run(batch)`` spawns the runner once per call (fine for checks). Benchmarks use
:meth:`LibtorchCppRuntime.bench`, whose times are measured inside the C++
process (std::chrono::steady_clock around each forward), so process start and
model load are not in the latency.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from runtimes.errors import BadInputError, RuntimeUnavailable, ShrinkwrapError
from runtimes.manifest import ArtifactRecord, Format, checked_path
from runtimes.kernels import KernelCensus
from runtimes.protocol import (CPU, BatchedEval, Describes, Kernels, SelfTimed, Support, as_batch, check_threads,
                               register_runtime)
from runtimes.quant_engine import QUANT_ENGINE, set_quantized_engine

SOURCE = Path(__file__).parent / "cpp" / "main.cpp"
COMPILER = "g++"
NO_COMPILER = f"no C++ compiler: {COMPILER} is not on PATH (needed to build the libtorch-cpp runner)"
ONLY_PT = "libtorch-cpp runs .pt (TorchScript) artifacts only"


def cache_root() -> Path:
    return Path(os.environ.get("SHRINKWRAP_CACHE") or Path.home() / ".cache" / "shrinkwrap")


def _torch_dir() -> Path:
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        raise RuntimeUnavailable("torch is not installed")
    return Path(spec.origin).parent


def build_key() -> str:
    """torch version + hash of main.cpp and of the torch install it links: a new wheel, an edited source or
    another venv gets a new binary (the runner's rpath names the venv's libtorch, so a binary built from a venv
    since removed fails to load: exit 127)."""
    version = importlib.metadata.version("torch")
    digest = hashlib.sha256(SOURCE.read_bytes() + str(_torch_dir().resolve()).encode()).hexdigest()[:16]
    return f"torch-{version}-{digest}"


def runner_path() -> Path:
    return cache_root() / "libtorch-cpp" / build_key() / "runner"


def unavailable_reason() -> str | None:
    """Cheap check (no torch import, no build) of what the build needs."""
    if shutil.which(COMPILER) is None:
        return NO_COMPILER
    if not SOURCE.is_file():
        return f"runner source {SOURCE} is missing from the installation"
    if not (_torch_dir() / "include" / "torch" / "script.h").is_file():
        return "this torch installation has no C++ headers (torch/include/torch/script.h)"
    return None


def build_command(output: Path) -> list[str]:
    import torch

    tdir = _torch_dir()
    abi = int(bool(torch._C._GLIBCXX_USE_CXX11_ABI))
    return [COMPILER, "-O2", "-std=c++20", str(SOURCE),
            f"-I{tdir / 'include'}", f"-I{tdir / 'include' / 'torch' / 'csrc' / 'api' / 'include'}",
            f"-L{tdir / 'lib'}", "-ltorch", "-ltorch_cpu", "-lc10",
            f"-Wl,-rpath,{tdir / 'lib'}", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", "-o", str(output)]


def ensure_runner() -> Path:
    """The cached runner binary, built now if needed (about 15-30 s)."""
    final = runner_path()
    if final.is_file():
        return final
    reason = unavailable_reason()
    if reason:
        raise RuntimeUnavailable(reason)
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if final.is_file():  # another process built it while we waited
                return final
            tmp = final.parent / f".runner.{os.getpid()}.tmp"
            try:
                proc = subprocess.run(build_command(tmp), capture_output=True, text=True)
                if proc.returncode != 0:
                    lines = (proc.stderr or proc.stdout).strip().splitlines()
                    first = next((ln for ln in lines if "error" in ln), lines[-1] if lines else "")
                    raise RuntimeUnavailable(f"building the libtorch-cpp runner failed "
                                             f"({COMPILER} exit {proc.returncode}): {first.strip()}")
                os.replace(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return final


@register_runtime
class LibtorchCppRuntime(SelfTimed, BatchedEval, Describes, Kernels):
    """TorchScript in a native C++ libtorch process (``runtimes/cpp/main.cpp``), timed inside it."""

    name = "libtorch-cpp"
    device = CPU
    formats = (Format.TORCHSCRIPT,)
    format_reason = ONLY_PT
    reference_for: tuple[str, ...] = ()  # torchscript is the reference for .pt files
    framework = "pytorch"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = check_threads(threads)
        self._model: Path | None = None
        self._runner: Path | None = None
        self._call_batch: int | None = None
        self._last: dict = {}

    def supports(self, artifact: ArtifactRecord) -> Support:
        if artifact.format not in self.formats:
            return Support.no(self.format_reason)
        reason = unavailable_reason()
        return Support.no(reason) if reason else Support.yes()

    def load(self, run_dir: Path, artifact: ArtifactRecord) -> None:
        support = self.supports(artifact)
        if not support.ok:
            raise RuntimeUnavailable(f"{self.name} cannot run {artifact.path}: {support.reason}")
        self._model = checked_path(run_dir, artifact)
        self._call_batch = artifact.compile.batch if artifact.compile is not None else None
        self._runner = ensure_runner()

    def run(self, batch: np.ndarray) -> np.ndarray:
        _, out = self.bench(batch, min_time_ms=0.0, min_iters=1, warmup=0)
        return out

    def run_all(self, images: np.ndarray, batch: int) -> np.ndarray:
        """Every row once, in slices of ``batch``, in ONE runner process (evaluation)."""
        _, out = self.bench(images, min_time_ms=0.0, min_iters=1, warmup=0, chunk=batch)
        return out

    def bench(self, batch: np.ndarray, min_time_ms: float = 0.0, min_iters: int = 10,
              warmup: int = 3, chunk: int = 0) -> tuple[list[float], np.ndarray]:
        """Time ``batch`` in C++: warm-up, then iterations until both minimums are met.

        Returns the per-iteration times in ms and the output of the last iteration.
        """
        if self._model is None or self._runner is None:
            raise RuntimeError("libtorch-cpp: call load() first")
        if min_iters < 1 or warmup < 0 or not 0 <= min_time_ms < math.inf:
            raise BadInputError("need min_iters >= 1, warmup >= 0, finite min_time_ms >= 0")
        x = as_batch(batch)
        with tempfile.TemporaryDirectory(prefix="shrinkwrap-libtorch-") as tmp:
            inp, outp = Path(tmp) / "input.bin", Path(tmp) / "output.bin"
            x.astype("<f4", copy=False).tofile(inp)
            cmd = [str(self._runner), str(self._model), "--input", str(inp), "--output", str(outp),
                   "--shape", ",".join(map(str, x.shape)), "--warmup", str(warmup),
                   "--min-iters", str(min_iters), "--min-time-ms", repr(float(min_time_ms))]
            if chunk:
                cmd += ["--chunk", str(int(chunk))]
            cmd += ["--qengine", QUANT_ENGINE]
            if self._call_batch:
                cmd += ["--call-batch", str(int(self._call_batch))]
            if self.threads is not None:
                cmd += ["--threads", str(self.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise ShrinkwrapError(f"libtorch-cpp runner failed on {self._model.name} "
                                      f"(exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
            result = _parse_result(proc.stdout)
            shape = tuple(int(d) for d in result["output_shape"])
            out = np.fromfile(outp, dtype="<f4")
        if out.size != int(np.prod(shape)):
            raise ShrinkwrapError(f"libtorch-cpp runner wrote {out.size} floats for shape {shape}")
        self._last = result
        return [float(t) for t in result["times_ms"]], out.reshape(shape).astype(np.float32)

    def close(self) -> None:
        self._model = None

    def kernel_census(self, example: np.ndarray) -> KernelCensus:
        """The runner links the wheel's own libtorch: the same file, run once in this process with the
        runner's quantized engine, dispatches to the same kernels."""
        import torch

        from runtimes import kernels

        if self._model is None:
            raise RuntimeError("libtorch-cpp: call load() first")
        set_quantized_engine()
        module = torch.jit.load(str(self._model), map_location="cpu").eval()
        ops = kernels.profile_torch_module(module, torch.from_numpy(as_batch(example)))
        return kernels.census_of_torch(ops, f"{self.name} (libtorch {torch.__version__}, {QUANT_ENGINE} engine) "
                                            "one recorded forward of the same file")

    def info(self) -> dict[str, str | int]:
        """What the last C++ run reported (threads used, engine, libtorch version)."""
        info: dict[str, str | int] = {"device": "cpu", "threads": self.threads or "libtorch-default"}
        if self._last:
            info.update(threads=int(self._last["threads"]), quantized_engine=self._last["qengine"],
                        torch=self._last["torch_version"])
        if self._runner is not None:
            info["runner"] = str(self._runner)
        return info


def _parse_result(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.strip().startswith("{")]
    try:
        result = json.loads(lines[-1])
        if not result["times_ms"] or not result["output_shape"]:
            raise ValueError("empty times or output shape")
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise ShrinkwrapError(f"libtorch-cpp runner printed no valid result ({exc}): {stdout[-500:]!r}") from exc
    return result

