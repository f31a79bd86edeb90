"""Never less than asked without saying so: the sparsity shortfall, as a pure function and through ``export``."""

from __future__ import annotations

import json

from exporter.compress.unstructured import SHORTFALL_TOLERANCE, sparsity_shortfall
from runtimes.manifest import LayerSparsity, PruneRecord, SparsityRecord
from tests.conftest import run_cli

OBS = "obs (SparseGPT-style reconstruction from 8 calibration images)"


def _sparsity(achieved_per_layer: list[tuple[int, int]]) -> SparsityRecord:
    layers = [LayerSparsity(f"l{i}", z, t, z / t) for i, (z, t) in enumerate(achieved_per_layer)]
    zeros, total = sum(z for z, _ in achieved_per_layer), sum(t for _, t in achieved_per_layer)
    return SparsityRecord(requested=0.0, achieved=zeros / total, zeros=zeros, total=total, per_layer=layers)


def test_obs_cap_is_named_with_what_is_reachable_and_what_to_do():
    got = _sparsity([(950, 1000), (95, 100)])
    said = sparsity_shortfall(got, PruneRecord(method=OBS, scope="global", order="prune-then-quantize",
                                               requested=0.99))
    assert said is not None and "\n" not in said
    assert "requested sparsity 0.990 but achieved 0.950" in said
    assert "95%" in said and "at most 0.950 is reachable" in said
    assert "--prune-method magnitude" in said and "--prune-scope layer" in said


def test_no_shortfall_within_half_a_point_or_when_nothing_was_asked():
    got = _sparsity([(500, 1000)])
    assert sparsity_shortfall(got, PruneRecord(OBS, "global", None, 0.5)) is None
    assert sparsity_shortfall(got, PruneRecord(OBS, "global", None, 0.5 + SHORTFALL_TOLERANCE)) is None
    assert sparsity_shortfall(got, PruneRecord(None, None, None, 0.0)) is None
    other = sparsity_shortfall(got, PruneRecord("l1-unstructured", "layer", None, 0.6))
    assert other is not None and "requested sparsity 0.600 but achieved 0.500" in other


def test_export_says_and_records_the_shortfall(tmp_path, sample_dir):
    out = tmp_path / "run"
    res = run_cli("export", "--out", str(out), "--model", "squeezenet1_1", "--weights", "random", "--resize", "36",
                  "--input-size", "32", "--calib-data", str(sample_dir), "--calib-images", "8",
                  "--variants", "fp32-pruned", "--sparsity", "0.99", "--skip-parity")
    assert res.exit_code == 0, res.output
    assert "of 0.990 requested" in res.output and "at most 0.950 is reachable" in res.output
    art = json.loads((out / "manifest.json").read_text())["artifacts"][0]
    assert art["sparsity"]["achieved"] < 0.96 and "at most 0.950 is reachable" in art["sparsity"]["shortfall"]
    assert any("at most 0.950 is reachable" in w for w in art["warnings"])


def test_a_variant_that_prunes_nothing_says_natural_zeros_not_sparsity(tmp_path):
    """int8-dense and fp32 prune nothing: their zeros are the weights' own, never shown as a pruning result."""
    out = tmp_path / "run"
    res = run_cli("export", "--out", str(out), "--model", "squeezenet1_1", "--weights", "random", "--resize", "36",
                  "--input-size", "32", "--variants", "fp32,fp32-pruned", "--sparsity", "0.5",
                  "--prune-method", "magnitude", "--skip-parity")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    (dense,) = [ln for ln in lines if ln.lstrip("• ").startswith("fp32: writing")]
    (pruned,) = [ln for ln in lines if ln.lstrip("• ").startswith("fp32-pruned: writing")]
    assert "not pruned; natural zeros" in dense and "sparsity" not in dense
    assert "pruned sparsity 0.50" in pruned
