"""ONNX Runtime runtimes (``ort-cpu``, ``ort-cuda``) for ``.onnx`` artifacts.

Both use ``ORT_ENABLE_ALL`` graph optimizations and ``intra_op_num_threads``
when threads are given (otherwise ORT's default: one thread per physical core).

``ort-cuda`` runs through IO binding so a benchmark can time the session alone::

    rt.bind(batch)     # OrtValue.ortvalue_from_numpy(batch, "cuda", 0): one host → device copy
    rt.run_bound()     # session.run_with_iobinding on the device-resident input; time this
    rt.fetch()         # device → host copy of the last output

``ort-cpu`` has the same three calls (binding a CPU OrtValue), so a benchmark can
treat every runtime alike. onnxruntime-gpu lists ``CUDAExecutionProvider`` even
where no GPU or CUDA libraries exist, so :func:`cuda_provider_reason` probes for
real: the CUDA driver and a GPU, then a tiny session that must keep the provider.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from runtimes import openmp
from runtimes.errors import ArtifactError, RuntimeUnavailable
from runtimes.manifest import ArtifactRecord, Format, checked_path
from runtimes.kernels import KernelCensus
from runtimes.protocol import (CPU, CUDA, BoundRun, Describes, Interleaves, Kernels, LayerOutputs, Support, as_batch,
                               check_threads, register_runtime)

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
ONLY_ONNX = "ort runtimes run .onnx artifacts only"


def _cuda_driver_reason() -> str | None:
    """Ask the CUDA driver API directly: cheaper than importing torch, and exact."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no CUDA GPU (the NVIDIA driver library libcuda.so.1 is not installed)"
    rc = lib.cuInit(0)
    if rc == 100:  # CUDA_ERROR_NO_DEVICE
        return "no CUDA GPU (the CUDA driver found no device)"
    if rc != 0:
        return f"no usable CUDA GPU (cuInit failed with CUDA error {rc})"
    count = ctypes.c_int(0)
    rc = lib.cuDeviceGetCount(ctypes.byref(count))
    if rc != 0 or count.value < 1:
        return "no CUDA GPU (the CUDA driver reports 0 devices)"
    return None


def _tiny_model() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    return model.SerializeToString()


@functools.lru_cache(maxsize=1)
def cuda_provider_reason() -> str | None:
    """None when ORT can really run on a CUDA GPU here, else the precise reason."""
    import onnxruntime as ort

    if CUDA_EP not in ort.get_available_providers():
        return f"this onnxruntime build ({ort.__version__}) has no CUDAExecutionProvider"
    reason = _cuda_driver_reason()
    if reason:
        return reason
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(_tiny_model(), opts, providers=[CUDA_EP, CPU_EP])
    except Exception as exc:  # ORT raises plain RuntimeError/Fail subclasses; keep the reason
        return f"onnxruntime could not create a CUDA session: {exc}"
    if CUDA_EP not in sess.get_providers():
        return ("onnxruntime fell back to the CPU: the CUDA execution provider did not load "
                "(CUDA runtime or cuDNN libraries missing or the wrong version)")
    return None


