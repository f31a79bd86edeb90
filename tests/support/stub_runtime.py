"""A stub runtime for a device shrinkwrap has never heard of, registered from outside ``runtimes/``.

It proves that a runtime is one module plus one registration: the benchmark grid,
the cell processes (which import this module) and the report all pick it up.
It "runs" an ONNX artifact by a fixed random projection of the input, so its
logits are deterministic and have the right shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.manifest import ArtifactRecord, Format, checked_path
from runtimes.protocol import Support, as_batch, check_threads, register_runtime, registered_specs

NAME = "stub-npu"


class StubRuntime:
    """A pretend accelerator: projects the input to logits (test stub)."""

    name = NAME
    device = "npu"
    formats = (Format.ONNX,)
    reference_for: tuple[str, ...] = ()
    framework = "stub"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = check_threads(threads)
        self._w: np.ndarray | None = None

    def supports(self, artifact: ArtifactRecord) -> Support:
        return Support.yes() if artifact.format in self.formats else Support.no("stub-npu runs .onnx only")

    def load(self, run_dir: Path, artifact: ArtifactRecord) -> None:
        checked_path(run_dir, artifact)
        rng = np.random.default_rng(0)
        self._w = rng.standard_normal((3, artifact.num_classes)).astype(np.float32)

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = as_batch(batch)
        return x.mean(axis=(2, 3)) @ self._w

    def close(self) -> None:
        self._w = None


def register() -> None:
    if NAME not in {s.name for s in registered_specs()}:
        register_runtime(StubRuntime)


register()  # a cell process imports this module to get the runtime registered
