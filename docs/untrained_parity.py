"""Parity of untrained models, one per INT8 family, at each model's own input size (run from the repository root).

For each family's representative (``docs/family_study.py``'s ``FAMILIES``; MaxViT has no INT8 lane), this runs

    shrinkwrap export --model M --weights random --variants fp32,int8-dense --calib-data SAMPLE --calib-images N

with no ``--input-size``, so the model gets its own (224 px, 299 for Inception v3, 384 for EfficientNetV2-S).
Random weights have their BatchNorm statistics settled on those calibration images. It writes one JSON line per
family to OUT/untrained_parity.jsonl (FP32 SQNR per format, INT8 SQNR against eager INT8 and against FP32, the
verdict and which rule passed it, the exit code) and prints the README's markdown table.

    .venv/bin/python docs/untrained_parity.py OUT [--sample DIR] [--calib-images N] [family ...]
    .venv/bin/python docs/untrained_parity.py OUT --table     # the table from OUT/untrained_parity.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from typer.testing import CliRunner  # noqa: E402

from docs.family_study import FAMILIES  # noqa: E402
from exporter.cli import app  # noqa: E402
from runtimes.architectures import get_model_spec  # noqa: E402
from runtimes.parity import read_parity  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"
VARIANTS = "fp32,int8-dense"


def measure(family: str, model: str, out: Path, sample: Path, calib_images: int) -> dict:
    run_dir = out / family
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, ["export", "--model", model, "--weights", "random", "--variants", VARIANTS,
                                   "--calib-data", str(sample), "--calib-images", str(calib_images),
                                   "--out", str(run_dir), "--force"], catch_exceptions=False)
    row: dict = {"family": family, "model": model, "size": get_model_spec(model).preprocess.crop,
                 "exit_code": res.exit_code, "seconds": round(time.perf_counter() - t0, 1)}
    report = read_parity(run_dir) if (run_dir / "parity.json").is_file() else None
    if report is None:
        row["error"] = res.output.strip().splitlines()[-1] if res.output.strip() else "no parity.json"
        return row
    for r in report.results:
        key = f"{r.variant}.{r.format}"
        row[key] = {"sqnr_db": r.sqnr_db, "max_abs_error": r.max_abs_error, "max_rel_error": r.max_rel_error,
                    "passed": r.passed, "rule": "noise" if r.passed_by_noise_rule else "row" if r.passed else None,
                    "sqnr_vs_fp32_db": r.sqnr_vs_fp32_db, "eager_sqnr_vs_fp32_db": r.eager_sqnr_vs_fp32_db}
    return row


def _db(x: float | None) -> str:
    if x is None:
        return "–"
    return "identical" if x == math.inf else f"{x:.1f}"


def _verdict(cell: dict | None) -> str:
    if cell is None:
        return "–"
    return "pass" + (" (noise rule)" if cell["rule"] == "noise" else "") if cell["passed"] else "FAIL"


def table(rows: list[dict]) -> str:
    lines = ["| family | model | px | FP32 TorchScript dB | FP32 ONNX dB | FP32 parity | INT8 TorchScript vs eager "
             "INT8 dB | INT8 ONNX vs eager INT8 dB | INT8 ONNX vs FP32 dB | eager INT8 vs FP32 dB | INT8 ONNX parity |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['family']} | {r['model']} | {r['size']} | {r['error']} |||||||| |")
            continue
        ts, ox = r.get("fp32.torchscript"), r.get("fp32.onnx")
        qts, qox = r.get("int8-dense.torchscript"), r.get("int8-dense.onnx")
        fp32_ok = "pass" if ts and ox and ts["passed"] and ox["passed"] else "FAIL"
        lines.append(f"| {r['family']} | {r['model']} | {r['size']} | {_db(ts and ts['sqnr_db'])} | "
                     f"{_db(ox and ox['sqnr_db'])} | {fp32_ok} | {_db(qts and qts['sqnr_db'])} | "
                     f"{_db(qox and qox['sqnr_db'])} | {_db(qox and qox['sqnr_vs_fp32_db'])} | "
                     f"{_db(qox and qox['eager_sqnr_vs_fp32_db'])} | {_verdict(qox)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("families", nargs="*", help=f"default: all with an INT8 lane ({', '.join(FAMILIES)})")
    ap.add_argument("--sample", type=Path, default=SAMPLE)
    ap.add_argument("--calib-images", type=int, default=32)
    ap.add_argument("--table", action="store_true", help="only print the table of OUT/untrained_parity.jsonl")
    a = ap.parse_args()
    jsonl = a.out / "untrained_parity.jsonl"
    if not a.table:
        unknown = sorted(set(a.families) - set(FAMILIES))
        if unknown:
            sys.exit(f"error: unknown families {', '.join(unknown)}; known: {', '.join(FAMILIES)}")
        a.out.mkdir(parents=True, exist_ok=True)
        for family in a.families or FAMILIES:
            model = FAMILIES[family][0]
            if get_model_spec(model).quant_lane is None:
                continue
            row = measure(family, model, a.out, a.sample, a.calib_images)
            with jsonl.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps({k: row[k] for k in ("family", "model", "exit_code", "seconds")}), flush=True)
    rows = {}
    for line in jsonl.read_text().splitlines():
        row = json.loads(line)
        rows[row["family"]] = row  # the latest measurement of each family
    print(table(list(rows.values())))


if __name__ == "__main__":
    main()
