"""The Runtime protocol, its optional capabilities, and how a runtime registers itself.

A runtime loads one artifact, runs batches of float32 NCHW inputs, and closes.
Each runtime class *declares* what it is, as class attributes::

    @register_runtime
    class OrtCpu(OrtRuntime):
        name = "ort-cpu"               # the name users pass to --runtimes
        device = CPU                   # where it computes
        formats = (Format.ONNX,)       # the artifact formats it runs
        reference_for = (Format.ONNX,) # it checks parity of, and loads by default, these formats
        framework = "onnxruntime"      # whose kernels run (the report groups flags by it)
        parity_for = ()                # optional: formats parity also checks in it (portability), besides
                                       # in the format's reference runtime (runtimes.parity)
        preload = ("onnxruntime",)     # optional: what its bench cells import, once per sweep
                                       # (runtimes.bench.launch forks each cell from a server that did)

and it implements the optional capabilities it has by inheriting their
protocols (:class:`BoundRun`, :class:`SelfTimed`, :class:`BatchedEval`,
:class:`Describes`). Registration turns the class into a frozen
:class:`RuntimeSpec`; every table (runtime → formats, the parity runtime of a
format, the devices of a report) is derived from those specs by
:mod:`runtimes.registry`. This module holds no runtime implementation, so the
implementations import it and it imports none of them.

``supports`` says, before anything is loaded, whether this runtime can run the
artifact *here*; a ``Support`` with ``ok=False`` becomes a ``skipped`` cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

from runtimes.errors import BadInputError
from runtimes.kernels import KernelCensus
from runtimes.manifest import ArtifactRecord

# Devices are names, so that a runtime for a new kind of device needs no change here.
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
    """What every runtime is and does."""

    name: ClassVar[str]
    device: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]
    reference_for: ClassVar[tuple[str, ...]]
    framework: ClassVar[str]

    def __init__(self, threads: int | None = None) -> None: ...

    def supports(self, artifact: ArtifactRecord) -> Support:
        """Whether this runtime can run ``artifact`` on this machine, and if not why."""

    def load(self, run_dir: Path, artifact: ArtifactRecord) -> None:
        """Load the artifact (``run_dir / artifact.path``, sha256-checked); raise on failure."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one float32 NCHW batch; return float32 logits (N, num_classes)."""

    def close(self) -> None:
        """Release what ``load`` took (sessions, device memory)."""


# ---------------------------------------------------------------- optional capabilities

@runtime_checkable
class BoundRun(Protocol):
    """Device-resident calls, so that a benchmark times the computation alone::

        rt.bind(batch)   # host → device copy, once
        rt.run_bound()   # forward on the bound input; synchronizes the device; time this
        rt.fetch()       # device → host copy of the last output
    """

    def bind(self, batch: np.ndarray) -> None: ...

    def run_bound(self) -> None: ...

    def fetch(self) -> np.ndarray: ...


@runtime_checkable
class SelfTimed(Protocol):
    """Times itself (e.g. inside a native process), so its start-up is not measured.

    Returns the per-iteration times in ms and the output of the last iteration.
    """

    def bench(self, batch: np.ndarray, min_time_ms: float = 0.0, min_iters: int = 10,
              warmup: int = 3, chunk: int = 0) -> tuple[list[float], np.ndarray]: ...


@runtime_checkable
class BatchedEval(Protocol):
    """Runs a whole evaluation set at once (every row, in slices of ``batch``)."""

    def run_all(self, images: np.ndarray, batch: int) -> np.ndarray: ...


@runtime_checkable
class Describes(Protocol):
    """Reports what it ran with (threads, versions, providers, engine) for the result record."""

    def info(self) -> dict[str, str | int]: ...


@runtime_checkable
class Interleaves(Protocol):
    """Can hold several artifacts in one process and run them alternately, sharing one thread pool,
    so that an interleaved A/B comparison (:mod:`runtimes.bench.compare`) measures each fairly.

    ``share_threads`` is called once, before any instance of the runtime is created in the process.
    ``with_others``: another framework's artifact runs in the same process (an interleaved comparison
    of two runtimes on one artifact), so this runtime's idle threads must leave the cores to it.
    """

    @classmethod
    def share_threads(cls, threads: int | None, with_others: bool = False) -> None: ...


@runtime_checkable
class ComputePrecision(Protocol):
    """Says, after ``load``, the type it computes the float layers in when that may differ from the file's
    (OpenVINO runs FP32 as ``bf16`` on CPUs with BF16 instructions): ``bf16``, ``f16``, ``f32`` or None."""

    def compute_precision(self) -> str | None: ...


@runtime_checkable
class FullPrecision(Protocol):
    """Can be asked, before ``load``, to compute float layers in full FP32 rather than the narrower type it would
    choose (OpenVINO's bf16): parity then judges a quantized file's own arithmetic, not the runtime's rounding."""

    def use_full_precision(self) -> None: ...


