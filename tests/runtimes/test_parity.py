from __future__ import annotations

import json
import math

import numpy as np
import pytest

from exporter.parity_gate import require_parity
from runtimes import architectures, parity
from runtimes.errors import ArtifactError, BadInputError, ParityError
from runtimes.manifest import verify_run_dir


@pytest.fixture(scope="module")
def results(tiny_run_dir, tiny_inputs):
    return parity.check_parity(tiny_run_dir, tiny_inputs, "synthetic")


# The tiny run dir's files gated: 4 TorchScript, 5 ONNX; each ONNX also in OpenVINO (parity_for ONNX).
N_FILES, N_ONNX = 9, 5


def _by(results, path, runtime=None):
    """The result of ``path`` in ``runtime``; by default in its format's reference runtime (listed first)."""
    return next(r for r in results if r.path == path and runtime in (None, r.runtime))


def _in(results, runtime):
    return [r for r in results if r.runtime == runtime]


def test_all_artifacts_pass(results, tiny_inputs):
    assert len(results) == N_FILES + N_ONNX
    assert all(r.passed and not r.violations for r in results), [r.violations for r in results]
    assert {r.runtime for r in results} == {"torchscript", "ort-cpu", "openvino"}
    assert [r.path for r in _in(results, "openvino")] == [r.path for r in _in(results, "ort-cpu")]
    assert all(r.n_inputs == len(tiny_inputs) and r.input_source == "synthetic" for r in results)


def test_metric_values_are_what_the_runtimes_give(results):
    # fbgemm TorchScript computes exactly what the eager INT8 model computes.
    for path in ("int8.pt", "mixed.pt"):
        r = _by(results, path)
        assert r.sqnr_db == math.inf and r.max_abs_error == 0.0
    fp32 = _by(results, "fp32.onnx")
    assert fp32.max_abs_error < 1e-4 and fp32.sqnr_db > 80 and fp32.cosine > 0.9999999
    fp16 = _by(results, "fp16.onnx")
    assert 40 < fp16.sqnr_db < math.inf  # ORT's float16 kernels differ from torch's
    q = _by(results, "int8.onnx")
    assert q.cosine >= 0.99 and q.sqnr_db >= 15 and q.tolerance == parity.DEFAULT_TOLERANCES["int8"]
    assert all(any("untrained" in n for n in r.notes) for r in results)


def test_openvino_result_says_what_it_computed_in(results):
    """OpenVINO may run an FP32 file in bf16 (CPUs with BF16 instructions): then that result is judged by the
    bf16 row and says so; where it computed in f32 the fp32 row applies. Either way ORT's result is fp32's."""
    ov = _by(results, "fp32.onnx", "openvino")
    assert ov.computed_in in ("f32", "bf16")
    row = "bf16" if ov.computed_in == "bf16" else "fp32"
    assert ov.tolerance == parity.DEFAULT_TOLERANCES[row]
    fp16 = _by(results, "fp16.onnx", "openvino")
    assert fp16.tolerance == parity.DEFAULT_TOLERANCES["bf16" if fp16.computed_in == "bf16" else "fp16"]
    assert (ov.runtime_label == "openvino (bf16)") == (ov.computed_in == "bf16")
    assert any("judged by the bf16 row" in n for n in ov.notes) == (ov.computed_in == "bf16")
    assert _by(results, "fp32.onnx").tolerance == parity.DEFAULT_TOLERANCES["fp32"]
    # quantized files keep their own row whatever the runtime computed float layers in
    assert _by(results, "int8.onnx", "openvino").tolerance == parity.DEFAULT_TOLERANCES["int8"]


def test_peer_is_compared_with_fp32(results):
    peer = _by(results, "ort-quantize-static.onnx")
    assert peer.peer and peer.reference == "fp32" and peer.precision == "int8"
    assert peer.tolerance == parity.DEFAULT_TOLERANCES[parity.PEER]
    assert not _by(results, "int8.onnx").peer


def test_write_parity(results, copy_run_dir):
    run_dir = copy_run_dir()
    path = parity.write_parity(run_dir, results)
    data = json.loads(path.read_text())
    assert data["passed"] is True and len(data["results"]) == N_FILES + N_ONNX
    assert data["results"][0]["tolerance"]["min_cosine"] == parity.DEFAULT_TOLERANCES["fp32"].min_cosine
    assert verify_run_dir(run_dir) == []  # parity.json is one of the run dir's own outputs
    # read back typed, identical (bit-identical artifacts keep SQNR = inf)
    back = parity.read_parity(run_dir)
    assert back.passed is True and back.results == list(results)
    assert parity.read_parity(run_dir / "nope") is None


