"""The evaluation measures something real: a model trained here, through the user's own command.

A ResNet-18 is trained for real on procedurally generated 32x32 images (tests/support/trained.py).
Then ``shrinkwrap run --eval-data`` must show: high FP32 accuracy, INT8 within a small margin of it,
90% pruning measurably lower, and an ``auto`` artifact that respects its budget and records its
choices. An untrained model, run through the same path, must fail the same bar.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.support import trained

pytestmark = pytest.mark.slow

HIGH = 90.0  # FP32 top-1 a trained model must reach (chance is 25%)
INT8_MARGIN = 3.0  # points of top-1
PRUNE_DROP = 5.0  # 90% pruning must cost at least this much
BUDGET = 2.0


@pytest.fixture(scope="module")
def dataset(shapes, train_on_shapes) -> dict[str, Path]:
    ckpt, stats = train_on_shapes("resnet18", epochs=6)
    return {"train": shapes["train"], "val": shapes["val"], "ckpt": ckpt, "stats": stats}


def _run(out: Path, weights: str, ds: dict, *extra: str):
    # ``--target native`` throughout: these tests measure INT8 accuracy in fbgemm on this machine, whose CPU may lack
    # the VNNI the default target's 8-bit activations need there (runtimes.targets).
    return run_cli(
        "run", "--out", str(out), "--weights", weights, "--calib-data", str(ds["train"]), "--calib-images", "64",
        "--eval-data", str(ds["val"]), "--resize", "32", "--input-size", "32",
        "--mean", ",".join(map(str, trained.MEAN)), "--std", ",".join(map(str, trained.STD)),
        "--runtimes", "eager,ort-cpu", "--batch", "50", "--min-time", "0.05", "--min-iters", "2", "--attempts", "1", "--no-remeasure",
        "--parity-images", "16", "--target", "native", *extra)


def _top1(out: Path) -> dict[tuple[str, str], float]:
    cells = json.loads((out / "results.json").read_text())["cells"]
    return {(c["variant"], c["runtime"]): c["top1"] for c in cells if c["status"] == "ok"}


@pytest.fixture(scope="module")
def trained_run(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "run"
    # Magnitude pruning at 90%: this test proves the evaluation sees damage (OBS reconstruction keeps this
    # easy model near 99% even at 90%, see test_obs_meets_its_targets).
    res = _run(out, str(dataset["ckpt"]), dataset, "--variants", "fp32,int8-dense,fp32-pruned,auto",
               "--sparsity", "0.9", "--prune-method", "magnitude", "--max-accuracy-drop", str(BUDGET))
    assert res.exit_code == 0, res.output
    (out.parent / "stdout.txt").write_text(res.output)
    return out


def test_fp32_is_high_int8_close_and_pruning_hurts(trained_run):
    top1 = _top1(trained_run)
    for runtime in ("eager", "ort-cpu"):
        fp32 = top1[("fp32", runtime)]
        assert fp32 >= HIGH, top1
        assert top1[("int8-dense", runtime)] >= fp32 - INT8_MARGIN, top1
        assert top1[("fp32-pruned", runtime)] <= fp32 - PRUNE_DROP, top1
    # every artifact in every runtime that can run it has a measured accuracy
    cells = json.loads((trained_run / "results.json").read_text())["cells"]
    ok = [c for c in cells if c["status"] == "ok"]
    assert ok and all(c["top1"] is not None and c["eval_images"] == 200 for c in ok)


def test_run_ends_with_the_answer(trained_run):
    """The terminal's last lines: what to deploy (artifact, runtime, latency, size, accuracy), then the report."""
    from exporter.report.context import load_context
    from exporter.report.recommend import recommend

    lines = (trained_run.parent / "stdout.txt").read_text().strip().splitlines()
    answer = [ln for ln in lines[-6:] if ln.startswith(("deploy: ", "report: "))]
    assert answer == lines[-len(answer):] and len(answer) <= 6, lines[-8:]
    assert answer[-1] == f"report: {trained_run / 'report.md'}"
    (r,) = [r for r in recommend(load_context(trained_run)) if r.device == "cpu"]
    assert r.pick is not None and r.pick.top1 >= r.baseline.top1 - BUDGET
    assert answer[0].startswith(f"deploy: CPU batch 50: `{r.pick.variant}` as {r.pick.format} on {r.pick.runtime}: "
                                f"{r.pick.median:.2f} ms, zstd ")
    assert f"top-1 {r.pick.top1:.2f}%" in answer[0]
    report = (trained_run / "report.md").read_text()
    assert f"`{r.pick.variant}` as {r.pick.format} on {r.pick.runtime}: {r.pick.median:.2f} ms" in report


