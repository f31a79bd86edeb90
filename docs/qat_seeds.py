"""Does label-free QAT bring INT8 closer to FP32, and does its top-1 say so? (run from the repository root)

tests/exporter/test_families.py runs QAT on one trained MobileNetV3-Large at 32 px. Its top-1 on the 200 held-out
shapes moves one or two images with the trained model's float rounding (the machine, the thread count), which is
the half-point of issue 20's target. This study trains the same recipe with SEEDS training seeds, runs the test's
`run` (fp32, int8 = 50% OBS-pruned, int8-dense; 128 calibration images) once without QAT and once per schedule,
and reports for each INT8 variant: top-1 in eager and in ONNX Runtime, and the mean KL divergence of the ONNX
artifact's softmax from FP32's on the held-out images (runtimes.metrics.kl_divergence, no labels) -- what QAT
optimizes.

    .venv/bin/python docs/qat_seeds.py OUT                 # appends to OUT/qat.jsonl (about 20 min on 2 cores)
    .venv/bin/python docs/qat_seeds.py OUT --table         # the markdown table of what OUT/qat.jsonl holds
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere: tests.support

from typer.testing import CliRunner  # noqa: E402

from exporter.cli import app  # noqa: E402
from exporter.data import load_image_folder  # noqa: E402
from exporter.evaluation import onnx_logits  # noqa: E402
from runtimes import metrics as M  # noqa: E402
from runtimes.architectures import Preprocess  # noqa: E402
from tests.support import trained  # noqa: E402

ARCH = "mobilenet_v3_large"
SEEDS = (0, 1, 2)
SCHEDULES = ((0, 5e-4), (2, 5e-4), (2, 2e-3), (4, 2e-3))  # (QAT epochs, lr); 0 epochs = PTQ only
VARIANTS = ("int8-dense", "int8")


def _top1(run_dir: Path) -> dict[tuple[str, str], float]:
    cells = json.loads((run_dir / "results.json").read_text())["cells"]
    return {(c["variant"], c["runtime"]): c["top1"] for c in cells if c["status"] == "ok"}


def run(seed: int, epochs: int, lr: float, data: dict[str, Path], out: Path, val_images) -> dict:
    ckpt, _ = trained.cached_train(data["train"], out / "ckpt", arch=ARCH, seed=seed)
    run_dir = out / "runs" / f"seed{seed}-qat{epochs}-lr{lr:g}"
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, [
        "run", "--out", str(run_dir), "--force", "--model", ARCH, "--weights", str(ckpt),
        "--calib-data", str(data["train"]), "--calib-images", "128", "--eval-data", str(data["val"]),
        "--resize", str(trained.SIZE), "--input-size", str(trained.SIZE), "--mean", ",".join(map(str, trained.MEAN)),
        "--std", ",".join(map(str, trained.STD)), "--variants", "fp32," + ",".join(VARIANTS),
        "--qat-epochs", str(epochs), "--qat-lr", str(lr), "--finetune-data", str(data["train"]),
        "--runtimes", "eager,ort-cpu", "--batch", "50", "--min-time", "0.05", "--min-iters", "2",
        "--attempts", "1", "--no-remeasure", "--parity-images", "32"], catch_exceptions=True)
    row: dict = {"seed": seed, "qat_epochs": epochs, "qat_lr": lr, "exit": res.exit_code,
                 "seconds": round(time.perf_counter() - t0, 1),
                 "error": res.output.strip().splitlines()[-1] if res.exit_code else None}
    if res.exit_code == 0:
        top1 = _top1(run_dir)
        fp32 = onnx_logits((run_dir / "fp32.onnx").read_bytes(), val_images)
        row["fp32"] = top1[("fp32", "eager")]
        for v in VARIANTS:
            row[v] = {"eager": top1[(v, "eager")], "ort": top1[(v, "ort-cpu")],
                      "kl": M.kl_divergence(fp32, onnx_logits((run_dir / f"{v}.onnx").read_bytes(), val_images))}
    return row


def table(rows: list[dict]) -> str:
    lines = ["| seed (FP32) | QAT | `int8-dense` eager / ORT | KL | `int8` eager / ORT | KL |",
             "|---|---|---:|---:|---:|---:|"]
    for r in sorted((r for r in rows if r["exit"] == 0), key=lambda r: (r["seed"], r["qat_epochs"], r["qat_lr"])):
        qat = "none (PTQ)" if r["qat_epochs"] == 0 else f"{r['qat_epochs']} epochs, lr {r['qat_lr']:g}"
        cells = [f"{r[v]['eager']:.1f} / {r[v]['ort']:.1f} | {r[v]['kl']:.4f}" for v in VARIANTS]
        lines.append(f"| {r['seed']} ({r['fp32']:.1f}) | {qat} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(out: Path) -> None:
    data = {"train": out / "shapes" / "train", "val": out / "shapes" / "val"}
    if not data["train"].exists():
        trained.write_image_folder(data["train"], per_class=100, seed=0)
        trained.write_image_folder(data["val"], per_class=50, seed=1)
    (out / "ckpt").mkdir(parents=True, exist_ok=True)
    pre = Preprocess(trained.SIZE, trained.SIZE, tuple(trained.MEAN), tuple(trained.STD))
    val_images = load_image_folder(data["val"], pre).images
    with (out / "qat.jsonl").open("a") as f:
        for seed in SEEDS:
            for epochs, lr in SCHEDULES:
                row = run(seed, epochs, lr, data, out, val_images)
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: docs/qat_seeds.py OUT [--table]")
    out = Path(sys.argv[1])
    if sys.argv[2:] == ["--table"]:
        print(table([json.loads(line) for line in (out / "qat.jsonl").read_text().splitlines() if line.strip()]))
    else:
        out.mkdir(parents=True, exist_ok=True)
        main(out)
