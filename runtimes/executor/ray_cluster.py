"""The Ray executor: join (or start) a cluster, check its deployment targets, submit units as tasks, gather.

What Ray does and shrinkwrap does not re-implement (docs.ray.io, "Task fault tolerance"): a task whose worker
process or node dies is resubmitted by Ray up to ``max_retries`` times, on any node that has the resources it
asked for, so a cell pinned to ``target:b`` is retried on a ``target:b`` node. A unit's own failures are not
retried (``retry_exceptions`` stays off): a cell records them, as it does locally. Results come back through
the object store; the caller publishes them only when every task has finished.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from runtimes.errors import BadInputError, ShrinkwrapError
from runtimes.executor.options import NO_RAY, ExecutorOptions, target_resource

CONNECT_TIMEOUT_S = 5.0
# A resource share small enough for many accuracy shards to run on one target node at once (CPU-bound only).
SHARED_TARGET_UNIT = 0.01


class ExecutorError(ShrinkwrapError):
    """The cluster cannot run the work (it went away, or a unit failed after its retries)."""


@dataclass(frozen=True)
class TaskFailed:
    """What a unit's result is when Ray gave up on it: its worker died more than ``max_retries`` times."""

    reason: str


def import_ray():
    try:
        import ray
    except ImportError:
        raise BadInputError(NO_RAY) from None
    return ray


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A plain TCP connect to a ``host:port`` address, so an unreachable cluster is one line in seconds,
    not ray.init's minute of retries. Other forms (``auto``, ``ray://``) are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in address:
        return
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise BadInputError(f"--ray-address {address}: cannot reach a Ray cluster there "
                            f"({exc.strerror or type(exc).__name__})") from None


class RayCluster:
    """A connection to a Ray cluster for one command: ``with RayCluster(opts) as cluster: ...``."""

    def __init__(self, opts: ExecutorOptions):
        self.opts = opts
        self.ray = import_ray()
        self.address = opts.resolved_address()
        self.started_here = self.address is None

    def __enter__(self) -> "RayCluster":
        ray = self.ray
        if self.address is not None:
            check_reachable(self.address)
        kwargs: dict[str, Any] = dict(log_to_driver=False, logging_level="ERROR", configure_logging=True)
        if self.started_here:
            kwargs.update(include_dashboard=False, num_cpus=os.cpu_count() or 1)
        # Workers import this very checkout, installed or not.
        root = str(Path(__file__).resolve().parents[2])
        env = {"PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        # The suite's fault hooks (SHRINKWRAP_TEST_*) reach the workers as they reach local cell processes.
        env.update({k: v for k, v in os.environ.items() if k.startswith("SHRINKWRAP_TEST_")})
        kwargs["runtime_env"] = {"env_vars": env}
        try:
            ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a local cluster"
            raise BadInputError(f"--ray-address {where}: cannot join the Ray cluster "
                                f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})"
                                ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.ray.shutdown()

    # ------------------------------------------------------------ nodes and targets

    def alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def nodes_for(self, target: str | None) -> list[dict[str, Any]]:
        if target is None:
            return self.alive_nodes()
        key = target_resource(target)
        return [n for n in self.alive_nodes() if n.get("Resources", {}).get(key, 0) > 0]

    def require_targets(self, targets: Sequence[str], job_cpus: float) -> None:
        """Every target has a live node large enough for one timing job; else one line, before any work."""
        for target in targets or (None,):
            nodes = self.nodes_for(target)
            if not nodes:
                carried = sorted({k for n in self.alive_nodes() for k in n.get("Resources", {})
                                  if k.startswith("target:")})
                raise BadInputError(f"--targets {target}: no live node of the cluster carries "
                                    f"{target_resource(target)} (carried: {', '.join(carried) or 'none'})")
            if max(n.get("Resources", {}).get("CPU", 0) for n in nodes) < job_cpus:
                where = f"target {target}" if target else "the cluster"
                raise BadInputError(f"no node of {where} has {job_cpus:g} CPUs for one timing job "
                                    f"(--job-cpus; the largest has "
                                    f"{max(n.get('Resources', {}).get('CPU', 0) for n in nodes):g})")

    # ------------------------------------------------------------ tasks

    def put(self, value: Any) -> Any:
        return self.ray.put(value)

    def submit(self, fn: Callable[..., Any], *args: Any, target: str | None = None, cpus: float = 1.0,
               exclusive: bool = True) -> Any:
        """Run ``fn(*args)`` as a task. ``exclusive``: it takes a whole unit of its target's resource (one
        timing job per target unit of a node); otherwise a small share (accuracy shards)."""
        resources = {} if target is None else {target_resource(target): 1.0 if exclusive else SHARED_TARGET_UNIT}
        remote = self.ray.remote(fn).options(num_cpus=cpus, resources=resources,
                                             max_retries=self.opts.max_retries, retry_exceptions=False)
        return remote.remote(*args)

    def gather(self, refs: Sequence[Any], on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        """Every task's result in submission order; a task Ray gave up on is a :class:`TaskFailed`. ``on_done``
        sees each as it completes (its index, its result)."""
        ray = self.ray
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the unit raised: not a worker fault
                    raise ExecutorError(f"a task failed: {str(exc.cause or exc).strip().splitlines()[-1]}") from None
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.OwnerDiedError, ray.exceptions.ObjectLostError) as exc:
                    value = TaskFailed(f"its worker died {self.opts.max_retries + 1} times "
                                       f"({type(exc).__name__}); Ray gave up after {self.opts.max_retries} retries")
                results[index[ref]] = value
                if on_done is not None:
                    on_done(index[ref], value)
        return results


def preflight(opts: ExecutorOptions) -> None:
    """Check a given cluster (reachable; every target carried by a node large enough) before any work;
    nothing to check when the command will start its own cluster."""
    if opts.resolved_address() is None:
        return
    with RayCluster(opts) as cluster:
        cluster.require_targets(opts.targets, opts.cpus_per_job())


def attempt_number() -> int:
    """Inside a task: how many times this task has started on this node, this start included (2 and more:
    a worker died running it and Ray retried it here). Counted in marker files under Ray's temp root, which
    outlives clusters: task ids repeat from one cluster to the next (job ids restart), so each marker is named by
    the node id too, random for every node start."""
    import ray

    ctx = ray.get_runtime_context()
    marks = Path(ctx.get_temp_dir()) / "shrinkwrap-attempts"
    marks.mkdir(parents=True, exist_ok=True)
    path = marks / f"{ctx.get_node_id()}-{ctx.get_task_id()}"
    with path.open("a") as f:
        f.write(f"{os.getpid()}\n")
    return len(path.read_text().splitlines())
