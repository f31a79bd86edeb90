"""Eager PyTorch runtimes (``eager``, ``eager-cuda``): the reference every artifact is checked against.

They run the *reference* record (format ``eager``): the structure is rebuilt
with :func:`runtimes.structure.skeleton` and the state_dict is loaded with
``torch.load(weights_only=True)``, so nothing is unpickled as code.

This module also holds what the torch-based runtimes share (:class:`TorchRuntime`):
sha256 check before loading, thread setting, the fbgemm engine for INT8, and the
device-resident calls benchmarks time::

    rt.bind(batch)     # host → device copy, once
    rt.run_bound()     # forward on the bound input; synchronizes CUDA; this is what to time
    rt.fetch()         # device → host copy of the last output

``run(batch)`` is ``bind`` + ``run_bound`` + ``fetch``. torch is imported lazily:
``supports`` never imports it for CPU runtimes.
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.artifact import ArtifactRecord, Format, Precision, sha256_file
from runtimes.base import Device, RuntimeName, Support, register_runtime
from runtimes.errors import ArtifactError, BadInputError, RuntimeUnavailable

QUANTIZED = (Precision.INT8, Precision.MIXED)
NO_CUDA_INT8 = "fbgemm INT8 has no CUDA kernels"


def checked_path(run_dir: Path, record: ArtifactRecord) -> Path:
    """The artifact's path, after checking that its sha256 is the one the manifest records."""
    path = Path(run_dir) / record.path
    if not path.is_file():
        raise ArtifactError(f"{path} not found (variant {record.variant!r}, {record.format.value})")
    digest = sha256_file(path)
    if digest != record.sha256:
        raise ArtifactError(f"{path} was modified: sha256 {digest[:12]}… but the manifest "
                            f"records {record.sha256[:12]}…")
    return path


def as_batch(batch: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 NCHW array (every runtime feeds the same bytes)."""
    arr = np.ascontiguousarray(batch, dtype=np.float32)
    if arr.ndim != 4:
        raise BadInputError(f"expected a float32 NCHW batch, got shape {arr.shape}")
    return arr


@functools.lru_cache(maxsize=1)
def torch_cuda_reason() -> str | None:
    """None when torch sees a CUDA GPU, else why not."""
    import torch

    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            return "no CUDA GPU (this torch build has no CUDA support)"
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    return None


def cuda_support(artifact: ArtifactRecord) -> Support:
    """Shared precision + GPU check of the torch CUDA runtimes."""
    if artifact.precision in QUANTIZED:
        return Support.no(NO_CUDA_INT8)
    reason = torch_cuda_reason()
    return Support.no(reason) if reason else Support.yes()


class TorchRuntime:
    """Common load/run logic; subclasses say which format they take and how to build the module."""

    name: RuntimeName
    device: Device
    format: Format
    format_reason: str

    def __init__(self, threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise BadInputError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self._module: Any = None
        self._bound: Any = None
        self._out: Any = None
        self._qengine: str | None = None

    # -- protocol
    def supports(self, artifact: ArtifactRecord) -> Support:
        if artifact.format != self.format:
            return Support.no(self.format_reason)
        if self.device == Device.CUDA:
            return cuda_support(artifact)
        return Support.yes()

    def load(self, run_dir: Path, artifact: ArtifactRecord) -> None:
        support = self.supports(artifact)
        if not support.ok:
            raise RuntimeUnavailable(f"{self.name.value} cannot run {artifact.path}: {support.reason}")
        path = checked_path(run_dir, artifact)
        import torch

        from runtimes import structure  # silences torch.ao deprecation warnings too

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        if artifact.precision in QUANTIZED:
            self._qengine = structure.set_quantized_engine()
        module = self._build(path, artifact)
        self._module = module.to(self.device.value) if self.device == Device.CUDA else module

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.bind(batch)
        self.run_bound()
        return self.fetch()

    def close(self) -> None:
        self._module = self._bound = self._out = None
        if self.device == Device.CUDA:
            import torch

            torch.cuda.empty_cache()

    # -- device-resident calls for benchmarks
    def bind(self, batch: np.ndarray) -> None:
        import torch

        x = torch.from_numpy(as_batch(batch))
        self._bound = x.to(self.device.value) if self.device == Device.CUDA else x

    def run_bound(self) -> None:
        import torch

        if self._module is None or self._bound is None:
            raise RuntimeError(f"{self.name.value}: call load() and bind() before run_bound()")
        with torch.inference_mode():
            self._out = self._module(self._bound)
        if self.device == Device.CUDA:
            torch.cuda.synchronize()

    def fetch(self) -> np.ndarray:
        if self._out is None:
            raise RuntimeError(f"{self.name.value}: nothing has run yet")
        return self._out.detach().float().cpu().numpy()

    def info(self) -> dict[str, str | int]:
        import torch

        info: dict[str, str | int] = {
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": self.device.value,
        }
        if self._qengine:
            info["quantized_engine"] = self._qengine
        if self.device == Device.CUDA and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
        return info

    def _build(self, path: Path, artifact: ArtifactRecord) -> Any:
        raise NotImplementedError


class EagerRuntime(TorchRuntime):
    format = Format.EAGER
    format_reason = "eager runtime runs eager references (.eager.pt state_dicts) only"

    def __init__(self, threads: int | None, device: Device) -> None:
        super().__init__(threads)
        self.device = device
        self.name = RuntimeName.EAGER if device == Device.CPU else RuntimeName.EAGER_CUDA

    def _build(self, path: Path, artifact: ArtifactRecord) -> Any:
        from runtimes import structure

        model = structure.skeleton(arch=artifact.model, num_classes=artifact.num_classes,
                                   precision=artifact.precision.value,
                                   keep=artifact.quantization.keep_float)
        try:
            state = structure.state_dict_bytes_safe_load(path)
            model.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            # Bad keys/shapes (RuntimeError), a truncated file (EOFError), or something
            # weights_only=True refuses to unpickle (UnpicklingError).
            raise ArtifactError(f"{path} is not a loadable state_dict of {artifact.model} "
                                f"({artifact.precision.value}): {exc}") from exc
        return model.eval()


@register_runtime(RuntimeName.EAGER)
def _eager(threads: int | None) -> EagerRuntime:
    return EagerRuntime(threads, Device.CPU)


@register_runtime(RuntimeName.EAGER_CUDA)
def _eager_cuda(threads: int | None) -> EagerRuntime:
    return EagerRuntime(threads, Device.CUDA)