def test_perturbed_artifact_fails(copy_run_dir, rehash, tiny_inputs):
    import onnx
    from onnx import numpy_helper

    run_dir = copy_run_dir()
    model = onnx.load(str(run_dir / "fp32.onnx"))
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    init = next(i for i in model.graph.initializer if i.name in conv_weights)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, init.name))
    onnx.save(model, str(run_dir / "fp32.onnx"))
    rehash(run_dir, "fp32.onnx")

    res = parity.check_parity(run_dir, tiny_inputs, "synthetic", variants=["fp32"])
    bad = _by(res, "fp32.onnx")
    assert not bad.passed and _by(res, "fp32.pt").passed
    text = " | ".join(bad.violations)
    assert "fp32.onnx" in text and "sqnr" in text and "max rel error" in text
    with pytest.raises(ParityError, match="fp32.onnx"):
        require_parity(res)


def test_fp32_gate_scales_with_large_logits(copy_run_dir, rehash, tiny_inputs):
    """A correct FP32 export of a model whose logits reach 1e5 passes, though its absolute error (last bits of
    large numbers) is far above 1e-3; the same export with one layer damaged still fails."""
    import torch

    from tests.runtimes.conftest import ARCH, CLASSES, _onnx, _torchscript

    run_dir = copy_run_dir()
    torch.manual_seed(0)
    model = architectures.build_float_model(ARCH, CLASSES)
    with torch.no_grad():
        model.fc.weight.mul_(1e5)
        model.fc.bias.mul_(1e5)
    torch.save(model.state_dict(), run_dir / "fp32.eager.pt")
    _torchscript(model, run_dir / "fp32.pt")
    _onnx(model, run_dir / "fp32.onnx", opset=17)
    for name in ("fp32.eager.pt", "fp32.pt", "fp32.onnx"):
        rehash(run_dir, name)

    res = parity.check_parity(run_dir, tiny_inputs, "synthetic", variants=["fp32"])
    for r in res:
        assert r.passed, r.violations
        assert r.max_abs_error > 1e-3  # what the old absolute gate refused
        if r.computed_in == "bf16":  # OpenVINO's choice on this CPU: relative error of bf16, its own row
            assert r.tolerance == parity.DEFAULT_TOLERANCES["bf16"] and r.max_rel_error < 0.05
        else:
            assert r.max_rel_error < 1e-5 and "max_rel_error" in r.gated() and "max_abs_error" not in r.gated()

    with torch.no_grad():
        model.layer4[1].conv2.weight.mul_(1.05)  # one wrong layer, 5 %
    _onnx(model, run_dir / "fp32.onnx", opset=17)
    rehash(run_dir, "fp32.onnx")
    res = parity.check_parity(run_dir, tiny_inputs, "synthetic", variants=["fp32"])
    bad = _by(res, "fp32.onnx")
    assert not bad.passed and any("max rel error" in v for v in bad.violations), bad.violations
    # In OpenVINO the same damage is caught only where it computed in f32: bf16's rounding (8 significant bits)
    # is as large as one layer 5 % off, so the bf16 row cannot see it. The ORT result above is the FP32 gate.
    ov = _by(res, "fp32.onnx", "openvino")
    assert ov.passed is (ov.computed_in == "bf16"), ov


def test_unrecorded_change_is_refused(copy_run_dir, tiny_inputs):
    run_dir = copy_run_dir()
    (run_dir / "int8.onnx").write_bytes(b"not onnx")
    with pytest.raises(ArtifactError, match="int8.onnx"):
        parity.check_parity(run_dir, tiny_inputs, "synthetic")


def test_stricter_override_fails_only_the_inexact(tiny_run_dir, tiny_inputs):
    table = parity.parse_tolerance_overrides(["peer.sqnr=60"])
    res = parity.check_parity(tiny_run_dir, tiny_inputs[:4], "images", tolerances=table,
                              variants=["int8", "ort-quantize-static"])
    assert {(r.path, r.runtime) for r in res if not r.passed} == {("ort-quantize-static.onnx", "ort-cpu"),
                                                                   ("ort-quantize-static.onnx", "openvino")}
    peer = _by(res, "ort-quantize-static.onnx")
    assert len(peer.violations) == 1 and "sqnr" in peer.violations[0] and "< 60.0 dB" in peer.violations[0]
    assert all(r.input_source == "images" and r.n_inputs == 4 for r in res)



