"""Eager PyTorch runtimes (``eager``, ``eager-cuda``): the reference every artifact is checked against.

They run the *reference* record (format ``eager``): the structure is rebuilt
with :func:`runtimes.structure.skeleton` and the state_dict is loaded with
``torch.load(weights_only=True)``, so nothing is unpickled as code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from runtimes.errors import ArtifactError
from runtimes.manifest import ArtifactRecord, Format
from runtimes.protocol import CPU, CUDA, register_runtime
from runtimes.torch_runtime import TorchRuntime


class EagerRuntime(TorchRuntime):
    formats = (Format.EAGER,)
    format_reason = "eager runtime runs eager references (.eager.pt state_dicts) only"

    def _build(self, path: Path, artifact: ArtifactRecord) -> Any:
        from runtimes import structure

        model = structure.skeleton(arch=artifact.model, num_classes=artifact.num_classes,
                                   precision=artifact.precision.value,
                                   keep=artifact.quantization.keep_float,
                                   shapes=artifact.channels.shapes if artifact.channels else None)
        try:
            state = structure.state_dict_bytes_safe_load(path)
            model.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            # Bad keys/shapes (RuntimeError), a truncated file (EOFError), or something
            # weights_only=True refuses to unpickle (UnpicklingError).
            raise ArtifactError(f"{path} is not a loadable state_dict of {artifact.model} "
                                f"({artifact.precision.value}): {exc}") from exc
        return model.eval()


@register_runtime
class Eager(EagerRuntime):
    """PyTorch eager mode on the CPU: the reference model itself."""

    name = "eager"
    device = CPU
    reference_for = (Format.EAGER,)


@register_runtime
class EagerCuda(EagerRuntime):
    """PyTorch eager mode on a CUDA GPU (FP32/FP16; fbgemm INT8 has no CUDA kernels)."""

    name = "eager-cuda"
    device = CUDA
