"""TorchScript runtimes (``torchscript``, ``torchscript-cuda``): ``torch.jit.load`` of a ``.pt`` artifact.

The artifacts are traced and frozen, so loading them runs no Python model code.
INT8 artifacts hold fbgemm packed weights: the engine is set before loading
(see :class:`runtimes.torch_runtime.TorchRuntime`), and there are no CUDA kernels for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtimes.errors import ArtifactError
from runtimes.manifest import ArtifactRecord, Format
from runtimes.protocol import CPU, CUDA, register_runtime
from runtimes.torch_runtime import TorchRuntime


class TorchScriptRuntime(TorchRuntime):
    formats = (Format.TORCHSCRIPT,)
    format_reason = "torchscript runtime runs .pt artifacts only"
    no_layer_outputs = ("a TorchScript artifact is traced and frozen: torch.jit.freeze inlines every submodule, "
                        "so its graph keeps no module boundaries (no submodules, no scope names) whose outputs "
                        "could be exposed; localize the .onnx artifact of the same variant instead")

    def _build(self, path: Path, artifact: ArtifactRecord) -> Any:
        import torch

        try:
            module = torch.jit.load(str(path), map_location=self.device)
        except RuntimeError as exc:
            raise ArtifactError(f"{path} is not a loadable TorchScript file: {exc}") from exc
        return module.eval()


@register_runtime
class TorchScript(TorchScriptRuntime):
    """TorchScript (``torch.jit.load``) in Python on the CPU."""

    name = "torchscript"
    device = CPU
    reference_for = (Format.TORCHSCRIPT,)


@register_runtime
class TorchScriptCuda(TorchScriptRuntime):
    """TorchScript in Python on a CUDA GPU (FP32/FP16)."""

    name = "torchscript-cuda"
    device = CUDA