def test_auto_respects_its_budget_and_records_its_choices(trained_run):
    manifest = json.loads((trained_run / "manifest.json").read_text())
    auto = [a for a in manifest["artifacts"] if a["variant"] == "auto"]
    assert {a["format"] for a in auto} == {"torchscript", "onnx"}
    d = auto[0]["decisions"]
    assert d["max_accuracy_drop"] == BUDGET and d["budget_met"] is True
    assert d["drop"] <= BUDGET and d["steps"]
    assert d["keep_float"] == auto[0]["quantization"]["keep_float"]
    assert auto[0]["sparsity"]["requested"] == d["sparsity"]
    assert abs(auto[0]["sparsity"]["achieved"] - d["sparsity"]) < 0.01
    # the artifact itself, measured by the benchmark in each runtime, holds the budget too
    top1 = _top1(trained_run)
    for runtime in ("eager", "ort-cpu"):
        assert top1[("auto", runtime)] >= top1[("fp32", runtime)] - BUDGET - 0.5, top1
    report = (trained_run / "report.md").read_text()
    assert "Recommendation" in report and "top-1" in report.lower()


def test_an_untrained_model_fails_the_same_bar(dataset, tmp_path):
    import torch

    from runtimes.architectures import build_float_model

    torch.manual_seed(1)
    untrained = tmp_path / "untrained.pt"
    torch.save(build_float_model("resnet18", len(trained.CLASSES)).state_dict(), untrained)
    out = tmp_path / "untrained"
    res = _run(out, str(untrained), dataset, "--variants", "fp32,int8-dense")
    assert res.exit_code == 0, res.output
    top1 = _top1(out)
    assert top1 and all(v < HIGH for v in top1.values()), top1


def test_default_calibration_method_is_justified(dataset, capsys):
    """The default (histogram) against minmax on the trained model, over three calibration subsets: it never
    costs top-1 against minmax (mean over the subsets, within one image of 200) and keeps every subset within
    INT8_MARGIN of FP32. Logit SQNR is printed, not asserted: on this 4-class model it swings by several dB
    either way with the trained weights' float rounding (histogram 21.9 vs minmax 22.3 dB at one intra-op thread
    on an AMD EPYC, 24.0 vs 28.2 dB on an AMX Xeon, with equal top-1), so it cannot rank the methods here."""
    import torch

    from exporter.data import load_image_folder, make_preprocess
    from exporter.options import PreprocessOptions
    from exporter.evaluation import accuracy, model_logits
    from exporter.models import load_model
    from runtimes.architectures import IMAGENET_PREPROCESS
    from exporter.compress.quantize import quantize_static
    from runtimes.metrics import sqnr_db

    pre = make_preprocess(IMAGENET_PREPROCESS, PreprocessOptions(32, 32, trained.MEAN, trained.STD))
    pool = load_image_folder(dataset["train"], pre).images
    val = load_image_folder(dataset["val"], pre)
    model = load_model("resnet18", str(dataset["ckpt"])).model
    ref = model_logits(model, val.images)
    fp32 = accuracy(ref, val.labels)[0]
    scores: dict[str, list[tuple[float, float]]] = {"histogram": [], "minmax": []}
    for seed in range(3):
        calib = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:64]]
        for method in scores:
            q, _ = quantize_static(model, [calib[i:i + 32] for i in range(0, len(calib), 32)], method)
            logits = model_logits(q, val.images)
            scores[method].append((round(sqnr_db(ref, logits), 2), accuracy(logits, val.labels)[0]))
    with capsys.disabled():
        print(f"\ncalibration on the trained model (FP32 {fp32}%), (SQNR dB, top-1) per subset: {scores}")
    mean_top1 = {m: sum(t for _, t in s) / len(s) for m, s in scores.items()}
    assert mean_top1["histogram"] >= mean_top1["minmax"] - 0.5, scores
    assert all(t >= fp32 - INT8_MARGIN for _, t in scores["histogram"]), scores


# The targets for OBS reconstruction, against FP32: (max top-1 drop in points, min logit SQNR in dB).
OBS_TARGETS = {0.5: (1.0, 18.0), 0.7: (3.0, 10.0)}


