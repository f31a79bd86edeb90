"""Load, verify and run shrinkwrap artifacts: what a deployment needs (never imports ``exporter``).

``runtimes.load(path, runtime=None)`` and ``runtimes.verify(run_dir)`` are the
deployment API (:mod:`runtimes.api`). The benchmark harness lives in the
:mod:`runtimes.bench` subpackage, which importing this package does not import.
"""

import warnings

# torch.ao.quantization, quantized tensors and TorchScript warn on every call that they are
# deprecated; the README says so once. Installed here so every entry point (CLI, cell
# subprocesses, library users) gets it without importing torch.
_QUIET = (
    ".*torch.ao.quantization is deprecated.*",
    ".*reduce_range will be deprecated.*",
    ".*quantized tensor creation functions.*",
    ".*must run observer before calling calculate_qparams.*",
    ".*TypedStorage is deprecated.*",
    ".*legacy TorchScript-based ONNX export.*",
    ".*torch.jit.* is deprecated.*",
)


def quiet_quantization_warnings() -> None:
    for msg in _QUIET:
        warnings.filterwarnings("ignore", message=msg)


quiet_quantization_warnings()

from runtimes.api import LoadedArtifact, load, verify  # noqa: E402  (after the filters)

__all__ = ["LoadedArtifact", "load", "verify", "quiet_quantization_warnings"]
