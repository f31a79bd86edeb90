"""OpenVINO's CPU plugin (``openvino``) for ``.onnx`` artifacts: the runtime many x86 deployments choose.

It reads the very ONNX files ONNX Runtime runs (FP32, FP16, INT8 QDQ, mixed, slim,
peers), so it is also the portability check of :mod:`runtimes.parity`: an artifact
only one runtime reads correctly is not a portable ONNX.

How a batch runs, as OpenVINO documents for its two performance hints:

* batch 1: ``PERFORMANCE_HINT=LATENCY`` (one stream, every thread on one request);
* batch > 1: ``PERFORMANCE_HINT=THROUGHPUT``: the plugin chooses several streams, and
  the batch is split across that many infer requests run concurrently (an
  ``AsyncInferQueue``), which is how a throughput deployment uses it. One
  synchronous request on a THROUGHPUT model would use one stream's threads only
  (measured: half the speed of LATENCY at batch 8 on 2 cores).

The model is compiled on the first batch of each kind, so a cell times inference only.

**Inference precision.** The CPU plugin may compute the float parts of a model in a
narrower type than the file's: ``bf16`` on CPUs with AVX512-BF16 or AMX, by default
(``INFERENCE_PRECISION_HINT``). That is what a user of OpenVINO gets, so it is what
is measured; :meth:`OpenVinoCpu.compute_precision` says so, every record carries it,
and parity gates an FP32 artifact computed in bf16 with the ``bf16`` tolerance row
(:mod:`runtimes.parity`). ``SHRINKWRAP_OPENVINO_PRECISION=f32`` asks for full FP32.

Threads: ``INFERENCE_NUM_THREADS`` when given; OpenVINO's TBB workers sleep when
idle, so interleaving with another runtime in one process needs nothing more here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from runtimes.errors import ArtifactError, RuntimeUnavailable
from runtimes.manifest import ArtifactRecord, Format, checked_path
from runtimes.kernels import KernelCensus
from runtimes.protocol import (CPU, BoundRun, ComputePrecision, Describes, FullPrecision, Interleaves, Kernels,
                               LayerOutputs,
                               Support,
                               as_batch, check_threads, register_runtime)

LATENCY, THROUGHPUT = "LATENCY", "THROUGHPUT"
PRECISION_ENV = "SHRINKWRAP_OPENVINO_PRECISION"  # e.g. "f32": OpenVINO's INFERENCE_PRECISION_HINT


def openvino_reason() -> str | None:
    """None when the ``openvino`` package imports here, else why not (a skipped cell's reason)."""
    try:
        import openvino  # noqa: F401
    except Exception as exc:  # ImportError, or a native library that does not load on this platform
        return f"the openvino package is not usable here ({type(exc).__name__}: {exc}); pip install openvino"
    return None


def _precision_name(value: Any) -> str:
    """OpenVINO's element type (``ov.Type.bf16``) → its short name: ``bf16``, ``f16``, ``f32``."""
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


@register_runtime
class OpenVinoCpu(BoundRun, ComputePrecision, Describes, FullPrecision, Interleaves, Kernels, LayerOutputs):
    """OpenVINO, CPU plugin (LATENCY hint at batch 1, THROUGHPUT streams for batches)."""

    name = "openvino"
    device = CPU
    formats = (Format.ONNX,)
    reference_for: tuple[str, ...] = ()
    framework = "openvino"
    preload = ("openvino",)
    # Parity checks every ONNX artifact here too (runtimes.parity): the portability check.
    parity_for = (Format.ONNX,)

    _core: ClassVar[Any] = None  # one ov.Core per process: it owns the plugin and its thread pools

    def __init__(self, threads: int | None = None) -> None:
        self.threads = check_threads(threads)
        self._model: Any = None
        self._path: Path | None = None
        self._input = self._output = ""
        self._compiled: dict[str, Any] = {}  # hint -> compiled model
        self._requests: dict[str, Any] = {}  # hint -> infer request (LATENCY) or AsyncInferQueue
        self._bound: np.ndarray | None = None
        self._last: np.ndarray | None = None
        self._layers: dict[str, Any] = {}  # module -> onnx_layers.LayerTensor
        self._layer_model: Any = None
        self._precision: str | None = None  # INFERENCE_PRECISION_HINT asked for (None: the environment's or OpenVINO's)

    @classmethod
    def core(cls) -> Any:
        if cls._core is None:
            import openvino as ov

            cls._core = ov.Core()
        return cls._core

    # -- protocol
    def supports(self, artifact: ArtifactRecord) -> Support:
        if artifact.format not in self.formats:
            return Support.no("openvino runs .onnx artifacts only")
        reason = openvino_reason()
        return Support.no(reason) if reason else Support.yes()

    def load(self, run_dir: Path, artifact: ArtifactRecord) -> None:
        support = self.supports(artifact)
        if not support.ok:
            raise RuntimeUnavailable(f"{self.name} cannot run {artifact.path}: {support.reason}")
        path = checked_path(run_dir, artifact)
        try:
            model = self.core().read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError/GeneralFailure with a long trace text
            raise ArtifactError(f"openvino cannot read {path}: {_first_line(exc)}") from exc
        inputs = [n for i in model.inputs for n in i.get_names()]
        outputs = [n for o in model.outputs for n in o.get_names()]
        if artifact.input.input_name not in inputs or artifact.input.output_name not in outputs:
            raise ArtifactError(f"{path} has inputs {inputs} and outputs {outputs} in openvino; the manifest "
                                f"says {artifact.input.input_name!r} → {artifact.input.output_name!r}")
        self._model, self._path = model, path
        self._input, self._output = artifact.input.input_name, artifact.input.output_name
        self._compile(LATENCY)  # compile now, so that a model OpenVINO cannot compile fails the load

    def _config(self, hint: str) -> dict[str, Any]:
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
        if self.threads is not None:
            config["INFERENCE_NUM_THREADS"] = self.threads
        precision = self._precision or os.environ.get(PRECISION_ENV)
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        return config

    def use_full_precision(self) -> None:
        """Float layers in f32 for the next load, whatever OpenVINO would choose (FullPrecision)."""
        self._precision = "f32"

    def _compile(self, hint: str) -> Any:
        if hint not in self._compiled:
            import openvino as ov

            if self._model is None:
                raise RuntimeError(f"{self.name}: call load() first")
            try:
                compiled = self.core().compile_model(self._model, "CPU", self._config(hint))
            except Exception as exc:
                raise ArtifactError(f"openvino cannot compile {self._path}: {_first_line(exc)}") from exc
            self._compiled[hint] = compiled
            if hint == LATENCY:
                self._requests[hint] = compiled.create_infer_request()
            else:
                queue = ov.AsyncInferQueue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
                self._requests[hint] = queue
        return self._compiled[hint]

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.bind(batch)
        self.run_bound()
        return self.fetch()

    def close(self) -> None:
        self._compiled, self._requests = {}, {}
        self._model = self._layer_model = None
        self._bound = self._last = None
        self._layers = {}

    # -- BoundRun: the input stays in host memory (the CPU plugin's own), so binding is keeping it
    def bind(self, batch: np.ndarray) -> None:
        self._bound = as_batch(batch)
        self._compile(LATENCY if len(self._bound) == 1 else THROUGHPUT)

    def run_bound(self) -> None:
        if self._bound is None:
            raise RuntimeError(f"{self.name}: call bind() before run_bound()")
        x = self._bound
        if len(x) == 1:
            request = self._requests[LATENCY]
            request.infer({self._input: x})
            self._last = request.get_tensor(self._output).data
            return
        queue = self._requests[THROUGHPUT]
        chunks = np.array_split(x, min(len(queue), len(x)))
        outputs: list[np.ndarray | None] = [None] * len(chunks)

        def done(request: Any, i: int) -> None:
            outputs[i] = request.get_tensor(self._output).data.copy()

        queue.set_callback(done)
        for i, chunk in enumerate(chunks):
            queue.start_async({self._input: chunk}, i)
        queue.wait_all()
        self._last = np.concatenate(outputs)  # type: ignore[arg-type]

    def fetch(self) -> np.ndarray:
        if self._last is None:
            raise RuntimeError(f"{self.name}: nothing has run yet")
        return np.array(self._last, dtype=np.float32, copy=True)

    # -- what it computed in
    def compute_precision(self) -> str | None:
        """The inference precision the CPU plugin chose for float layers (``bf16``, ``f16`` or ``f32``)."""
        compiled = self._compiled.get(LATENCY) or next(iter(self._compiled.values()), None)
        if compiled is None:
            return None
        return _precision_name(compiled.get_property("INFERENCE_PRECISION_HINT"))

    # -- Kernels
    def kernel_census(self, example: np.ndarray) -> KernelCensus:
        """Each executed layer of the compiled model for this batch size's hint, with its runtime precision."""
        import openvino as ov

        from runtimes import kernels

        compiled = self._compile(LATENCY if len(example) == 1 else THROUGHPUT)
        layers = [(str(op.get_rt_info()["layerType"].astype(str)), str(op.get_rt_info()["runtimePrecision"].astype(str)))
                  for op in compiled.get_runtime_model().get_ordered_ops()]
        return kernels.census_of_openvino(
            layers, f"{self.name} (openvino {ov.get_version().split('-')[0]}) compiled model")

    # -- Interleaves
    @classmethod
    def share_threads(cls, threads: int | None, with_others: bool = False) -> None:
        """Nothing to do: compiled models of one ov.Core share its TBB arenas, whose idle workers sleep."""

    # -- LayerOutputs
    def layer_tensors(self, modules: Sequence[str]) -> dict[str, str]:
        """Map the ONNX graph's module scopes to ``modules`` and compile a copy that also outputs them."""
        import onnx

        from runtimes import onnx_layers

        if self._path is None or self._model is None:
            raise RuntimeError(f"{self.name}: call load() first")
        layers = onnx_layers.module_outputs(onnx.load(str(self._path)), modules)
        model = self.core().read_model(str(self._path))
        known = {n for op in model.get_ops() for out in op.outputs() for n in out.get_names()}
        self._layers = {m: t for m, t in layers.items() if t.name in known}
        if self._layers:
            model.add_outputs([t.name for t in self._layers.values()])
        config = self._config(LATENCY)
        self._layer_model = self.core().compile_model(model, "CPU", config).create_infer_request()
        return {m: t.name for m, t in self._layers.items()}

    def run_layers(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self._layer_model is None:
            raise RuntimeError(f"{self.name}: call layer_tensors() first")
        self._layer_model.infer({self._input: as_batch(batch)})
        return {m: t.to_float(self._layer_model.get_tensor(t.name).data.copy()) for m, t in self._layers.items()}

    # -- Describes
    def info(self) -> dict[str, str | int]:
        import openvino as ov

        info: dict[str, str | int] = {
            "threads": self.threads if self.threads is not None else "openvino-default",
            "openvino": ov.get_version().split("-")[0],
            "device": self.device,
        }
        for hint, compiled in self._compiled.items():
            key = "latency" if hint == LATENCY else "throughput"
            info[f"{key}_streams"] = int(compiled.get_property("NUM_STREAMS"))
            info[f"{key}_requests"] = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            info["inference_threads"] = int(compiled.get_property("INFERENCE_NUM_THREADS"))
        if self._bound is not None:
            info["performance_hint"] = LATENCY if len(self._bound) == 1 else THROUGHPUT
        precision = self.compute_precision()
        if precision:
            info["inference_precision"] = precision
        return info


def _first_line(exc: BaseException) -> str:
    """OpenVINO's exceptions carry a multi-line trace of source locations: keep the message."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception from", "Check '", "/"))] or lines
    return (useful[0] if useful else type(exc).__name__)[:300]
