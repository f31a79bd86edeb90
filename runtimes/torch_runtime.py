"""What the PyTorch runtimes share: sha256 check, threads, the quantized engine, device-resident calls.

:class:`TorchRuntime` is subclassed per format (:mod:`runtimes.eager`,
:mod:`runtimes.torchscript`) and per device. torch is imported lazily:
``supports`` never imports it for CPU runtimes.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from runtimes.errors import RuntimeUnavailable
from runtimes.manifest import QUANTIZED, ArtifactRecord, checked_path
from runtimes.kernels import KernelCensus
from runtimes.protocol import CUDA, BoundRun, Describes, Interleaves, Kernels, Support, as_batch, check_threads

NO_CUDA_INT8 = "fbgemm INT8 has no CUDA kernels"


@functools.lru_cache(maxsize=1)
def torch_cuda_reason() -> str | None:
    """None when torch sees a CUDA GPU, else why not."""
    import torch

    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            return "no CUDA GPU (this torch build has no CUDA support)"
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    return None


class TorchRuntime(BoundRun, Describes, Interleaves, Kernels):
    """Common load/run logic; subclasses declare the format and build the module (``_build``)."""

    framework: ClassVar[str] = "pytorch"
    # ``import torch`` is 2-3 s of every fresh cell process on a 2-core machine; torchvision is what
    # unpickling an eager artifact imports next.
    preload: ClassVar[tuple[str, ...]] = ("torch", "torchvision")
    name: ClassVar[str]
    device: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]
    reference_for: ClassVar[tuple[str, ...]] = ()
    format_reason: ClassVar[str]  # why another format is refused

    def __init__(self, threads: int | None = None) -> None:
        self.threads = check_threads(threads)
        self._module: Any = None
        self._bound: Any = None
        self._out: Any = None
        self._qengine: str | None = None

    # -- protocol
    def supports(self, artifact: ArtifactRecord) -> Support:
        if artifact.format not in self.formats:
            return Support.no(self.format_reason)
        if self.device == CUDA:
            if artifact.precision in QUANTIZED:
                return Support.no(NO_CUDA_INT8)
            reason = torch_cuda_reason()
            return Support.no(reason) if reason else Support.yes()
        return Support.yes()

    def load(self, run_dir: Path, artifact: ArtifactRecord) -> None:
        support = self.supports(artifact)
        if not support.ok:
            raise RuntimeUnavailable(f"{self.name} cannot run {artifact.path}: {support.reason}")
        path = checked_path(run_dir, artifact)
        import torch

        from runtimes import structure  # silences torch.ao deprecation warnings too

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        if artifact.precision in QUANTIZED:
            self._qengine = structure.set_quantized_engine()
        module = self._build(path, artifact)
        self._module = module.to(self.device) if self.device == CUDA else module

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.bind(batch)
        self.run_bound()
        return self.fetch()

    def close(self) -> None:
        self._module = self._bound = self._out = None
        if self.device == CUDA:
            import torch

            torch.cuda.empty_cache()

    @property
    def module(self) -> Any:
        """The loaded torch module (e.g. for forward hooks on an eager reference)."""
        if self._module is None:
            raise RuntimeError(f"{self.name}: call load() first")
        return self._module

    # -- Kernels
    def kernel_census(self, example: np.ndarray) -> KernelCensus:
        """One recorded forward: each top-level operator, integer when its input is a quantized tensor."""
        import torch

        from runtimes import kernels

        x = torch.from_numpy(as_batch(example))
        ops = kernels.profile_torch_module(self.module, x.to(self.device) if self.device == CUDA else x)
        return kernels.census_of_torch(ops, f"{self.name} (torch {torch.__version__}) one recorded forward")

    # -- Interleaves
    @classmethod
    def share_threads(cls, threads: int | None, with_others: bool = False) -> None:
        """Nothing to do: every module of a process already runs on torch's one intra-op pool."""

    # -- BoundRun
    def bind(self, batch: np.ndarray) -> None:
        import torch

        x = torch.from_numpy(as_batch(batch))
        self._bound = x.to(self.device) if self.device == CUDA else x

    def run_bound(self) -> None:
        import torch

        if self._module is None or self._bound is None:
            raise RuntimeError(f"{self.name}: call load() and bind() before run_bound()")
        with torch.inference_mode():
            self._out = self._module(self._bound)
        if self.device == CUDA:
            torch.cuda.synchronize()

    def fetch(self) -> np.ndarray:
        if self._out is None:
            raise RuntimeError(f"{self.name}: nothing has run yet")
        return self._out.detach().float().cpu().numpy()

    # -- Describes
    def info(self) -> dict[str, str | int]:
        import torch

        info: dict[str, str | int] = {
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": self.device,
        }
        if self._qengine:
            info["quantized_engine"] = self._qengine
        if self.device == CUDA and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
        return info

    def _build(self, path: Path, artifact: ArtifactRecord) -> Any:
        raise NotImplementedError
