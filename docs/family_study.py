"""Every torchvision CNN family through every variant, trained for real (run from the repository root).

For one representative model per family, at a small input size:

1. train it on the test shapes (tests/support/trained.py: 4 classes, 200 validation images), from scratch, into
   OUT/weights/<model>.pt;
2. ``shrinkwrap study`` the families of each input size at once, with that weights directory: fp32, fp32-pruned,
   int8 (OBS), int8-dense, fp16, mixed and the ort-quantize-static peer, parity-gated, benchmarked and evaluated
   on the 200 validation images in eager, TorchScript and ONNX Runtime (one job per model: ``--executor ray``
   after ``--`` fans them out);
3. write one JSON line per family to OUT/families.jsonl from the study's records: lane, operators kept float,
   top-1 per artifact in its format's runtime, INT8 parity against eager INT8 and FP32, which parity rule passed
   it, and the model's study status.

    .venv/bin/python docs/family_study.py OUT [family ...] [-- extra study flags, e.g. --target x86-avx2]

Untrained models say nothing about INT8 parity in deep squeeze-excitation families (their eager INT8 model is a
few dB from FP32: see the README's parity policy); trained ones do.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere: tests.support

from typer.testing import CliRunner  # noqa: E402

from exporter.cli import app  # noqa: E402
from exporter.study.records import read_study  # noqa: E402
from tests.support import trained  # noqa: E402

# family -> (representative model, input size it is trained and run at)
FAMILIES = {
    "resnet": ("resnet18", 64), "mobilenetv2": ("mobilenet_v2", 64), "mobilenetv3": ("mobilenet_v3_large", 64),
    "googlenet": ("googlenet", 64), "inception": ("inception_v3", 299), "shufflenetv2": ("shufflenet_v2_x1_0", 64),
    "efficientnet": ("efficientnet_b0", 64), "efficientnet_v2": ("efficientnet_v2_s", 64),
    "regnet_x": ("regnet_x_400mf", 64), "regnet_y": ("regnet_y_400mf", 64), "mnasnet": ("mnasnet1_0", 64),
    "densenet": ("densenet121", 64), "squeezenet": ("squeezenet1_1", 64), "convnext": ("convnext_tiny", 64),
    "resnext": ("resnext50_32x4d", 64), "wide_resnet": ("wide_resnet50_2", 64), "vgg": ("vgg11_bn", 224),
    "alexnet": ("alexnet", 224), "swin": ("swin_t", 224), "maxvit": ("maxvit_t", 224),
}
VARIANTS = "fp32,fp32-pruned,int8,int8-dense,fp16,mixed,ort-quantize-static"
RUNTIMES = "eager,torchscript,ort-cpu"
# Each format's top-1 is read in its reference runtime, as the old export-only study measured it.
FORMAT_RUNTIME = {"onnx": "ort-cpu", "torchscript": "torchscript"}


def train(arch: str, size: int, data: dict[str, Path], weights: Path) -> dict:
    """Train ``arch`` at ``size`` into weights/<arch>.pt (kept: a second study reuses it); its stats."""
    ckpt = weights / f"{arch}.pt"
    if ckpt.exists():
        return {}
    # At 224 px a model trains ~12x slower than at 64: 3 epochs there (enough on the shapes to leave chance).
    return trained.train(data["train"], ckpt, arch=arch, size=size, epochs=3 if size >= 224 else None)


def run_study(models: list[str], size: int, data: dict[str, Path], weights: Path, out: Path, extra: tuple) -> int:
    """``shrinkwrap study`` of ``models`` at ``size`` px into ``out``; its exit code (4: a model failed parity)."""
    res = CliRunner().invoke(app, [
        "study", "--models", ",".join(models), "--out", str(out), "--force", "--weights", str(weights),
        "--calib-data", str(data["train"]), "--calib-images", "128", "--eval-data", str(data["val"]),
        "--resize", str(size), "--input-size", str(size), "--mean", ",".join(map(str, trained.MEAN)),
        "--std", ",".join(map(str, trained.STD)), "--variants", VARIANTS, "--runtimes", RUNTIMES,
        "--parity-images", "32", "--batch", "50", "--min-time", "0.05", "--min-iters", "2", *extra],
        catch_exceptions=True)
    print(res.output.strip().splitlines()[-1] if res.output.strip() else f"study exit {res.exit_code}", flush=True)
    return res.exit_code


def family_row(name: str, arch: str, size: int, study_dir: Path, row) -> dict:
    """One families.jsonl line from the study's row of ``arch`` and its run directory's records."""
    out: dict = {"family": name, "model": arch, "size": size, "status": row.status,
                 "exit": 0 if row.status == "ok" else 4 if row.status == "parity-failed" else 1,
                 "error": row.reason or None, "wall_s": row.wall_s}
    run_dir = study_dir / row.run_dir if row.run_dir else None
    if run_dir is None:
        return out
    if (run_dir / "manifest.json").exists():
        manifest = json.loads((run_dir / "manifest.json").read_text())
        int8 = next((a for a in manifest["artifacts"] if a["variant"] == "int8-dense"), None)
        if int8:
            out["lane"] = int8["quantization"]["lane"]
            out["float_ops"] = {op: len(where) for op, where in int8["quantization"]["float_ops"].items()}
    if (run_dir / "results.json").exists():
        cells = json.loads((run_dir / "results.json").read_text())["cells"]
        out["top1"] = {f"{c['variant']}.{c['format']}": c["top1"] for c in cells
                       if c["status"] == "ok" and c["top1"] is not None
                       and c["runtime"] == FORMAT_RUNTIME.get(c["format"], c["runtime"])}
    if (run_dir / "parity.json").exists():
        parity = json.loads((run_dir / "parity.json").read_text())["results"]
        out["parity"] = {f"{p['variant']}.{p['format']}": {
            "sqnr": round(p["sqnr_db"], 1) if p["sqnr_db"] != float("inf") else "inf",
            "vs_fp32": p.get("sqnr_vs_fp32_db"), "eager_vs_fp32": p.get("eager_sqnr_vs_fp32_db"),
            "noise_rule": p.get("passed_by_noise_rule"), "passed": p["passed"]} for p in parity}
    return out


def main(out: Path, names: list[str], extra: tuple = ()) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {"train": out / "shapes" / "train", "val": out / "shapes" / "val"}
    if not data["train"].exists():
        trained.write_image_folder(data["train"], per_class=100, seed=0)
        trained.write_image_folder(data["val"], per_class=50, seed=1)
    weights = out / "weights"
    weights.mkdir(exist_ok=True)
    by_size: dict[int, list[str]] = {}
    stats: dict[str, dict] = {}
    for name in names or list(FAMILIES):
        arch, size = FAMILIES[name]
        t0 = time.perf_counter()
        stats[name] = {"train": train(arch, size, data, weights), "train_s": round(time.perf_counter() - t0, 1)}
        by_size.setdefault(size, []).append(name)
    with (out / "families.jsonl").open("a") as f:
        for size, group in by_size.items():
            study_dir = out / f"study-{size}px"
            code = run_study([FAMILIES[n][0] for n in group], size, data, weights, study_dir, extra)
            if not (study_dir / "study.json").is_file():
                sys.exit(f"the study of {', '.join(group)} wrote nothing (exit {code})")
            rows = {r.model: r for r in read_study(study_dir).models}
            for name in group:
                arch = FAMILIES[name][0]
                row = {**family_row(name, arch, size, study_dir, rows[arch]), **stats[name], "flags": list(extra)}
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(json.dumps({k: row.get(k) for k in ("family", "model", "status", "error", "lane", "train_s",
                                                         "wall_s")}), flush=True)


def table(study_jsonl: Path, speed_jsonl: Path | None) -> str:
    """The README's model table from this study's lines and docs/family_speed.py's (the last line per family)."""
    rows = {json.loads(line)["family"]: json.loads(line) for line in study_jsonl.read_text().splitlines()}
    speed: dict[str, dict] = {}  # family -> merged lines (an ORT run and a libtorch-cpp run)
    for line in (speed_jsonl.read_text().splitlines() if speed_jsonl and speed_jsonl.exists() else []):
        r = json.loads(line)
        merged = speed.setdefault(r["family"], {"cells": {}, "interleaved": {}})
        merged["cells"].update(r.get("cells") or {})
        merged["interleaved"].update({k: v for k, v in (r.get("interleaved") or {}).items() if v.get("ratio")})
        merged["float_ops"] = r.get("float_ops") or merged.get("float_ops")
        merged["lane"] = r.get("lane") or merged.get("lane")
    out = ["| family | model | lane | kept float | trained FP32 → INT8-dense top-1 (ORT) | INT8 parity (ORT vs eager INT8) | "
           "INT8 / FP32 speed-up, ort-cpu · libtorch-cpp | faster? |", "|---|---|---|---|---|---|---|---|"]
    for name in speed:  # measured for speed only (e.g. 224-px-only models not trained here)
        model, size = FAMILIES.get(name, (name, 224))
        rows.setdefault(name, {"model": model, "size": size})
    for name, r in rows.items():
        t, p, s = r.get("top1") or {}, r.get("parity") or {}, speed.get(name, {})
        ops = ", ".join(f"{op} ×{n}" for op, n in (r.get("float_ops") or s.get("float_ops") or {}).items()) or "–"
        acc = (f"{t['fp32.onnx']:.1f} → {t['int8-dense.onnx']:.1f}" if "int8-dense.onnx" in t else
               f"exit {r.get('exit')}: {r.get('error')}" if "exit" in r else "not trained here")
        q = [(k, v) for k, v in p.items() if k.endswith(".onnx") and k.split(".")[0] in ("int8", "int8-dense", "mixed")]
        par = ("pass" if q and all(v["passed"] for _, v in q) else "FAIL") if q else "–"
        finite = [v["sqnr"] for _, v in q if v["sqnr"] != "inf"]
        if finite:
            par += f", {min(finite):.1f} dB worst"
            if any(v["noise_rule"] for _, v in q):
                par += " (noise rule)"
        cells = s.get("cells", {})
        ort = s.get("interleaved", {}).get("ort-cpu", {}).get("ratio")  # timed interleaved with FP32
        cpp = (cells["fp32.torchscript/libtorch-cpp"] / cells["int8.torchscript/libtorch-cpp"]
               if "int8.torchscript/libtorch-cpp" in cells and "fp32.torchscript/libtorch-cpp" in cells else None)
        ratios = [ort, cpp]
        sp = " · ".join(f"{x:.2f}×" if x else "–" for x in ratios)
        faster = ("–" if not any(ratios) else "yes" if all(x and x > 1.05 for x in ratios) else
                  "no" if all(x is None or x < 0.95 for x in ratios) else
                  "libtorch yes, ORT no" if cpp and cpp > 1.05 else "mixed")
        out.append(f"| {name} | `{r['model']}` ({r['size']} px) | {r.get('lane') or s.get('lane') or '–'} | {ops} | {acc} | {par} | "
                   f"{sp} | {faster} |")
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1] == "--table":  # docs/family_study.py --table STUDY_DIR SPEED_DIR
        print(table(Path(sys.argv[2]) / "families.jsonl", Path(sys.argv[3]) / "speed.jsonl"))
        sys.exit(0)
    args = sys.argv[2:]
    cut = args.index("--") if "--" in args else len(args)
    main(Path(sys.argv[1]), args[:cut], tuple(args[cut + 1:]))

