"""The executor's options and the pure parts of the fan-out: validated once, merged exactly."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from runtimes import metrics
from runtimes.bench.fanout import ShardCounts, merge_counts, shard_ranges
from runtimes.errors import ArtifactError, BadInputError
from runtimes.executor.blobs import Blob, StagedRun, sha256_bytes, write_staged
from runtimes.executor.options import ExecutorKind, ExecutorOptions
from runtimes.executor.ray_cluster import check_reachable


def test_local_is_the_default_and_refuses_cluster_flags():
    assert ExecutorOptions().kind is ExecutorKind.LOCAL and not ExecutorOptions().distributed
    with pytest.raises(BadInputError, match="--targets needs --executor ray"):
        ExecutorOptions(targets=("a",))
    with pytest.raises(BadInputError, match="--ray-address needs --executor ray"):
        ExecutorOptions(address="127.0.0.1:6379")


@pytest.mark.parametrize("kw, message", [
    (dict(kind="slurm"), "--executor must be one of local, ray"),
    (dict(kind="ray", targets=("a b",)), "is not a target name"),
    (dict(kind="ray", max_retries=-1), "--max-retries must be an integer >= 0"),
    (dict(kind="ray", job_cpus=0), "--job-cpus must be > 0"),
    (dict(kind="ray", shard_images=0), "--shard-images must be an integer >= 1"),
    (dict(kind="ray", targets=("a",)), "--targets needs a cluster"),
])
def test_bad_executor_options_are_one_line(kw, message, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(BadInputError, match=message):
        ExecutorOptions(**kw)


def test_ray_not_importable_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(BadInputError, match="needs the ray package, which is not importable"):
        ExecutorOptions(kind="ray")


def test_address_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert ExecutorOptions(kind="ray").resolved_address() == "10.0.0.1:6379"
    assert ExecutorOptions(kind="ray", address="h:1").resolved_address() == "h:1"


def test_an_unreachable_address_is_one_line_in_seconds():
    import socket

    with socket.socket() as s:  # a port nothing listens on: bind, learn it, close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BadInputError, match=f"--ray-address 127.0.0.1:{port}: cannot reach a Ray cluster"):
        check_reachable(f"127.0.0.1:{port}", timeout_s=2)


@pytest.mark.parametrize("n, batch", [(1000, 8), (1000, 7), (5, 8), (256, 1)])
def test_shard_ranges_cover_every_image_once_in_whole_batches(n, batch):
    ranges = shard_ranges(n, batch, 256)
    covered = [i for lo, hi in ranges for i in range(lo, hi)]
    assert covered == list(range(n))
    assert all((hi - lo) % batch == 0 for lo, hi in ranges[:-1])


def test_merged_shard_counts_equal_the_serial_accuracy_exactly():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((1000, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 1000)
    serial = metrics.topk_accuracy(logits, labels)
    shards = []
    for lo, hi in shard_ranges(1000, 8, 256):
        c = metrics.topk_correct(logits[lo:hi], labels[lo:hi])
        shards.append(ShardCounts(hi - lo, c[1], c[5]))
    top1, top5, n = merge_counts(shards)
    assert (top1, top5, n) == (serial[1], serial[5], 1000)  # equal floats, not close ones


def test_a_file_whose_hash_does_not_match_is_never_written(tmp_path):
    good, bad = b"artifact bytes", b"tampered bytes"
    staged = StagedRun(b"{}", (Blob("a.onnx", sha256_bytes(good), good), Blob("b.onnx", sha256_bytes(good), bad)))
    with pytest.raises(ArtifactError, match="b.onnx arrived with sha256 .* the manifest records .*: not run"):
        write_staged(staged, tmp_path / "run")
    assert not (tmp_path / "run" / "b.onnx").exists()