def test_a_failing_peer_is_reported_not_gated_unless_strict(tiny_run_dir, tiny_inputs, copy_run_dir):
    import xml.etree.ElementTree as ET

    from exporter.ci.junit import parity_junit

    table = parity.parse_tolerance_overrides(["peer.sqnr=60"])
    res = parity.check_parity(tiny_run_dir, tiny_inputs[:4], "synthetic", tolerances=table,
                              variants=["int8", "ort-quantize-static"])
    assert {r.path for r in res if not r.passed} == {"ort-quantize-static.onnx"}
    require_parity(res)  # the user's own artifacts passed: no exit 4
    with pytest.raises(ParityError, match="ort-quantize-static.onnx"):
        require_parity(res, strict_peers=True)
    cases = parity_junit(res).getroot().find("testsuite")
    assert cases.get("failures") == "0"
    skipped = [c.find("skipped").get("message") for c in cases.findall("testcase") if c.find("skipped") is not None]
    assert any(m.startswith("peer row, reported not gated: sqnr_db") for m in skipped)
    assert parity_junit(res, strict_peers=True).getroot().find("testsuite").get("failures") == "2"  # ORT, OpenVINO
    run_dir = copy_run_dir()
    parity.write_parity(run_dir, res)
    back = parity.read_parity(run_dir)
    assert back.passed is True and back.peers_passed is False


def test_parse_overrides():
    t = parity.parse_tolerance_overrides(["int8.cosine=0.995", "fp16.sqnr=25", "fp32.max_abs=none",
                                          "peer.top1=0.5"])
    assert t["int8"].min_cosine == 0.995 and t["int8"].min_sqnr_db == parity.DEFAULT_TOLERANCES["int8"].min_sqnr_db
    assert t["fp16"].min_sqnr_db == 25.0
    assert t["fp32"].max_abs_error is None
    assert t["peer"].min_top1_agreement == 0.5
    assert parity.DEFAULT_TOLERANCES["int8"].min_cosine == 0.99  # defaults untouched


@pytest.mark.parametrize("item,match", [
    ("int8.cosine", "ROW.METRIC=VALUE"), ("int8=0.9", "ROW.METRIC=VALUE"),
    ("int9.cosine=0.9", "unknown row"), ("int8.psnr=3", "unknown metric"),
    ("int8.cosine=high", "not a number"), ("fp16.sqnr=inf", "finite"),
])
def test_parse_overrides_errors(item, match):
    with pytest.raises(BadInputError, match=match):
        parity.parse_tolerance_overrides([item])


def test_bad_calls(tiny_run_dir, tiny_inputs):
    with pytest.raises(BadInputError, match="nope"):
        parity.check_parity(tiny_run_dir, tiny_inputs, "synthetic", variants=["nope"])
    with pytest.raises(BadInputError, match="shape"):
        parity.check_parity(tiny_run_dir, tiny_inputs[:, :, :32, :32], "synthetic", variants=["fp32"])
    with pytest.raises(BadInputError, match="input_source"):
        parity.check_parity(tiny_run_dir, tiny_inputs, "webcam", variants=["fp32"])


def test_synthetic_inputs(tiny_spec):
    a = parity.synthetic_inputs(4, tiny_spec, seed=3)
    assert a.shape == (4, 3, 64, 64) and a.dtype == np.float32
    np.testing.assert_array_equal(a, parity.synthetic_inputs(4, tiny_spec, seed=3))
    assert not np.array_equal(a, parity.synthetic_inputs(4, tiny_spec, seed=4))
    assert abs(float(a.std()) - 1.0) < 0.05


