"""The deployment API: load one artifact of a run directory and run it, from Python.

    import numpy as np, runtimes

    runtimes.verify("artifacts/run")                           # every file matches its sha256
    with runtimes.load("artifacts/run/int8.onnx") as model:    # default runtime for .onnx: ort-cpu
        logits = model.run(np.zeros((1, 3, 224, 224), np.float32))

The manifest beside the file says what it is (format, precision, input shape,
names); the file's sha256 is checked before it is loaded. Nothing here imports
``exporter``, matplotlib, zstandard or cpuinfo, and torch only when the chosen
runtime is a PyTorch one.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np

from runtimes import registry
from runtimes.errors import BadInputError, RuntimeUnavailable
from runtimes.manifest import ArtifactRecord, Manifest, read_manifest, require_verified
from runtimes.protocol import Runtime, as_batch


class LoadedArtifact:
    """One artifact loaded in one runtime: ``run(x) -> logits``, then ``close()`` (or ``with``)."""

    def __init__(self, runtime: Runtime, record: ArtifactRecord, path: Path) -> None:
        self.runtime = runtime
        self.record = record
        self.path = path

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(-1, C, H, W): the dynamic batch dimension is -1."""
        return tuple(int(d) for d in self.record.input.shape)

    def run(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, C, H, W) preprocessed images → float32 (N, num_classes) logits."""
        batch = as_batch(x)
        if tuple(batch.shape[1:]) != self.input_shape[1:]:
            raise BadInputError(f"{self.path.name} takes (N, {', '.join(map(str, self.input_shape[1:]))}) "
                                f"inputs, got {tuple(batch.shape)}")
        return self.runtime.run(batch)

    def close(self) -> None:
        self.runtime.close()

    def __enter__(self) -> "LoadedArtifact":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LoadedArtifact({str(self.path)!r}, runtime={self.runtime.name!r})"


def load(path: str | Path, runtime: str | None = None, threads: int | None = None) -> LoadedArtifact:
    """Load the artifact at ``path`` (a file in a run directory) in ``runtime``.

    Without ``runtime``, the reference runtime of the file's format is used
    (``ort-cpu`` for ONNX, ``torchscript`` for TorchScript, ``eager`` for an eager
    reference). Raises :class:`~runtimes.errors.ArtifactError` when the file is not
    in the manifest or was modified, :class:`~runtimes.errors.BadInputError` for a
    runtime that does not run its format, and
    :class:`~runtimes.errors.RuntimeUnavailable` when the runtime cannot run here.
    """
    path = Path(path)
    record = read_manifest(path.parent).find(path.name)
    spec = registry.get_spec(runtime) if runtime is not None else registry.reference_runtime(record.format)
    if not spec.runs(record.format):
        raise BadInputError(f"runtime {spec.name!r} runs {', '.join(spec.formats)} files, "
                            f"not {record.format} ({path.name})")
    rt = spec.create(threads)
    support = rt.supports(record)
    if not support.ok:
        raise RuntimeUnavailable(f"{spec.name} cannot run {path.name} here: {support.reason}")
    rt.load(path.parent, record)
    return LoadedArtifact(rt, record, path)


def verify(run_dir: str | Path) -> Manifest:
    """Check a run directory: every file the manifest names is present with its recorded
    sha256, and nothing foreign is there. Returns the manifest; raises
    :class:`~runtimes.errors.ArtifactError` listing every problem otherwise."""
    return require_verified(Path(run_dir))
