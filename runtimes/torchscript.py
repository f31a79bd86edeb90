"""TorchScript runtimes (``torchscript``, ``torchscript-cuda``): ``torch.jit.load`` of a ``.pt`` artifact.

The artifacts are traced and frozen, so loading them runs no Python model code.
INT8 artifacts hold fbgemm packed weights: the engine is set before loading
(see :class:`runtimes.eager.TorchRuntime`), and there are no CUDA kernels for them.
``bind``/``run_bound``/``fetch`` are described in :mod:`runtimes.eager`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtimes.artifact import ArtifactRecord, Format
from runtimes.base import Device, RuntimeName, register_runtime
from runtimes.eager import TorchRuntime
from runtimes.errors import ArtifactError


class TorchScriptRuntime(TorchRuntime):
    format = Format.TORCHSCRIPT
    format_reason = "torchscript runtime runs .pt artifacts only"

    def __init__(self, threads: int | None, device: Device) -> None:
        super().__init__(threads)
        self.device = device
        self.name = RuntimeName.TORCHSCRIPT if device == Device.CPU else RuntimeName.TORCHSCRIPT_CUDA

    def _build(self, path: Path, artifact: ArtifactRecord) -> Any:
        import torch

        try:
            module = torch.jit.load(str(path), map_location=self.device.value)
        except RuntimeError as exc:
            raise ArtifactError(f"{path} is not a loadable TorchScript file: {exc}") from exc
        return module.eval()


@register_runtime(RuntimeName.TORCHSCRIPT)
def _torchscript(threads: int | None) -> TorchScriptRuntime:
    return TorchScriptRuntime(threads, Device.CPU)


@register_runtime(RuntimeName.TORCHSCRIPT_CUDA)
def _torchscript_cuda(threads: int | None) -> TorchScriptRuntime:
    return TorchScriptRuntime(threads, Device.CUDA)