def test_the_quantization_noise_rule():
    """A runtime may add at most as much error as quantization did (3 dB), and only while the eager INT8 model
    approximates its float model at all (6 dB): below that an unrelated output (~0 dB) would pass."""
    from runtimes.parity import NOISE_RULE_MIN_EAGER_SQNR_DB, noise_rule

    bad = ["sqnr 11.70 dB < 15.0 dB"]
    assert noise_rule(bad, 15.9, 16.6, 3.0)[0]  # EfficientNet: ORT as close to FP32 as fbgemm
    assert "passed by the quantization-noise rule" in noise_rule(bad, 15.9, 16.6, 3.0)[1]
    assert noise_rule(bad, 14.0, 16.6, 3.0) == (True, noise_rule(bad, 14.0, 16.6, 3.0)[1])  # within 3 dB
    passed, said = noise_rule(bad, 12.0, 16.6, 3.0)
    assert not passed and "more than 3 dB below" in said
    passed, said = noise_rule(bad, 3.4, NOISE_RULE_MIN_EAGER_SQNR_DB - 0.1, 3.0)
    assert not passed and "does not apply" in said and "\n" not in said
    assert not noise_rule(["output has NaN or Inf"], 30.0, 30.0, 3.0)[0]


def test_the_bf16_rounding_rule():
    """A float file computed in bf16 may round at most 3 dB worse than the eager model itself does in bf16."""
    from runtimes.parity import BF16_RULE_MAX_LOSS_DB, bf16_rule

    bad = ["cosine 0.998840 < 0.999", "sqnr 24.64 dB < 25.0 dB"]
    passed, said = bf16_rule(bad, 24.6, 22.7)  # OpenVINO's untrained EfficientNet-B0 against eager in bf16
    assert passed and "passed by the bf16 rounding rule" in said and "cosine 0.998840" in said
    assert bf16_rule(bad, 22.7 - BF16_RULE_MAX_LOSS_DB, 22.7)[0]
    passed, said = bf16_rule(bad, 18.0, 22.7)
    assert not passed and "more than 3 dB below" in said and "\n" not in said
    assert not bf16_rule(["output has NaN or Inf"], 40.0, 22.7)[0]
    assert not bf16_rule(bad, float("nan"), 22.7)[0]


def test_a_bf16_result_failing_its_row_is_judged_against_eager_bf16(tiny_run_dir, tiny_inputs):
    """Where OpenVINO computes in bf16, an impossible bf16 row sends the result to the rounding rule, which
    measures the eager model in bf16; where it computes in f32 the bf16 row is never used."""
    table = parity.parse_tolerance_overrides(["bf16.sqnr=200"])
    res = parity.check_parity(tiny_run_dir, tiny_inputs[:8], "images", tolerances=table, variants=["fp32"])
    ov = _by(res, "fp32.onnx", "openvino")
    if ov.computed_in != "bf16":
        assert ov.eager_bf16_sqnr_db is None and not ov.passed_by_bf16_rule and ov.passed
        return
    assert ov.eager_bf16_sqnr_db is not None and 20.0 < ov.eager_bf16_sqnr_db < 80.0
    assert ov.passed is ov.passed_by_bf16_rule
    assert ov.passed == (ov.sqnr_db >= ov.eager_bf16_sqnr_db - parity.BF16_RULE_MAX_LOSS_DB)
    if ov.passed:
        assert ov.verdict().startswith("pass (bf16 rounding rule")
    else:
        assert "computed in bf16" in ov.violations[-1]


def test_eager_bf16_noise_is_measured_on_the_reference(tiny_run_dir, tiny_inputs):
    from runtimes.manifest import read_manifest

    manifest = read_manifest(tiny_run_dir)
    art = next(a for a in manifest.artifacts if a.variant == "fp32" and a.path.endswith(".onnx"))
    cache = {"fp32": parity._outputs(tiny_run_dir, manifest.reference_for("fp32"), tiny_inputs[:8], None)[1]}
    db = parity._eager_bf16_sqnr(tiny_run_dir, manifest, art, tiny_inputs[:8], cache, None)
    assert 20.0 < db < 80.0 and "fp32@bf16" in cache  # bf16's 8 significant bits: far from exact, far from noise


def test_quantized_files_are_judged_in_full_precision_in_openvino(results):
    """OpenVINO's bf16 inside an INT8 graph rounds again before each re-quantization; parity asks it for f32 so
    that the file's own arithmetic is judged (the bench runs its default)."""
    for r in _in(results, "openvino"):
        if r.precision in ("int8", "mixed"):
            assert r.computed_in == "f32", r
            assert any("float layers in f32 for parity" in n for n in r.notes), r.notes
        else:
            assert not any("for parity (use_full_precision)" in n for n in r.notes)
