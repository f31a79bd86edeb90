"""The executor's options: one frozen record, validated once (before any work starts)."""

from __future__ import annotations

import enum
import importlib.util
import os
import re
from dataclasses import dataclass

from runtimes.errors import BadInputError

ADDRESS_ENV = "RAY_ADDRESS"
# A deployment target is a Ray node resource ``target:<name>`` (``ray start --resources '{"target:amx": 1}'``).
TARGET_RESOURCE_PREFIX = "target:"
_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
DEFAULT_MAX_RETRIES = 3
DEFAULT_SHARD_IMAGES = 1024
NO_RAY = ("--executor ray needs the ray package, which is not importable here: install it with `make venv` "
          "(constraints.txt pins it)")


class ExecutorKind(str, enum.Enum):
    LOCAL = "local"
    RAY = "ray"


@dataclass(frozen=True)
class ExecutorOptions:
    kind: ExecutorKind = ExecutorKind.LOCAL
    # host:port of a running cluster's GCS, or "auto"; None: $RAY_ADDRESS, else a local cluster started for the run.
    address: str | None = None
    targets: tuple[str, ...] = ()  # each bench cell runs once per target, on nodes carrying target:<name>
    # How often Ray resubmits a task whose worker died (system failures only; a cell's own errors are records).
    max_retries: int = DEFAULT_MAX_RETRIES
    # CPUs each timing job (bench cell, comparison, study job) asks Ray for. A node runs as many timing jobs at
    # once as it has job_cpus-sized shares: by default this machine's core count, so a node of the same size
    # times one cell at a time, as the local sweep does. None: os.cpu_count().
    job_cpus: float | None = None
    # Images per accuracy shard (rounded up to whole batches): each shard is a task that stages its artifact and
    # loads its runtime once, about a second, so a shard should take much longer than that.
    shard_images: int = DEFAULT_SHARD_IMAGES

    def __post_init__(self) -> None:
        try:
            kind = ExecutorKind(self.kind)
        except ValueError:
            raise BadInputError(f"--executor must be one of {', '.join(k.value for k in ExecutorKind)}, "
                                f"got {self.kind!r}") from None
        object.__setattr__(self, "kind", kind)
        targets = tuple(dict.fromkeys(t.strip() for t in self.targets if t.strip()))
        for t in targets:
            if not _TARGET_NAME.match(t):
                raise BadInputError(f"--targets: {t!r} is not a target name (letters, digits, '_', '.', '-')")
        object.__setattr__(self, "targets", targets)
        if kind is ExecutorKind.LOCAL and (targets or self.address):
            flag = "--targets" if targets else "--ray-address"
            raise BadInputError(f"{flag} needs --executor ray (the local executor runs everything on this machine)")
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            raise BadInputError(f"--max-retries must be an integer >= 0, got {self.max_retries!r}")
        if self.job_cpus is not None and not self.job_cpus > 0:
            raise BadInputError(f"--job-cpus must be > 0, got {self.job_cpus!r}")
        if not isinstance(self.shard_images, int) or isinstance(self.shard_images, bool) or self.shard_images < 1:
            raise BadInputError(f"--shard-images must be an integer >= 1, got {self.shard_images!r}")
        if kind is ExecutorKind.RAY:
            if importlib.util.find_spec("ray") is None:
                raise BadInputError(NO_RAY)
            if targets and self.resolved_address() is None:
                raise BadInputError("--targets needs a cluster whose nodes carry them: give --ray-address "
                                    "(or set RAY_ADDRESS); a cluster started for the command has no targets")

    @property
    def distributed(self) -> bool:
        return self.kind is ExecutorKind.RAY

    def resolved_address(self) -> str | None:
        """The cluster to join: the option, else ``$RAY_ADDRESS``; None starts a local cluster for the run."""
        return self.address or os.environ.get(ADDRESS_ENV) or None

    def cpus_per_job(self) -> float:
        return float(self.job_cpus or os.cpu_count() or 1)


def target_resource(target: str) -> str:
    return f"{TARGET_RESOURCE_PREFIX}{target}"


LOCAL = ExecutorOptions()
