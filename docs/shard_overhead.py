"""What an accuracy shard costs beyond its images (docs/distributed.md, "Accuracy, in shards").

Each shard of ``--executor ray`` accuracy stages its run directory (manifest and artifact, sha256 checked),
creates and loads the runtime, evaluates its image range and closes. The same 1024 images are evaluated as one
shard and as 8 shards of 128, in one process (``run_shard_job`` called directly) and as Ray tasks on a local
cluster; the difference over the 7 extra shards is the per-shard overhead, with and without Ray's dispatch.

    .venv/bin/python docs/shard_overhead.py RUN_DIR EVAL_DIR [--variants fp32,int8-dense] [--runtime ort-cpu]
        [--format onnx]

RUN_DIR is an exported run (``shrinkwrap export``); EVAL_DIR an ImageFolder (the shared ImageNet sample), cycled
to 1024 images. One JSON line per variant on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from exporter.data import load_image_folder  # noqa: E402
from runtimes.architectures import Preprocess  # noqa: E402
from runtimes.bench.fanout import ShardJob, run_shard_job  # noqa: E402
from runtimes.executor.blobs import Blob, StagedRun, record_files  # noqa: E402
from runtimes.executor.options import ExecutorOptions  # noqa: E402
from runtimes.executor.ray_cluster import RayCluster  # noqa: E402
from runtimes.manifest import MANIFEST_NAME, read_manifest  # noqa: E402

IMAGES, BATCH, SMALL = 1024, 8, 128


def staged(run_dir: Path, manifest, record, put=lambda b: b) -> StagedRun:
    files = tuple(Blob(p, d, put((run_dir / p).read_bytes())) for p, d in record_files(manifest, [record]))
    return StagedRun((run_dir / MANIFEST_NAME).read_bytes(), files)


def jobs(stage: StagedRun, record, runtime: str, images, labels, shard: int) -> list[ShardJob]:
    return [ShardJob(stage, record, runtime, BATCH, 1, images, labels, lo, min(lo + shard, IMAGES))
            for lo in range(0, IMAGES, shard)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("eval_dir", type=Path)
    ap.add_argument("--variants", default="fp32,int8-dense")
    ap.add_argument("--runtime", default="ort-cpu")
    ap.add_argument("--format", default="onnx", help="the artifact format the runtime reads (onnx, torchscript)")
    args = ap.parse_args()
    manifest = read_manifest(args.run_dir)
    data = load_image_folder(args.eval_dir, Preprocess(256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    idx = np.arange(IMAGES) % len(data.images)
    images = np.ascontiguousarray(np.asarray(data.images)[idx], dtype=np.float32)
    labels = np.asarray(data.labels, dtype=np.int64)[idx]
    with RayCluster(ExecutorOptions(kind="ray", job_cpus=1)) as cluster:
        images_ref, labels_ref = cluster.put(images), cluster.put(labels)
        for variant in args.variants.split(","):
            record = next(r for r in manifest.records() if r.variant == variant and r.format == args.format)
            row: dict = {"variant": variant, "format": args.format, "runtime": args.runtime, "images": IMAGES, "batch": BATCH,
                         "cpus": os.cpu_count()}
            local = staged(args.run_dir, manifest, record)
            for shard in (IMAGES, SMALL):
                t0 = time.perf_counter()
                counts = [run_shard_job(j) for j in jobs(local, record, args.runtime, images, labels, shard)]
                row[f"direct_{shard}_s"] = round(time.perf_counter() - t0, 2)
                row[f"direct_{shard}_top1"] = sum(c.top1 for c in counts)
            remote = staged(args.run_dir, manifest, record, cluster.put)
            for shard in (IMAGES, SMALL):
                t0 = time.perf_counter()
                refs = [cluster.submit(run_shard_job, j, cpus=os.cpu_count() or 1, exclusive=False)
                        for j in jobs(remote, record, args.runtime, images_ref, labels_ref, shard)]
                counts = cluster.gather(refs)
                row[f"ray_{shard}_s"] = round(time.perf_counter() - t0, 2)
                row[f"ray_{shard}_top1"] = sum(c.top1 for c in counts)
            extra = IMAGES // SMALL - 1
            # Each Ray shard asks for every CPU, so they run one at a time as the direct ones do: node time.
            row["direct_overhead_per_shard_s"] = round((row[f"direct_{SMALL}_s"] - row[f"direct_{IMAGES}_s"]) / extra, 3)
            row["ray_overhead_per_shard_s"] = round((row[f"ray_{SMALL}_s"] - row[f"ray_{IMAGES}_s"]) / extra, 3)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