@runtime_checkable
class Kernels(Protocol):
    """Says, after ``load``, which kernels it really runs for the artifact: integer, float and the conversions
    between them (:class:`runtimes.kernels.KernelCensus`), read from its own optimized graph. ``example`` is an
    input batch, for runtimes that find out by running once."""

    def kernel_census(self, example: np.ndarray) -> KernelCensus: ...


@runtime_checkable
class LayerOutputs(Protocol):
    """Exposes the loaded artifact's intermediate activations, named by the eager module that computes
    them (``layer3.0.conv2``), so that parity can find the first layer that drifts (``--localize``)::

        tensors = rt.layer_tensors(eager_module_names)   # {module: what it exposes}, after load()
        outputs = rt.run_layers(batch)                    # {module: float32 activations}

    A runtime without it says why in a class attribute ``no_layer_outputs``.
    """

    def layer_tensors(self, modules: Sequence[str]) -> dict[str, str]: ...

    def run_layers(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...


CAPABILITIES: tuple[type, ...] = (BoundRun, SelfTimed, BatchedEval, Describes, Interleaves, LayerOutputs,
                                  ComputePrecision, FullPrecision, Kernels)


def layer_outputs_support(runtime: object) -> Support:
    """Whether a runtime (instance or class) can expose intermediate activations, and if not why."""
    if isinstance(runtime, LayerOutputs) or (isinstance(runtime, type) and issubclass(runtime, LayerOutputs)):
        return Support.yes()
    name = getattr(runtime, "name", type(runtime).__name__)
    return Support.no(getattr(runtime, "no_layer_outputs", f"{name} cannot expose intermediate activations"))


# ---------------------------------------------------------------- registration

@dataclass(frozen=True)
class RuntimeSpec:
    """A registered runtime: what its class declares, plus the class to instantiate."""

    name: str
    device: str
    formats: tuple[str, ...]
    reference_for: tuple[str, ...]
    framework: str
    capabilities: tuple[str, ...]  # names of the capability protocols the class implements
    cls: type
    description: str
    preload: tuple[str, ...] = ()  # modules its bench cells import, imported once by the sweep's cell server
    parity_for: tuple[str, ...] = ()  # formats parity also checks in this runtime (the portability check)

    def create(self, threads: int | None = None) -> Runtime:
        return self.cls(threads)

    def runs(self, fmt: str) -> bool:
        return fmt in self.formats


_SPECS: dict[str, RuntimeSpec] = {}


def register_runtime(cls: type) -> type:
    """Class decorator: validate the class's declarations and register it under its name."""
    missing = [a for a in ("name", "device", "formats", "framework") if not getattr(cls, a, None)]
    if missing:
        raise TypeError(f"runtime class {cls.__name__} does not declare {', '.join(missing)}")
    name = cls.name
    if name in _SPECS:
        raise ValueError(f"runtime {name!r} registered twice")
    formats = tuple(cls.formats)
    reference_for = tuple(getattr(cls, "reference_for", ()))
    if not set(reference_for) <= set(formats):
        raise TypeError(f"runtime {name!r} is declared the reference for formats it does not run")
    for other in _SPECS.values():
        clash = set(other.reference_for) & set(reference_for)
        if clash:
            raise ValueError(f"runtime {name!r} and {other.name!r} both claim to be the reference "
                             f"runtime of {', '.join(sorted(clash))}")
    doc = (cls.__doc__ or "").strip().splitlines()
    _SPECS[name] = RuntimeSpec(
        name=name, device=cls.device, formats=formats, reference_for=reference_for,
        framework=cls.framework,
        capabilities=tuple(p.__name__ for p in CAPABILITIES if issubclass(cls, p)),
        cls=cls, description=doc[0] if doc else "", preload=tuple(getattr(cls, "preload", ())),
        parity_for=tuple(getattr(cls, "parity_for", ())))
    return cls


def unregister_runtime(name: str) -> None:
    """Remove a registration (for tests that register a stub runtime)."""
    _SPECS.pop(name, None)


def registered_specs() -> list[RuntimeSpec]:
    """The specs registered so far, in registration order (see :mod:`runtimes.registry`)."""
    return list(_SPECS.values())


def as_batch(batch: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 NCHW array: every runtime is fed the same bytes."""
    arr = np.ascontiguousarray(batch, dtype=np.float32)
    if arr.ndim != 4:
        raise BadInputError(f"expected a float32 NCHW batch, got shape {arr.shape}")
    return arr


def check_threads(threads: int | None) -> int | None:
    """The one validation of a thread count (None = the runtime's default)."""
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise BadInputError(f"threads must be an integer >= 1, got {threads!r}")
    return threads
