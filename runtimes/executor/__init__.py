"""Where the units of a sweep run: here, one after another (``local``), or as tasks on a Ray cluster (``ray``).

Each bench cell, interleaved comparison, accuracy shard and per-model study job is already a self-contained
job with a typed record, so fanning out is a matter of where it runs, not what it does. ``local`` is the
behaviour shrinkwrap always had; ``ray`` (:mod:`runtimes.executor.ray_cluster`) submits the same units as Ray
tasks, pinned to deployment targets by custom node resources, retried by Ray when a worker dies, and fed
artifacts through the object store with their sha256 checked on arrival (:mod:`runtimes.executor.blobs`).
"""
