"""``shrinkwrap study``: many models, one job each, here or on the local two-node Ray cluster."""

from __future__ import annotations

import json

import pytest

from exporter.study.records import read_study
from runtimes.parity import read_parity
from tests.conftest import SMALL, run_cli
from tests.support.ray_cluster import NODE_CPUS

SMALL_RUN = [*SMALL, "--calib-images", "16", "--parity-images", "8", "--runtimes", "ort-cpu,torchscript",
             "--batch", "1", "--min-time", "0.05", "--min-iters", "3", "--retry-budget", "0"]


@pytest.mark.slow
def test_study_on_a_ray_cluster_returns_every_run_and_a_table(ray_cluster, sample_dir, tmp_path):
    out = tmp_path / "study"
    res = run_cli("study", "--models", "resnet18,mobilenet_v3_large", "--weights", "random", "--calib-data",
                  str(sample_dir), "--variants", "fp32,int8-dense", *SMALL_RUN, "--executor", "ray",
                  "--ray-address", ray_cluster.address, "--job-cpus", str(NODE_CPUS), "--out", str(out))
    record = read_study(out)
    assert record.executor == "ray" and [r.model for r in record.models] == ["resnet18", "mobilenet_v3_large"]
    for row in record.models:
        run_dir = out / row.run_dir
        assert (run_dir / "report.md").is_file() and (run_dir / "results.json").is_file()
        assert row.status == ("ok" if read_parity(run_dir).passed else "parity-failed")
        assert row.best is not None and row.best.median_ms > 0 and row.int8_over_fp32 > 0
    # exit 4 exactly when a model failed parity: the study is published either way
    assert res.exit_code == (4 if any(r.status != "ok" for r in record.models) else 0), res.output
    table = (out / "study.md").read_text()
    assert "| [resnet18](resnet18/report.md) |" in table and "INT8/FP32" in table
    assert not list(tmp_path.glob(".study.partial-*"))  # the staging directory went away


def test_study_here_and_its_refusals(sample_dir, tmp_path):
    out = tmp_path / "study"
    res = run_cli("study", "--models", "resnet18", "--weights", "random", "--calib-data", str(sample_dir),
                  "--variants", "fp32", *SMALL_RUN, "--out", str(out))
    assert res.exit_code == 0, res.output
    row, = read_study(out).models
    assert row.status == "ok" and row.best.variant == "fp32" and row.int8_over_fp32 is None
    json.loads((out / "study.json").read_text())  # numbers as numbers, one JSON object

    again = run_cli("study", "--models", "resnet18", "--out", str(out), "--weights", "random")
    assert again.exit_code == 2 and "exists and is not empty: pass --force" in again.output
    unknown = run_cli("study", "--models", "resnet18,lenet", "--out", str(tmp_path / "x"), "--weights", "random")
    assert unknown.exit_code == 2 and "unknown model(s) lenet" in unknown.output
    assert not (tmp_path / "x").exists()


def test_a_weights_directory_gives_each_model_its_own_checkpoint(sample_dir, tmp_path):
    """``--weights DIR``: each model's checkpoint is DIR/<model>.pt (docs/family_study.py trains one per family);
    a model without one is refused in one line before any work."""
    import torch

    from runtimes.architectures import build_float_model
    from runtimes.manifest import read_manifest

    weights = tmp_path / "weights"
    weights.mkdir()
    torch.manual_seed(0)
    torch.save(build_float_model("resnet18", 1000).state_dict(), weights / "resnet18.pt")
    missing = run_cli("study", "--models", "resnet18,mobilenet_v3_large", "--weights", str(weights),
                      "--out", str(tmp_path / "none"))
    assert missing.exit_code == 2 and "no checkpoint for mobilenet_v3_large.pt" in missing.output, missing.output
    assert not (tmp_path / "none").exists()

    out = tmp_path / "study"
    res = run_cli("study", "--models", "resnet18", "--weights", str(weights), "--calib-data", str(sample_dir),
                  "--variants", "fp32,int8-dense", *SMALL_RUN, "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25",
                  "--target", "x86-avx2", "--out", str(out))
    assert res.exit_code in (0, 4), res.output  # an untrained checkpoint's INT8 may fail parity: published either way
    manifest = read_manifest(out / "resnet18")
    assert manifest.weights.source == "checkpoint" and manifest.weights.path == str((weights / "resnet18.pt").resolve())
    inputs = {(tuple(a.input.mean), tuple(a.input.std)) for a in manifest.artifacts}
    assert inputs == {((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))}
    assert {a.quantization.target for a in manifest.artifacts if a.variant == "int8-dense"} == {"x86-avx2"}
