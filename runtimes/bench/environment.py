"""What machine a benchmark ran on: CPU model and ISA flags, cores, GPU, versions.

Everything here is best effort by design: a missing ``nvidia-smi`` or an
unreadable ``/proc/cpuinfo`` is a fact about the machine ("none", unknown),
not an error.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys

from runtimes.bench.results import Environment

# The ISA extensions that decide which INT8/FP16/FP32 kernels fbgemm, oneDNN and MLAS pick.
RELEVANT_FLAGS = ("fma", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni",
                  "amx_tile", "amx_int8", "amx_bf16")

_VERSIONED = ("torch", "torchvision", "onnx", "onnxruntime", "numpy")
# Read from the installed distributions' metadata: importing them costs seconds and is not needed to know.
_DISTRIBUTIONS = ("openvino", "nncf")


def collect_environment(threads: int | None) -> Environment:
    cpu_model, flags = _cpu()
    gpu_name, driver, cuda = _gpu()
    return Environment(
        cpu_model=cpu_model,
        cpu_flags=[f for f in RELEVANT_FLAGS if f in flags],
        cores_logical=os.cpu_count() or 0,
        cores_physical=_physical_cores(),
        threads=threads,
        gpu_name=gpu_name,
        gpu_driver=driver,
        cuda_version=cuda,
        versions=package_versions(),
        platform=platform.platform(),
    )


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = str(importlib.import_module(name).__version__)
        except ImportError:
            versions[name] = "not installed"
    for name in _DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _cpu() -> tuple[str, set[str]]:
    import cpuinfo

    info = cpuinfo.get_cpu_info()
    brand = info.get("brand_raw") or platform.processor() or "unknown"
    return brand, set(info.get("flags", []))


def _physical_cores() -> int | None:
    """Distinct (package, core) pairs in /proc/cpuinfo; None where that file does not exist."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return None
    cores: set[tuple[str, str]] = set()
    package = core = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            package = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip():
            if core is not None:
                cores.add((package or "0", core))
            package = core = None
    if core is not None:
        cores.add((package or "0", core))
    return len(cores) or None


def _gpu() -> tuple[str, str, str]:
    """(name, driver, CUDA version of the torch build); "none" for each missing part.

    The CUDA version is the torch build's, GPU or not (a CUDA build on a CPU-only machine says so).
    """
    name = driver = "none"
    torch = sys.modules.get("torch") or importlib.import_module("torch")
    cuda = torch.version.cuda or "none"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return name, driver, cuda
        first = out.stdout.strip().splitlines()[:1]
        if out.returncode == 0 and first and "," in first[0]:
            smi_name, smi_driver = (s.strip() for s in first[0].rsplit(",", 1))
            driver = smi_driver
            if name == "none":
                name = smi_name
    return name, driver, cuda
