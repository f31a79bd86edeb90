"""The Runtime protocol and the registry of runtimes.

A runtime loads one artifact, runs batches of float32 NCHW inputs, and closes.
``supports`` says, before anything is loaded, whether this runtime can run the
artifact *here*; a ``Support`` with ``ok=False`` becomes a ``skipped`` cell.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from runtimes.artifact import ArtifactRecord
from runtimes.errors import BadInputError


class RuntimeName(str, enum.Enum):
    EAGER = "eager"
    TORCHSCRIPT = "torchscript"
    LIBTORCH_CPP = "libtorch-cpp"
    ORT_CPU = "ort-cpu"
    ORT_CUDA = "ort-cuda"
    EAGER_CUDA = "eager-cuda"
    TORCHSCRIPT_CUDA = "torchscript-cuda"


class Device(str, enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True)
class Support:
    ok: bool
    reason: str = ""

    @classmethod
    def yes(cls) -> "Support":
        return cls(True, "")

    @classmethod
    def no(cls, reason: str) -> "Support":
        return cls(False, reason)


@runtime_checkable
class Runtime(Protocol):
    name: RuntimeName
    device: Device

    def supports(self, artifact: ArtifactRecord) -> Support:
        """Whether this runtime can run ``artifact`` on this machine, and if not why."""

    def load(self, run_dir: Path, artifact: ArtifactRecord) -> None:
        """Load the artifact (``run_dir / artifact.path``); raise on failure."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one float32 NCHW batch; return float32 logits (N, num_classes)."""

    def close(self) -> None:
        """Release what ``load`` took (sessions, device memory)."""


RuntimeFactory = Callable[[int | None], Runtime]  # threads -> runtime

_REGISTRY: dict[RuntimeName, RuntimeFactory] = {}


def register_runtime(name: RuntimeName) -> Callable[[RuntimeFactory], RuntimeFactory]:
    def deco(factory: RuntimeFactory) -> RuntimeFactory:
        if name in _REGISTRY:
            raise ValueError(f"runtime {name.value!r} registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def _ensure_loaded() -> None:
    # Importing the modules registers their runtimes; kept lazy so that importing
    # this module does not import torch or onnxruntime.
    from runtimes import eager, libtorch_cpp, ort, torchscript  # noqa: F401


def runtime_names() -> list[RuntimeName]:
    _ensure_loaded()
    return list(_REGISTRY)


def parse_runtime(name: str) -> RuntimeName:
    try:
        return RuntimeName(name)
    except ValueError:
        known = ", ".join(r.value for r in RuntimeName)
        raise BadInputError(f"unknown runtime {name!r}; known runtimes: {known}") from None


def get_runtime(name: RuntimeName | str, threads: int | None = None) -> Runtime:
    _ensure_loaded()
    key = parse_runtime(name) if isinstance(name, str) and not isinstance(name, RuntimeName) else name
    return _REGISTRY[key](threads)


# The runtime that runs a given format in the parity check (CPU, always present).
PARITY_RUNTIME = {"torchscript": RuntimeName.TORCHSCRIPT, "onnx": RuntimeName.ORT_CPU}
