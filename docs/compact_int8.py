"""INT8 accuracy on the compact families, step by step, next to the peer quantizers (run from the repository root).

For MobileNetV2, MobileNetV3-Large, EfficientNet-B0, RegNetY-400MF and MNASNet:

1. train each on the test shapes at 64 px (tests/support/trained.py: 4 classes, 400 training images), once;
2. ``shrinkwrap export`` it with fp32, int8-dense and int8 (50% OBS) under each setting: 7-bit activations
   without bias correction (the old default), 8 bits without, with fast and with full correction (today's
   default, with the ort-quantize-static and nncf-ptq peers in the same run), and the default plus 2 epochs of
   label-free QAT on the training images;
3. top-1 of every ONNX file in ONNX Runtime and every TorchScript file in TorchScript, on the 200 held-out
   images, with each INT8 file's parity (SQNR against FP32, and whether the gate passed it), one JSON line per
   model and setting in OUT/compact.jsonl; ``--table`` prints the README's table from it.

    .venv/bin/python docs/compact_int8.py OUT [model ...]
    .venv/bin/python docs/compact_int8.py OUT --table
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere: tests.support

from typer.testing import CliRunner  # noqa: E402

from docs.family_study import top1  # noqa: E402
from exporter.cli import app  # noqa: E402
from tests.support import trained  # noqa: E402

MODELS = ("mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf", "mnasnet1_0")
SIZE = 64
BASE = "fp32,int8-dense,int8"
PEERS = "ort-quantize-static,nncf-ptq"
# name -> (extra export flags, with the peers)
SETTINGS = {
    "7-bit, no correction": (("--target", "x86-avx2", "--bias-correction", "none"), False),
    "8-bit, no correction": (("--bias-correction", "none"), False),
    "8-bit, fast correction": (("--bias-correction", "fast"), False),
    "defaults (8-bit, full correction)": ((), True),
    "defaults + QAT, 2 epochs": (("--qat-epochs", "2", "--finetune-data", "{train}"), False),
}


def run(arch: str, setting: str, data: dict[str, Path], out: Path) -> dict:
    ckpt = out / "ckpt" / f"{arch}-{SIZE}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    if not ckpt.exists():
        trained.train(data["train"], ckpt, arch=arch, size=SIZE)
    flags, peers = SETTINGS[setting]
    flags = tuple(f.format(train=data["train"]) for f in flags)
    run_dir = out / "runs" / arch / setting.split(" (")[0].replace(" ", "-").replace(",", "")
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, [
        "export", "--out", str(run_dir), "--force", "--model", arch, "--weights", str(ckpt),
        "--calib-data", str(data["train"]), "--calib-images", "128", *flags,
        "--resize", str(SIZE), "--input-size", str(SIZE), "--mean", ",".join(map(str, trained.MEAN)),
        "--std", ",".join(map(str, trained.STD)), "--variants", BASE + ("," + PEERS if peers else ""),
        "--parity-images", "32"], catch_exceptions=True)
    row: dict = {"model": arch, "setting": setting, "flags": list(flags), "exit": res.exit_code,
                 "export_s": round(time.perf_counter() - t0, 1),
                 "error": res.output.strip().splitlines()[-1] if res.exit_code else None}
    if (run_dir / "manifest.json").exists():
        row["top1"] = top1(run_dir, data["val"], SIZE)
    if (run_dir / "parity.json").exists():
        row["parity"] = [{"variant": p["variant"], "format": p["format"], "runtime": p["runtime"],
                          "sqnr_db": p["sqnr_db"] if p["sqnr_db"] != float("inf") else None,
                          "vs_fp32_db": p.get("sqnr_vs_fp32_db"), "noise_rule": p.get("passed_by_noise_rule"),
                          "passed": p["passed"]}
                         for p in json.loads((run_dir / "parity.json").read_text())["results"]]
    return row


def main(out: Path, models: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {"train": out / "shapes" / "train", "val": out / "shapes" / "val"}
    if not data["train"].exists():
        trained.write_image_folder(data["train"], per_class=100, seed=0)
        trained.write_image_folder(data["val"], per_class=50, seed=1)
    with (out / "compact.jsonl").open("a") as f:
        for arch in models or MODELS:
            for setting in SETTINGS:
                row = run(arch, setting, data, out)
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(json.dumps({k: row.get(k) for k in ("model", "setting", "exit", "error", "export_s")}),
                      flush=True)
                print("   ", {k: v for k, v in (row.get("top1") or {}).items() if k.endswith(".onnx")}, flush=True)


def table(jsonl: Path) -> str:
    """Top-1 in ONNX Runtime (the TorchScript figure after a slash where it differs), per model and setting."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    out = ["| model (FP32) | setting | `int8-dense` | `int8` (50% OBS) | `ort-quantize-static` | `nncf-ptq` |",
           "|---|---|---:|---:|---:|---:|"]
    seen: set[str] = set()
    for r in rows:
        t = r.get("top1") or {}

        def cell(v: str) -> str:
            o, s = t.get(f"{v}.onnx"), t.get(f"{v}.torchscript")
            if o is None:
                return "–"
            return f"{o:.1f}" + (f" / {s:.1f}" if s is not None and s != o else "")

        first = r["model"] not in seen
        seen.add(r["model"])
        head = f"{r['model']} ({t.get('fp32.onnx', float('nan')):.1f})" if first else ""
        out.append(f"| {head} | {r['setting']} | {cell('int8-dense')} | {cell('int8')} | "
                   f"{cell('ort-quantize-static')} | {cell('nncf-ptq')} |")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: docs/compact_int8.py OUT [model ...] | OUT --table")
    if sys.argv[2:3] == ["--table"]:
        print(table(Path(sys.argv[1]) / "compact.jsonl"))
    else:
        main(Path(sys.argv[1]), sys.argv[2:])