class OrtRuntime(BoundRun, Describes, Interleaves, Kernels, LayerOutputs):
    """ONNX Runtime with all graph optimizations; subclasses declare the device."""

    # True once share_threads() switched this process to ORT's global thread pools.
    _global_pools: ClassVar[bool] = False
    # True once share_threads(with_others=True): per-session pools whose idle threads do not spin.
    _no_spinning: ClassVar[bool] = False

    formats = (Format.ONNX,)
    reference_for: tuple[str, ...] = ()
    framework = "onnxruntime"
    preload = ("onnxruntime",)

    def __init__(self, threads: int | None = None) -> None:
        self.threads = check_threads(threads)
        self._sess: Any = None
        self._io: Any = None
        self._input = self._output = ""
        self._path: Path | None = None
        self._layers: dict[str, Any] = {}  # module -> onnx_layers.LayerTensor
        self._layer_sess: Any = None

    # -- protocol
    def supports(self, artifact: ArtifactRecord) -> Support:
        if artifact.format not in self.formats:
            return Support.no(ONLY_ONNX)
        if self.device == CUDA:
            reason = cuda_provider_reason()
            if reason:
                return Support.no(reason)
        return Support.yes()

    def load(self, run_dir: Path, artifact: ArtifactRecord) -> None:
        support = self.supports(artifact)
        if not support.ok:
            raise RuntimeUnavailable(f"{self.name} cannot run {artifact.path}: {support.reason}")
        path = checked_path(run_dir, artifact)
        sess = self._new_session(str(path), path)
        if self.device == CUDA and sess.get_providers()[0] != CUDA_EP:
            raise RuntimeUnavailable(f"onnxruntime did not use the CUDA provider for {path}: "
                                     f"got {sess.get_providers()}")
        inputs = [i.name for i in sess.get_inputs()]
        outputs = [o.name for o in sess.get_outputs()]
        if artifact.input.input_name not in inputs or artifact.input.output_name not in outputs:
            raise ArtifactError(f"{path} has inputs {inputs} and outputs {outputs}; the manifest "
                                f"says {artifact.input.input_name!r} → {artifact.input.output_name!r}")
        self._sess, self._input, self._output = sess, artifact.input.input_name, artifact.input.output_name
        self._path = path

    def _new_session(self, model: str | bytes, path: Path, optimized_to: Path | None = None) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimized_to is not None:
            opts.optimized_model_filepath = str(optimized_to)
            opts.log_severity_level = 3  # its warning: the file holds this machine's layout choices (that is the point)
        if OrtRuntime._global_pools:
            opts.use_per_session_threads = False  # the process's one pool (see share_threads)
        elif self.threads is not None:
            opts.intra_op_num_threads = self.threads
        # Spinning idle threads: off beside another framework's (share_threads), and where OpenMP's threads wait
        # passively (runtimes.openmp: chosen on a busy machine, or the user's OMP_WAIT_POLICY).
        if OrtRuntime._no_spinning or openmp.passive():
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        providers = [CPU_EP] if self.device == CPU else [(CUDA_EP, {"device_id": 0}), CPU_EP]
        try:
            return ort.InferenceSession(model, opts, providers=providers)
        except Exception as exc:  # onnxruntime's Fail/InvalidGraph/... share no public base class
            raise ArtifactError(f"onnxruntime cannot load {path}: {exc}") from exc

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self.device == CPU:
            return self._session().run([self._output], {self._input: as_batch(batch)})[0]
        self.bind(batch)
        self.run_bound()
        return self.fetch()

    def close(self) -> None:
        self._sess = self._io = self._layer_sess = None
        self._layers = {}

    # -- Kernels
    def kernel_census(self, example: np.ndarray) -> KernelCensus:
        """The graph after ORT's own optimizations, as a second session with the same options writes it."""
        import tempfile

        import onnx
        import onnxruntime as ort

        from runtimes import kernels

        if self._path is None:
            raise RuntimeError(f"{self.name}: call load() first")
        with tempfile.TemporaryDirectory(prefix="shrinkwrap-ort-") as tmp:
            optimized = Path(tmp) / "optimized.onnx"
            self._new_session(str(self._path), self._path, optimized_to=optimized)
            graph = onnx.load(str(optimized), load_external_data=False).graph
        return kernels.census_of_onnx((n.op_type for n in graph.node),
                                      f"{self.name} (onnxruntime {ort.__version__}) after its graph optimizations")

    # -- LayerOutputs
    def layer_tensors(self, modules: Sequence[str]) -> dict[str, str]:
        """Map the graph's module scopes to ``modules`` and open a session that also outputs them."""
        import onnx

        from runtimes import onnx_layers

        if self._path is None:
            raise RuntimeError(f"{self.name}: call load() first")
        proto = onnx.load(str(self._path))
        self._layers = onnx_layers.module_outputs(proto, modules)
        exposed = onnx_layers.with_outputs(proto, [t.name for t in self._layers.values()])
        self._layer_sess = self._new_session(exposed.SerializeToString(), self._path)
        return {m: t.name for m, t in self._layers.items()}

    def run_layers(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self._layer_sess is None:
            raise RuntimeError(f"{self.name}: call layer_tensors() first")
        names = [t.name for t in self._layers.values()]
        values = self._layer_sess.run(names, {self._input: as_batch(batch)})
        return {m: t.to_float(v) for (m, t), v in zip(self._layers.items(), values)}

    # -- Interleaves
    @classmethod
    def share_threads(cls, threads: int | None, with_others: bool = False) -> None:
        """Give every session of this process one global intra-op pool.

        With a pool per session, the idle session's threads keep spinning after each of
        its runs and slow the other session down: interleaved timings would be unfair.
        Beside another framework (``with_others``) even the one pool's spinning would slow
        that framework's runs (measured with OpenVINO: its FP32 resnet18 16.7 ms against 11.3 ms),
        and ORT's Python API cannot stop a global pool spinning: then each session gets its own
        pool with spinning off, as ORT documents for sharing a machine.
        """
        if with_others:
            OrtRuntime._no_spinning = True
            return
        if not OrtRuntime._global_pools:
            import onnxruntime as ort

            ort.set_global_thread_pool_sizes(threads or 0, 1)  # 0: one thread per physical core
            OrtRuntime._global_pools = True

    # -- device-resident calls for benchmarks
    def bind(self, batch: np.ndarray) -> None:
        import onnxruntime as ort

        where = self.device
        x = ort.OrtValue.ortvalue_from_numpy(as_batch(batch), where, 0)
        io = self._session().io_binding()
        io.bind_ortvalue_input(self._input, x)
        io.bind_output(self._output, where, 0)
        self._io, self._bound = io, x  # keep the OrtValue alive while it is bound

    def run_bound(self) -> None:
        if self._io is None:
            raise RuntimeError(f"{self.name}: call bind() before run_bound()")
        self._session().run_with_iobinding(self._io)
        self._io.synchronize_outputs()

    def fetch(self) -> np.ndarray:
        if self._io is None:
            raise RuntimeError(f"{self.name}: nothing has run yet")
        return self._io.copy_outputs_to_cpu()[0]

    def info(self) -> dict[str, str | int]:
        import onnxruntime as ort

        info: dict[str, str | int] = {
            # ORT's default (0) is one thread per physical core; say so rather than guess a number.
            "threads": self.threads if self.threads is not None else "ort-default",
            "onnxruntime": ort.__version__,
            "device": self.device,
        }
        if self._sess is not None:
            info["providers"] = ",".join(self._sess.get_providers())
        return info

    def _session(self) -> Any:
        if self._sess is None:
            raise RuntimeError(f"{self.name}: call load() first")
        return self._sess


@register_runtime
class OrtCpu(OrtRuntime):
    """ONNX Runtime, CPU execution provider."""

    name = "ort-cpu"
    device = CPU
    reference_for = (Format.ONNX,)


@register_runtime
class OrtCuda(OrtRuntime):
    """ONNX Runtime, CUDA execution provider, timed with IO binding."""

    name = "ort-cuda"
    device = CUDA
