"""The CLI: help for every command, one clear line and a non-zero exit for each bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from typer.testing import CliRunner

from exporter.cli import app
from runtimes.architectures import build_float_model
from runtimes.manifest import read_manifest, write_manifest
from runtimes.records import sha256_file
from tests.conftest import SMALL

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def assert_one_line_error(res, code: int | None = None, contains: str = "") -> None:
    assert res.exit_code != 0, res.output
    if code is not None:
        assert res.exit_code == code, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, res.output
    assert "Traceback" not in res.output
    assert contains in errors[0], errors[0]


COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]


def test_expected_commands_exist():
    assert {"variants", "export", "verify", "parity", "bench", "report", "run", "sweep",
            "sensitivity"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    res = invoke(command, "--help")
    assert res.exit_code == 0
    cmd = next(c for c in app.registered_commands if (c.name or c.callback.__name__) == command)
    assert cmd.callback.__doc__ and cmd.callback.__doc__.split(".")[0].split()[0] in res.output


def test_variants_lists_the_registry():
    res = invoke("variants")
    assert res.exit_code == 0
    for name in ("fp32", "fp32-pruned", "int8", "fp16", "mixed", "auto", "ort-quantize-static", "nncf-ptq"):
        assert name in res.output


@pytest.fixture()
def out(tmp_path) -> Path:
    return tmp_path / "out"


def _no_partial_output(out: Path) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if ".staging-" in p.name]


def _export(out: Path, *extra: str):
    return invoke("export", "--out", str(out), "--weights", "random", *SMALL, "--calib-images", "4",
                  "--variants", "fp32", "--skip-parity", *extra)


def test_bad_sparsity(out):
    for s in ("1.0", "-0.1", "1.5"):
        assert_one_line_error(_export(out, "--sparsity", s), 2, "--sparsity must be in [0, 1)")
    _no_partial_output(out)


def test_unknown_variant_and_model(out):
    assert_one_line_error(_export(out, "--variants", "int4"), 2, "unknown variant 'int4'")
    res = invoke("export", "--out", str(out), "--model", "vgg99", "--weights", "random")
    assert_one_line_error(res, 2, "unknown or unsupported model 'vgg99'")
    _no_partial_output(out)


def test_missing_and_empty_data_dirs(out, tmp_path):
    assert_one_line_error(_export(out, "--calib-data", str(tmp_path / "nope")), 2, "not found")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(_export(out, "--calib-data", str(tmp_path / "empty")), 2, "no class folders")
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    (tmp_path / "noimg" / "a" / "x.txt").write_text("hi")
    assert_one_line_error(_export(out, "--calib-data", str(tmp_path / "noimg")), 2, "holds no image files")
    _no_partial_output(out)


def test_corrupt_and_foreign_checkpoints(out, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(os.urandom(2000))
    res = invoke("export", "--out", str(out), "--weights", str(bad))
    assert_one_line_error(res, 2, "--weights")
    r50 = tmp_path / "r50.pt"
    torch.save(build_float_model("resnet50", 10).state_dict(), r50)
    res = invoke("export", "--out", str(out), "--weights", str(r50))
    assert_one_line_error(res, 2, "does not fit resnet18")
    _no_partial_output(out)


def test_pickle_payload_is_refused(out, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch /tmp/shrinkwrap-cli-pwned",))

    Path("/tmp/shrinkwrap-cli-pwned").unlink(missing_ok=True)
    p = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "x": Evil()}, p)
    assert_one_line_error(invoke("export", "--out", str(out), "--weights", str(p)), 2, "refused")
    assert not Path("/tmp/shrinkwrap-cli-pwned").exists()
    _no_partial_output(out)


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(_export(blocker / "sub"), 2, "cannot be written")
    assert_one_line_error(_export(blocker), 2, "not a directory")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write a read-only directory (root)")
        assert_one_line_error(_export(ro / "out"), 2, "cannot be written")
    finally:
        ro.chmod(0o700)


def test_refuses_to_overwrite_foreign_directory(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("precious")
    assert_one_line_error(_export(d), 2, "refusing to overwrite")
    assert (d / "thesis.tex").read_text() == "precious"


def test_verify_passes_then_catches_modified_missing_and_foreign(exported_copy):
    assert invoke("verify", str(exported_copy)).exit_code == 0
    with open(exported_copy / "int8.onnx", "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    assert_one_line_error(invoke("verify", str(exported_copy)), 3, "int8.onnx modified")
    (exported_copy / "fp16.pt").unlink()
    assert_one_line_error(invoke("verify", str(exported_copy)), 3, "fp16.pt missing")
    (exported_copy / "stray.onnx").write_bytes(b"x")
    assert_one_line_error(invoke("verify", str(exported_copy)), 3, "stray.onnx foreign")
    assert_one_line_error(invoke("verify", str(exported_copy.parent / "nope")), 3, "not found")


def _perturb_fp32_onnx(run_dir: Path) -> None:
    """Scale one conv weight, then re-sign the manifest so only parity can notice."""
    path = run_dir / "fp32.onnx"
    proto = onnx.load(str(path))
    init = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)) if len(t.dims) == 4 else 0)
    arr = numpy_helper.to_array(init) * 1.5
    init.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), init.name))
    onnx.save(proto, str(path))
    m = read_manifest(run_dir)
    arts = [a if a.path != "fp32.onnx" else a.__class__(**{**a.__dict__, "bytes": path.stat().st_size,
                                                             "sha256": sha256_file(path)}) for a in m.artifacts]
    write_manifest(run_dir, m.__class__(**{**m.__dict__, "artifacts": arts}))


def test_parity_passes_then_fails_on_a_perturbed_artifact(exported_copy):
    res = invoke("parity", str(exported_copy), "--images", "4")
    assert res.exit_code == 0, res.output
    _perturb_fp32_onnx(exported_copy)
    assert invoke("verify", str(exported_copy)).exit_code == 0  # the file is "legitimately" signed
    res = invoke("parity", str(exported_copy), "--images", "4")
    assert_one_line_error(res, 4, "fp32.onnx")
    assert "FAIL" in res.output
    # 4 inputs are not the 8 synthetic ones the export recorded: the result goes beside parity.json
    data = json.loads((exported_copy / "parity-synthetic-4.json").read_text())
    failed = [r for r in data["results"] if not r["passed"]]
    assert {r["path"] for r in failed} == {"fp32.onnx"}  # in ONNX Runtime, and in OpenVINO when it ran f32
    assert "ort-cpu" in {r["runtime"] for r in failed}
    assert json.loads((exported_copy / "parity.json").read_text())["passed"] is True
    assert invoke("verify", str(exported_copy)).exit_code == 0  # both are the run's own files
    # without options, parity re-checks the recorded inputs (8 synthetic) and records the failure there
    res = invoke("parity", str(exported_copy))
    assert_one_line_error(res, 4, "fp32.onnx")
    recorded = json.loads((exported_copy / "parity.json").read_text())
    assert recorded["passed"] is False and recorded["inputs"] == {"source": "synthetic", "n": 8, "data": None,
                                                                  "seed": 0}


def test_parity_tolerance_override_is_validated(exported_copy):
    res = invoke("parity", str(exported_copy), "--images", "2", "--tolerance", "int8.bogus=1")
    assert_one_line_error(res, 2)


def test_bench_rejects_unknown_runtime(exported_copy):
    assert_one_line_error(invoke("bench", str(exported_copy), "--runtimes", "tensorrt9"), 2,
                          "unknown runtime 'tensorrt9'")
    assert not (exported_copy / "results.json").exists()


def test_auto_without_eval_data_is_rejected(out):
    assert_one_line_error(_export(out, "--variants", "auto"), 2, "needs --eval-data")
    _no_partial_output(out)


def test_the_nncf_peer_without_calibration_images_is_rejected(out):
    assert_one_line_error(_export(out, "--variants", "fp32,nncf-ptq"), 2, "nncf-ptq variant needs --calib-data")
    _no_partial_output(out)


def test_the_nncf_peer_is_built_on_real_images_and_runs_everywhere_onnx_does(out, shapes):
    """nncf.quantize on the FP32 ONNX, calibrated on the given images: a QDQ ONNX recorded as NNCF's, gated
    against the FP32 model by the peer row in ONNX Runtime and in OpenVINO."""
    import onnx

    from runtimes.parity import read_parity

    res = invoke("export", "--out", str(out), "--weights", "random", *SMALL, "--calib-data", str(shapes["train"]),
                 "--calib-images", "16", "--parity-images", "8", "--variants", "fp32,nncf-ptq")
    assert res.exit_code == 0, res.output
    m = json.loads((out / "manifest.json").read_text())
    peer = next(a for a in m["artifacts"] if a["variant"] == "nncf-ptq")
    assert peer["format"] == "onnx" and peer["quantization"]["backend"].startswith("nncf ")
    assert peer["quantization"]["calib_images"] == 16 and "fast bias correction" in peer["quantization"]["scheme"]
    ops = {n.op_type for n in onnx.load(str(out / peer["path"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    rows = [r for r in read_parity(out).results if r.variant == "nncf-ptq"]
    assert [r.runtime for r in rows] == ["ort-cpu", "openvino"]
    assert all(r.peer and r.reference == "fp32" and r.passed for r in rows), [r.violations for r in rows]


def test_bench_with_eval_data_fills_accuracy_then_report(exported_copy, sample_dir):
    # Four variants (float, INT8, FP16, the peer) of the run's nine: what the test proves does not depend on how many.
    res = invoke("bench", str(exported_copy), "--runtimes", "ort-cpu,eager", "--batch", "4", "--min-time", "0.01",
                 "--min-iters", "2", "--attempts", "1", "--no-remeasure", "--eval-data", str(sample_dir), "--eval-images", "8",
                 "--variants", "fp32,int8,fp16,ort-quantize-static")
    assert res.exit_code == 0, res.output
    cells = json.loads((exported_copy / "results.json").read_text())["cells"]
    ok = [c for c in cells if c["status"] == "ok"]
    assert ok and all(c["eval_images"] == 8 and 0.0 <= c["top1"] <= 100.0 for c in ok)
    assert {c["runtime"] for c in ok} == {"ort-cpu", "eager"}
    assert invoke("report", str(exported_copy)).exit_code == 0
    text = (exported_copy / "report.md").read_text()
    assert "UNTRAINED" in text and "Top-1" in text


def test_models_and_runtimes_list_the_registries():
    res = invoke("models")
    assert res.exit_code == 0, res.output
    assert "inception_v3" in res.output and "299" in res.output and "efficientnet_b0" in res.output
    assert "none (float variants only)" in res.output
    res = invoke("runtimes")
    assert res.exit_code == 0, res.output
    for name in ("eager", "torchscript", "libtorch-cpp", "ort-cpu", "ort-cuda", "openvino"):
        assert name in res.output
    assert "SelfTimed" in res.output


def test_int8_on_a_model_without_a_lane_is_one_line_exit_2(out):
    res = invoke("export", "--out", str(out), "--model", "vit_b_16", "--weights", "random")
    assert_one_line_error(res, 2, "'vit_b_16' has no INT8 quantization lane")
    _no_partial_output(out)


def test_version():
    res = invoke("--version")
    assert res.exit_code == 0 and res.output.startswith("shrinkwrap ") and "torch " in res.output


def test_help_is_readable_at_80_columns():
    res = CliRunner().invoke(app, ["export", "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert res.exit_code == 0
    for flag in ("--fail-on-degenerate", "--allow-degenerate", "--max-accuracy-drop", "--calib-images", "--force"):
        assert flag in res.output
    assert "…" not in res.output and max(len(ln) for ln in res.output.splitlines()) <= 80


def test_an_earlier_run_is_replaced_only_with_force(exported_copy):
    before = sorted(p.name for p in exported_copy.iterdir())
    res = _export(exported_copy)
    assert_one_line_error(res, 2, "already holds a shrinkwrap run")
    assert "--force" in res.output and sorted(p.name for p in exported_copy.iterdir()) == before
    res = _export(exported_copy, "--force")
    assert res.exit_code == 0, res.output
    assert "--force: replacing the earlier run" in res.output and "int8.onnx" in res.output
    assert read_manifest(exported_copy).variants() == ["fp32"]


def test_force_never_replaces_a_directory_that_is_not_a_run(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("precious")
    assert_one_line_error(_export(d, "--force"), 2, "refusing to overwrite it (even with --force)")
    assert (d / "thesis.tex").read_text() == "precious"


def test_standalone_parity_keeps_the_runs_inputs(out, sample_dir):
    res = invoke("export", "--out", str(out), "--weights", "random", *SMALL, "--calib-images", "4",
                 "--variants", "fp32", "--calib-data", str(sample_dir), "--parity-images", "3")
    assert res.exit_code == 0, res.output
    recorded = json.loads((out / "parity.json").read_text())["inputs"]
    assert recorded == {"source": "images", "n": 3, "data": str(sample_dir), "seed": 0}
    first = (out / "parity.json").read_text()
    res = invoke("parity", str(out))  # no options: the same 3 images again, recorded in parity.json
    assert res.exit_code == 0 and f"3 images from {sample_dir}" in res.output
    assert json.loads((out / "parity.json").read_text())["inputs"] == recorded
    assert json.loads((out / "parity.json").read_text())["results"] == json.loads(first)["results"]
    res = invoke("parity", str(out), "--synthetic")  # other inputs: beside, never over
    assert res.exit_code == 0 and "parity-synthetic-3.json" in res.output
    assert json.loads((out / "parity-synthetic-3.json").read_text())["inputs"]["source"] == "synthetic"
    assert json.loads((out / "parity.json").read_text())["inputs"] == recorded
    assert invoke("verify", str(out)).exit_code == 0


@pytest.mark.slow  # two full runs (export, parity, bench, report)
def test_a_degenerate_model_is_flagged_everywhere(out):
    args = ("run", "--out", str(out), "--weights", "random", *SMALL, "--calib-images", "4", "--variants",
            "fp32,fp32-pruned", "--sparsity", "0.99", "--prune-method", "magnitude",  # OBS never empties a layer
            "--runtimes", "ort-cpu", "--batch", "1", "--min-time", "0",
            "--min-iters", "2", "--attempts", "1", "--no-remeasure", "--parity-images", "4")
    res = invoke(*args)
    assert_one_line_error(res, 4, "degenerate")
    assert "⚠ degenerate: fp32-pruned" in res.output  # said in the console
    warnings = [w for a in read_manifest(out).artifacts for w in a.warnings]
    assert warnings and all(w.startswith("degenerate: fp32-pruned") for w in warnings)  # in the manifest
    assert not any(a.warnings for a in read_manifest(out).artifacts if a.variant == "fp32")
    report = (out / "report.md").read_text()
    assert "## ⚠ Warnings" in report and "degenerate: fp32-pruned" in report and "DEGENERATE" in report
    parity = json.loads((out / "parity.json").read_text())
    assert {r["variant"] for r in parity["results"] if r["degenerate"]} == {"fp32-pruned"}
    res = invoke(*args, "--force", "--allow-degenerate")
    assert res.exit_code == 0, res.output
    assert "degenerate" in res.output


def test_bench_variants_filter(exported_copy):
    res = invoke("bench", str(exported_copy), "--variants", "int8", "--runtimes", "ort-cpu", "--batch", "1",
                 "--min-time", "0", "--min-iters", "2")
    assert res.exit_code == 0, res.output
    cells = json.loads((exported_copy / "results.json").read_text())["cells"]
    assert {c["variant"] for c in cells} == {"int8"}
    assert_one_line_error(invoke("bench", str(exported_copy), "--variants", "int4"), 2, "not in this run")


def test_target_bias_correction_and_qat_bad_inputs(out):
    assert_one_line_error(_export(out, "--target", "arm64"), 2, "unknown --target 'arm64'; known: x86-vnni, x86-avx2")
    assert_one_line_error(_export(out, "--qat-epochs", "-1"), 2, "--qat-epochs must be a whole number >= 0")
    assert_one_line_error(_export(out, "--qat-epochs", "2"), 2, "--qat-epochs needs --finetune-data")
    assert_one_line_error(_export(out, "--qat-lr", "0"), 2, "--qat-lr must be a number > 0, got 0.0")
    assert_one_line_error(_export(out, "--qat-lr", "nan"), 2, "--qat-lr must be a number > 0, got nan")
    res = _export(out, "--bias-correction", "partial")
    assert res.exit_code == 2 and "partial" in res.output
    _no_partial_output(out)


def test_channel_pruning_and_distillation_bad_inputs(out, tmp_path):
    for c in ("1", "-0.2", "1.5"):
        assert_one_line_error(_export(out, "--channel-sparsity", c), 2, "--channel-sparsity must be in [0, 1)")
    assert_one_line_error(_export(out, "--channel-round", "0"), 2, "--channel-round must be positive")
    assert_one_line_error(_export(out, "--finetune-epochs", "-1"), 2, "--finetune-epochs must be")
    assert_one_line_error(_export(out, "--finetune-epochs", "2"), 2, "--finetune-epochs needs --finetune-data")
    assert_one_line_error(_export(out, "--finetune-data", str(tmp_path / "nope"), "--finetune-epochs", "1"), 2,
                          "--finetune-data: data directory not found")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(_export(out, "--finetune-data", str(tmp_path / "empty"), "--finetune-epochs", "1"), 2,
                          "no class folders")
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    (tmp_path / "noimg" / "a" / "x.txt").write_text("hi")
    assert_one_line_error(_export(out, "--finetune-data", str(tmp_path / "noimg"), "--finetune-epochs", "1"), 2,
                          "holds no image files")
    _no_partial_output(out)


def test_unreadable_finetune_images_leave_no_partial_output(out, tmp_path):
    (tmp_path / "bad" / "a").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "bad" / "a" / f"{i}.png").write_bytes(b"not a png")
    res = _export(out, "--variants", "fp32,fp32-slim", "--finetune-data", str(tmp_path / "bad"),
                  "--finetune-epochs", "1")
    assert_one_line_error(res, 2, "readable")
    _no_partial_output(out)
