"""Inputs: untrained models get BatchNorm statistics from the images the run feeds them, and say so."""

from __future__ import annotations

import json

import pytest

from runtimes.parity import read_parity
from tests.conftest import run_cli


@pytest.mark.slow
def test_untrained_efficientnet_at_224_with_real_images_passes_fp32_parity_at_60_db(tmp_path, sample_dir):
    """Settled on standard-normal noise, an untrained EfficientNet-B0 fed photographs was so ill-conditioned
    that its FP32 ONNX was 23 dB from eager; settled on the run's own images it is a well-conditioned network."""
    out = tmp_path / "run"
    res = run_cli("export", "--out", str(out), "--model", "efficientnet_b0", "--weights", "random",
                  "--variants", "fp32", "--calib-data", str(sample_dir), "--calib-images", "16",
                  "--parity-images", "8")
    assert res.exit_code == 0, res.output
    assert "BatchNorm statistics re-estimated on those 16 images" in res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"]["batchnorm_source"] == str(sample_dir)
    assert manifest["artifacts"][0]["input"]["shape"][-1] == 224  # the model's own size
    report = read_parity(out)
    assert report.inputs.source == "images"
    assert [r.runtime for r in report.results] == ["torchscript", "ort-cpu", "openvino"]
    for r in report.results:
        assert r.passed, (r.path, r.runtime, r.violations)
        if r.computed_in != "bf16":  # OpenVINO's bf16 (its default on CPUs that have it) is judged by its row
            assert r.sqnr_db >= 60.0, (r.path, r.runtime, r.sqnr_db)


def test_synthetic_calibration_keeps_synthetic_batchnorm(tmp_path):
    out = tmp_path / "run"
    res = run_cli("export", "--out", str(out), "--model", "squeezenet1_1", "--weights", "random", "--resize", "36",
                  "--input-size", "32", "--calib-images", "4", "--variants", "fp32", "--skip-parity")
    assert res.exit_code == 0, res.output
    weights = json.loads((out / "manifest.json").read_text())["weights"]
    assert weights["batchnorm_source"] == "synthetic" and "from synthetic inputs" in weights["label"]
