"""One representative family per INT8 lane, trained for real, through every variant and every CPU runtime.

MobileNetV3-Large (the eager-mode lane: torchvision's quantizable builder) and EfficientNet-B0 (the FX
graph-mode lane) are trained on the test shapes at 32x32 (tests/support/trained.py), then
``shrinkwrap run`` builds fp32, fp32-pruned, int8, int8-dense, fp16, mixed and the two peers
(ort-quantize-static, nncf-ptq), gates parity (ONNX in ONNX Runtime and OpenVINO), and measures top-1 in eager,
TorchScript, the libtorch C++ runner, ONNX Runtime and OpenVINO.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from runtimes import host_cpu, targets
from runtimes import metrics as M
from tests.conftest import run_cli
from tests.exporter.formats.test_onnx import onnx_activation_qparams, onnx_int8_weights, torchscript_int8_weights
from tests.support import trained

pytestmark = pytest.mark.slow

LANES = {"eager": "mobilenet_v3_large", "fx": "efficientnet_b0"}
HEADS = {"mobilenet_v3_large": "classifier.3", "efficientnet_b0": "classifier.1"}
VARIANTS = "fp32,fp32-pruned,int8,int8-dense,fp16,mixed,ort-quantize-static,nncf-ptq"
PEERS = ("ort-quantize-static", "nncf-ptq")
RUNTIMES = ("eager", "torchscript", "libtorch-cpp", "ort-cpu", "openvino")
ONNX_RUNTIMES = ("ort-cpu", "openvino")
# Points of top-1: int8-dense against FP32, in every runtime, with the defaults (8-bit activations for the
# x86-vnni target, full bias correction): issue 20's target for the compact families.
INT8_MARGIN = 1.0
# Where the runtime computes the INT8 graph's float layers in bf16 (OpenVINO on AVX512-BF16/AMX CPUs, its default):
# 8 significant bits before every re-quantization. The trained EfficientNet-B0 loses 2 points to FP16 alone in
# every runtime (200 images: 4 of them), and its int8-dense 1.5 in OpenVINO's bf16 where f32 runtimes keep it
# within one; the margin there is FP16's.
BF16_INT8_MARGIN = 2.0
NNCF_SANITY = 10.0  # the NNCF peer is compared, not gated: it must only be a working quantization
# The runtimes that run the INT8 TorchScript through fbgemm. The default target's 8-bit activations are exact there
# only on a CPU with VNNI/AMX; elsewhere its int16 pair sums may saturate, which the report must then say instead.
FBGEMM_RUNTIMES = ("eager", "torchscript", "libtorch-cpp")


def _gated_runtimes(out: Path, runtimes: tuple[str, ...]) -> tuple[str, ...]:
    """The ``runtimes`` whose INT8 accuracy is this machine's to gate: all of them where the run's target is exact
    on this CPU; otherwise the ONNX ones, after checking that the report warns about the others (when the CPU
    itself, not a kernel cap, lacks VNNI: the report reads the CPU's flags)."""
    names = {a["quantization"]["target"] for a in json.loads((out / "manifest.json").read_text())["artifacts"]
             if (a.get("quantization") or {}).get("target")}
    target = targets.get_target(names.pop())
    if target.risk_on(tuple(host_cpu.int8_kernel_flags())) is None:
        return runtimes
    if target.risk_on(json.loads((out / "results.json").read_text())["environment"]["cpu_flags"]):
        assert "outside that class" in (out / "report.md").read_text()
    return tuple(r for r in runtimes if r not in FBGEMM_RUNTIMES)


def _run_on_shapes(out: Path, arch: str, weights: Path, shapes, *options: str) -> Path:
    """`run` of a model trained on the shapes: calibrated on 128 training images, evaluated on the held-out ones,
    at the training's 32 px, with a short bench; ``options`` name the variants, runtimes and the rest."""
    res = run_cli(
        "run", "--out", str(out), "--model", arch, "--weights", str(weights),
        "--calib-data", str(shapes["train"]), "--calib-images", "128", "--eval-data", str(shapes["val"]),
        "--resize", "32", "--input-size", "32", "--mean", ",".join(map(str, trained.MEAN)),
        "--std", ",".join(map(str, trained.STD)), "--batch", "50", "--min-time", "0.05", "--min-iters", "2",
        "--attempts", "1", "--no-remeasure", "--parity-images", "32", *options)
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def family_runs(shapes, train_on_shapes, tmp_path_factory):
    """``family_runs(lane) -> run folder``: each lane's model through `run` with the defaults, once per module
    (the QAT test reads the eager lane's INT8 as the PTQ model its QAT starts from)."""
    runs: dict[str, Path] = {}

    def get(lane: str) -> Path:
        if lane not in runs:
            arch = LANES[lane]
            weights, stats = train_on_shapes(arch)
            assert stats["train_top1"] > 90, stats
            runs[lane] = _run_on_shapes(tmp_path_factory.mktemp(arch) / "run", arch, weights, shapes,
                                        "--variants", VARIANTS, "--runtimes", ",".join(RUNTIMES))
        return runs[lane]

    return get


@pytest.fixture(scope="module", params=sorted(LANES))
def family_run(request, family_runs) -> tuple[str, str, Path]:
    lane = request.param
    return lane, LANES[lane], family_runs(lane)


def _top1(out: Path) -> dict[tuple[str, str], float]:
    cells = json.loads((out / "results.json").read_text())["cells"]
    return {(c["variant"], c["runtime"]): c["top1"] for c in cells if c["status"] == "ok"}


def _margin(out: Path, variant: str, runtime: str) -> float:
    """INT8_MARGIN, or BF16_INT8_MARGIN where the runtime said it computed this variant's float layers in bf16."""
    cells = json.loads((out / "results.json").read_text())["cells"]
    bf16 = any(c["variant"] == variant and c["runtime"] == runtime and c["status"] == "ok"
               and (c.get("runtime_info") or {}).get("inference_precision") == "bf16" for c in cells)
    return BF16_INT8_MARGIN if bf16 else INT8_MARGIN


def test_every_variant_runs_in_every_runtime_and_passes_parity(family_run):
    lane, arch, out = family_run
    parity = json.loads((out / "parity.json").read_text())
    # 6 variants x 2 formats + 2 peers in the reference runtimes, and each of the 8 ONNX files in OpenVINO
    assert parity["passed"] and len(parity["results"]) == 14 + 8
    assert {r["runtime"] for r in parity["results"] if r["format"] == "onnx"} == set(ONNX_RUNTIMES)
    top1 = _top1(out)
    for variant in VARIANTS.split(","):
        runtimes = ONNX_RUNTIMES if variant in PEERS else RUNTIMES
        for runtime in runtimes:
            assert top1.get((variant, runtime)) is not None, (variant, runtime, sorted(top1))


def test_int8_dense_is_within_a_point_of_fp32_in_every_runtime(family_run):
    _, _, out = family_run
    top1 = _top1(out)
    fp32 = top1[("fp32", "eager")]
    # The trained model's held-out top-1 depends on the machine's float kernels (97 for MobileNetV3 and 96 for
    # EfficientNet-B0 on an AMX Xeon): the floor only proves it learned.
    assert fp32 >= 90.0, top1
    for runtime in _gated_runtimes(out, RUNTIMES):
        assert top1[("int8-dense", runtime)] >= fp32 - _margin(out, "int8-dense", runtime), (runtime, top1)


def test_ours_against_nncf_in_openvino(family_run):
    """Our int8-dense against NNCF's PTQ (fast bias correction) of the same FP32 ONNX, on the same
    calibration images, both run in OpenVINO: the comparison issue 19 asks for, printed for the README."""
    _, arch, out = family_run
    top1 = _top1(out)
    fp32, ours, nncf = (top1[(v, "openvino")] for v in ("fp32", "int8-dense", "nncf-ptq"))
    print(f"{arch} in openvino: fp32 {fp32:.1f}, int8-dense {ours:.1f}, nncf-ptq {nncf:.1f}")
    assert ours >= fp32 - _margin(out, "int8-dense", "openvino"), top1
    assert nncf >= fp32 - NNCF_SANITY, top1  # a real quantizer, not a strawman row


def test_the_manifest_names_the_lane_and_what_runs_float(family_run):
    lane, arch, out = family_run
    arts = {(a["variant"], a["format"]): a for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    q = arts[("int8-dense", "onnx")]["quantization"]
    # The default deployment target: VNNI/AMX-class x86, 8-bit activations.
    assert q["lane"] == lane and q["target"] == "x86-vnni" and q["reduce_range"] is False
    bc = q["bias_correction"]  # the default: full, on the calibration images, most layers corrected
    assert bc["mode"] == "full" and bc["images"] == 128 and bc["layers"] > len(bc["skipped"])
    if arch == "efficientnet_b0":
        assert set(q["float_ops"]) == {"SiLU"} and len(q["float_ops"]["SiLU"]) == 49  # no quantized SiLU kernel
    mixed = arts[("mixed", "onnx")]["quantization"]
    assert mixed["keep_float"] == [HEADS[arch]]  # the family's own classifier, not "fc"
    assert any(HEADS[arch] in where for where in mixed["float_ops"].get("Linear", []))


@pytest.mark.parametrize("variant", ["int8", "int8-dense", "mixed"])
def test_the_int8_onnx_carries_exactly_the_torchscript_integers(family_run, variant):
    """One source of truth in both lanes: every INT8 weight, scale and zero point of the TorchScript model,
    and every activation scale/zero point, is in the QDQ ONNX."""
    _, _, out = family_run
    ts_w, ts_acts = torchscript_int8_weights(out / f"{variant}.pt")
    ox_w = onnx_int8_weights(out / f"{variant}.onnx")
    assert len(ts_w) == len(ox_w) >= 50
    for (tw, ts, tz), (ow, os_, oz) in zip(ts_w, ox_w):
        np.testing.assert_array_equal(tw.reshape(ow.shape), ow)
        np.testing.assert_array_equal(ts, os_)
        np.testing.assert_array_equal(tz.astype(np.int64), oz.astype(np.int64))
    assert ts_acts and not ts_acts - onnx_activation_qparams(out / f"{variant}.onnx")


def test_onnx_runtime_fuses_every_quantized_conv_into_an_integer_kernel(family_run, tmp_path):
    """The QDQ graph is one ORT runs as integer kernels: after its optimizations no float Conv is left."""
    import onnxruntime as ort

    _, _, out = family_run
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(out / "int8-dense.onnx"), so, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    assert ops.count("QLinearConv") >= 50 and "Conv" not in ops, sorted(set(ops))


def test_int8_zeros_survive_in_both_formats(family_run):
    _, _, out = family_run
    rec = next(a for a in json.loads((out / "manifest.json").read_text())["artifacts"]
               if a["variant"] == "int8" and a["format"] == "onnx")
    ws = onnx_int8_weights(out / "int8.onnx")
    zeros, total = sum(int((w == 0).sum()) for w, _, _ in ws), sum(w.size for w, _, _ in ws)
    assert abs(zeros / total - rec["sparsity"]["achieved"]) < 1e-6
    assert abs(rec["sparsity"]["achieved"] - rec["sparsity"]["requested"]) <= 0.01, rec["sparsity"]


# Points of top-1 after QAT, against FP32, in every runtime: the PTQ margin. Issue 20's target is half a point,
# but on these 200 images that is one image, and QAT moves top-1 by one or two images either way with the
# trained model's float rounding (machine, threads): over three training seeds the pruned INT8 read 97.0, 95.0
# and 98.0 against FP32 97.0, 96.0, 97.0, while its held-out KL to FP32 fell to 0.55, 0.35 and 0.41 of
# PTQ's (docs/accuracy.md, "QAT"). What QAT optimizes, closeness to FP32, is asserted below without labels.
QAT_MARGIN = INT8_MARGIN
# QAT is for the default target, as PTQ: on a CPU outside its class only ONNX Runtime is gated (_gated_runtimes).
# (This machine's own 7-bit target is no substitute: with FBGEMM_ENABLE_INSTRUCTIONS=AVX2 the 7-bit QAT pruned INT8
# read 93.0 against FP32 97.0 in eager, though its held-out KL to FP32 fell from PTQ's 0.066 to 0.040.)


@pytest.fixture(scope="module")
def qat_run(shapes, train_on_shapes, tmp_path_factory) -> Path:
    """MobileNetV3-Large (the eager lane) through `run` with two epochs of label-free QAT on the training
    images, dense and 50% OBS-pruned; otherwise the eager family run's settings."""
    arch = LANES["eager"]
    weights, _ = train_on_shapes(arch)
    return _run_on_shapes(tmp_path_factory.mktemp("qat") / "run", arch, weights, shapes,
                          "--variants", "fp32,int8,int8-dense", "--qat-epochs", "2",
                          "--finetune-data", str(shapes["train"]), "--runtimes", "eager,torchscript,ort-cpu")


def _held_out_images(shapes):
    """The held-out shapes, preprocessed as the runs evaluate them (each call decodes them: call once)."""
    from exporter.data import load_image_folder
    from runtimes.architectures import Preprocess

    return load_image_folder(shapes["val"], Preprocess(32, 32, tuple(trained.MEAN), tuple(trained.STD))).images


def test_qat_end_to_end(qat_run, family_runs, shapes):
    """QAT brings the pruned INT8 closer to FP32 than the PTQ model it starts from (KL on the held-out images,
    no labels), keeps INT8 within the margin of FP32 in every runtime it ran in, records itself, holds the
    pruned zeros, and its files carry the same integers in TorchScript and ONNX."""
    arts = {(a["variant"], a["format"]): a for a in json.loads((qat_run / "manifest.json").read_text())["artifacts"]}
    for variant, masked in (("int8", True), ("int8-dense", False)):
        rec = arts[(variant, "onnx")]["quantization"]["qat"]
        assert rec["epochs"] == 2 and rec["images"] == 400 and (rec["masked_layers"] > 0) is masked, rec
        assert rec["loss_last_epoch"] <= rec["loss_first_epoch"] * 1.5, rec
    assert arts[("int8", "onnx")]["sparsity"]["achieved"] > 0.45  # the zeros were held through training
    from exporter.evaluation import onnx_logits

    ptq_run, images = family_runs("eager"), _held_out_images(shapes)
    fp32 = onnx_logits((qat_run / "fp32.onnx").read_bytes(), images)
    np.testing.assert_allclose(fp32, onnx_logits((ptq_run / "fp32.onnx").read_bytes(), images), atol=1e-4)  # one teacher
    kl = {(variant, run): M.kl_divergence(fp32, onnx_logits((folder / f"{variant}.onnx").read_bytes(), images))
          for variant in ("int8", "int8-dense") for run, folder in (("ptq", ptq_run), ("qat", qat_run))}
    print("held-out KL to FP32 (nats):", kl)
    # Dense INT8 starts within a few thousandths of a nat on some seeds, where QAT has nothing left to close.
    assert kl[("int8", "qat")] < kl[("int8", "ptq")], kl
    top1 = _top1(qat_run)
    fp32_top1 = top1[("fp32", "eager")]
    for variant in ("int8", "int8-dense"):
        for runtime in _gated_runtimes(qat_run, ("eager", "torchscript", "ort-cpu")):
            assert top1[(variant, runtime)] >= fp32_top1 - QAT_MARGIN, (variant, runtime, top1)
    ts_w, _ = torchscript_int8_weights(qat_run / "int8.pt")
    ox_w = onnx_int8_weights(qat_run / "int8.onnx")
    assert len(ts_w) == len(ox_w) >= 50
    for (tw, ts, _), (ow, os_, _) in zip(ts_w, ox_w):
        np.testing.assert_array_equal(tw.reshape(ow.shape), ow)
        np.testing.assert_array_equal(ts, os_)
