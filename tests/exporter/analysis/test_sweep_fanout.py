"""The sweep on the local two-node Ray cluster: the same points as the local sweep, each point a task."""

from __future__ import annotations

import pytest

from exporter.analysis.records import read_sweep
from tests.conftest import SMALL, run_cli

SWEEP = ["--weights", "random", *SMALL, "--calib-images", "16", "--variants", "fp32-pruned,int8",
         "--sparsities", "0,0.5", "--prune-methods", "magnitude"]


@pytest.mark.slow
def test_the_sweep_fanned_out_has_the_local_sweeps_points(ray_cluster, tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    assert run_cli("sweep", "--out", str(here), *SWEEP).exit_code == 0
    res = run_cli("sweep", "--out", str(there), *SWEEP, "--executor", "ray", "--ray-address", ray_cluster.address)
    assert res.exit_code == 0, res.output
    a, b = read_sweep(here), read_sweep(there)
    key = lambda p: (p.variant, p.order, p.method, p.sparsity)  # noqa: E731
    assert [key(p) for p in a.points] == [key(p) for p in b.points] and len(a.points) == 6
    for p, q in zip(a.points, b.points):
        # the same build: the same zeros and the same file; the logits differ by thread count's rounding only
        assert (p.achieved_sparsity, p.onnx_bytes) == (q.achieved_sparsity, q.onnx_bytes)
        assert abs(p.sqnr_db - q.sqnr_db) < 0.5, (p, q)