def test_obs_meets_its_targets(dataset, tmp_path):
    """``shrinkwrap sweep`` with OBS on the trained model, every pruned variant in both orders, measured
    in ONNX Runtime: within 1 point and 18 dB of FP32 at 50%, 3 points and 10 dB at 70%."""
    out = tmp_path / "sweep"
    res = run_cli("sweep", "--out", str(out), "--weights", str(dataset["ckpt"]), "--calib-data", str(dataset["train"]),
                  "--calib-images", "128", "--eval-data", str(dataset["val"]), "--resize", "32", "--input-size", "32",
                  "--mean", ",".join(map(str, trained.MEAN)), "--std", ",".join(map(str, trained.STD)),
                  "--sparsities", "0.5,0.7", "--prune-methods", "obs")
    assert res.exit_code == 0, res.output
    data = json.loads((out / "sweep.json").read_text())
    fp32 = data["fp32_top1"]
    points = {(p["variant"], p["order"], p["sparsity"]): p for p in data["points"]}
    expected = {("fp32-pruned", None), ("fp16", "quantize-then-prune"), ("fp16", "prune-then-quantize"),
                ("int8", "quantize-then-prune"), ("int8", "prune-then-quantize"),
                ("mixed", "quantize-then-prune"), ("mixed", "prune-then-quantize")}
    assert {(v, o) for v, o, _ in points} == expected
    for (variant, order, sparsity), p in points.items():
        drop, sqnr = OBS_TARGETS[sparsity]
        assert p["method"] == "obs" and abs(p["achieved_sparsity"] - sparsity) <= 0.01, p
        assert p["top1"] >= fp32 - drop and p["sqnr_db"] >= sqnr, (variant, order, sparsity, p, fp32)


SLIM_MARGIN = 1.0  # points of top-1: int8-slim at 0.5 after distillation, in every CPU runtime


def test_int8_slim_at_half_the_channels_is_within_a_point_after_distillation(dataset, tmp_path):
    """Half of every layer's channels removed, then BatchNorm re-estimated, refit, and 2 epochs of label-free
    distillation on the training images: within a point of FP32 in eager, TorchScript, libtorch and ORT."""
    out = tmp_path / "slim"
    res = run_cli(
        "run", "--out", str(out), "--weights", str(dataset["ckpt"]), "--calib-data", str(dataset["train"]),
        "--calib-images", "128", "--eval-data", str(dataset["val"]), "--resize", "32", "--input-size", "32",
        "--mean", ",".join(map(str, trained.MEAN)), "--std", ",".join(map(str, trained.STD)),
        "--runtimes", "eager,torchscript,libtorch-cpp,ort-cpu", "--batch", "50", "--min-time", "0.05",
        "--min-iters", "2", "--attempts", "1", "--no-remeasure", "--parity-images", "16", "--target", "native",
        "--variants", "fp32,fp32-slim,int8-slim",
        "--channel-sparsity", "0.5", "--finetune-data", str(dataset["train"]), "--finetune-epochs", "2")
    assert res.exit_code == 0, res.output
    top1 = {(c["variant"], c["runtime"]): c["top1"]
            for c in json.loads((out / "results.json").read_text())["cells"] if c["status"] == "ok"}
    fp32 = top1[("fp32", "eager")]
    for runtime in ("eager", "torchscript", "libtorch-cpp", "ort-cpu"):
        assert top1[("int8-slim", runtime)] >= fp32 - SLIM_MARGIN, top1
    art = next(a for a in json.loads((out / "manifest.json").read_text())["artifacts"] if a["variant"] == "int8-slim")
    steps = [s["step"] for s in art["channels"]["recovery"]]
    assert steps == ["pruned", "batchnorm re-estimation", "least-squares refit", "distillation"]
    assert art["channels"]["recovery"][0]["agreement"] < 80  # without recovery half the channels cost a lot
    assert art["channels"]["macs_after"] < art["channels"]["macs_before"] / 3
    f = art["finetune"]
    assert f["epochs"] == 2 and f["images"] == 400 and f["images_per_s"] > 0 and f["data"] == str(dataset["train"])
    report = (out / "report.md").read_text()
    assert "## Channel pruning" in report and "Speed-up vs dense" in report and "MMACs" in report


def test_distillation_keeps_unstructured_zeros(dataset, tmp_path):
    """The same recovery for a pruned float model: its zeros stay zeros (the masks are held)."""
    common = ["--weights", str(dataset["ckpt"]), "--calib-data", str(dataset["train"]), "--calib-images", "64",
              "--resize", "32", "--input-size", "32", "--mean", ",".join(map(str, trained.MEAN)),
              "--std", ",".join(map(str, trained.STD)), "--variants", "fp32-pruned", "--sparsity", "0.7",
              "--prune-method", "magnitude", "--skip-parity"]
    plain, tuned = tmp_path / "plain", tmp_path / "tuned"
    assert run_cli("export", "--out", str(plain), *common).exit_code == 0
    res = run_cli("export", "--out", str(tuned), *common, "--finetune-data", str(dataset["train"]),
                  "--finetune-epochs", "1")
    assert res.exit_code == 0, res.output
    arts = [json.loads((d / "manifest.json").read_text())["artifacts"][0] for d in (plain, tuned)]
    assert arts[0]["sparsity"]["zeros"] == arts[1]["sparsity"]["zeros"]  # exactly the same weights zero
    assert arts[0]["finetune"] is None and arts[1]["finetune"]["masked_layers"] > 0
