"""How much of a compact model's INT8 gap is which 128 calibration images it saw (run from the repository root).

docs/compact_int8.py measures each model once, on the CLI's deterministic subset of the training images. A
probe found the same MobileNetV3-Large checkpoint 2.5 points apart on another random 128. This study repeats the
default export (``--variants fp32,int8-dense,int8``, 8-bit activations, full bias correction) on SEEDS different
random subsets of 128 training images, each given to ``shrinkwrap export --calib-data`` as a folder of its own,
and reports each INT8 variant's drop from FP32 in ONNX Runtime on the 200 held-out images: mean, spread and range.

    .venv/bin/python docs/calibration_seeds.py OUT [model ...]      # OUT as docs/compact_int8.py's (reuses its models)
    .venv/bin/python docs/calibration_seeds.py OUT --table
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere: tests.support

from typer.testing import CliRunner  # noqa: E402

from docs.compact_int8 import SIZE  # noqa: E402
from docs.family_study import top1  # noqa: E402
from exporter.cli import app  # noqa: E402
from tests.support import trained  # noqa: E402

MODELS = ("mobilenet_v3_large", "mnasnet1_0")
SEEDS = 5
IMAGES = 128
VARIANTS = ("int8-dense", "int8")


def calibration_folder(train: Path, out: Path, seed: int) -> Path:
    """IMAGES training images drawn with ``seed``, as symlinks in an ImageFolder of their own."""
    folder = out / "calib" / f"seed{seed}"
    if folder.exists():
        return folder
    files = sorted(train.rglob("*.png"))
    for f in random.Random(seed).sample(files, IMAGES):
        link = folder / f.parent.name / f.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f.resolve())
    return folder


def run(arch: str, seed: int, data: dict[str, Path], out: Path) -> dict:
    ckpt = out / "ckpt" / f"{arch}-{SIZE}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    if not ckpt.exists():
        trained.train(data["train"], ckpt, arch=arch, size=SIZE)
    calib = calibration_folder(data["train"], out, seed)
    run_dir = out / "seeds" / arch / f"seed{seed}"
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, [
        "export", "--out", str(run_dir), "--force", "--model", arch, "--weights", str(ckpt),
        "--calib-data", str(calib), "--calib-images", str(IMAGES),
        "--resize", str(SIZE), "--input-size", str(SIZE), "--mean", ",".join(map(str, trained.MEAN)),
        "--std", ",".join(map(str, trained.STD)), "--variants", "fp32," + ",".join(VARIANTS),
        "--parity-images", "32"], catch_exceptions=True)
    row: dict = {"model": arch, "seed": seed, "exit": res.exit_code, "export_s": round(time.perf_counter() - t0, 1),
                 "error": res.output.strip().splitlines()[-1] if res.exit_code else None}
    if (run_dir / "manifest.json").exists():
        row["top1"] = top1(run_dir, data["val"], SIZE)
    return row


def main(out: Path, models: list[str]) -> None:
    data = {"train": out / "shapes" / "train", "val": out / "shapes" / "val"}
    if not data["train"].exists():
        trained.write_image_folder(data["train"], per_class=100, seed=0)
        trained.write_image_folder(data["val"], per_class=50, seed=1)
    with (out / "seeds.jsonl").open("a") as f:
        for arch in models or MODELS:
            for seed in range(SEEDS):
                row = run(arch, seed, data, out)
                f.write(json.dumps(row) + "\n")
                f.flush()
                t = row.get("top1") or {}
                print(arch, seed, row["exit"], row["export_s"], {v: t.get(f"{v}.onnx") for v in
                                                                 ("fp32", *VARIANTS)}, flush=True)


def table(jsonl: Path) -> str:
    """Per model and INT8 variant: FP32, then the drop in ONNX Runtime over the seeds."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    out = ["| model (FP32) | variant | seeds | mean drop | std | best | worst |", "|---|---|---:|---:|---:|---:|---:|"]
    for arch in dict.fromkeys(r["model"] for r in rows):
        mine = [r["top1"] for r in rows if r["model"] == arch and r.get("top1")]
        fp32 = mine[0]["fp32.onnx"]
        for v in VARIANTS:
            drops = [t["fp32.onnx"] - t[f"{v}.onnx"] for t in mine]
            out.append(f"| {arch} ({fp32:.1f}) | `{v}` | {len(drops)} | {statistics.mean(drops):.1f} | "
                       f"{statistics.pstdev(drops):.1f} | {min(drops):.1f} | {max(drops):.1f} |")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: docs/calibration_seeds.py OUT [model ...] | OUT --table")
    if sys.argv[2:3] == ["--table"]:
        print(table(Path(sys.argv[1]) / "seeds.jsonl"))
    else:
        main(Path(sys.argv[1]), sys.argv[2:])
