"""Sizes: file bytes and zstd bytes of an artifact."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from runtimes.bench.sizes import ZSTD_LEVEL, size_record
from runtimes.manifest import Format
from tests.support.manifests import record


def test_size_record_uses_zstd(tmp_path):
    import zstandard

    data = bytes(100_000) + np.random.default_rng(0).bytes(1000)
    (tmp_path / "a.pt").write_bytes(data)
    size = size_record(tmp_path, record("fp32", Format.TORCHSCRIPT, "a.pt", params=10, nonzero=4))
    assert (size.bytes, size.compression, size.params, size.nonzero_params) == (len(data), f"zstd-{ZSTD_LEVEL}", 10, 4)
    assert size.compressed_bytes == len(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data))
    assert size.compressed_bytes < 2000
    assert dataclasses.replace(size, nonzero_params=4).sparsity == pytest.approx(0.6)
