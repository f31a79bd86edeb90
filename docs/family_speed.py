"""INT8 against FP32 latency for every torchvision CNN family (run from the repository root on a quiet machine).

For one representative model per family, at its own input size (224, 299 for Inception v3), untrained
(random weights: latency does not depend on their values), calibrated on the shared ImageNet sample:

    shrinkwrap export --variants fp32,int8 --sparsity 0 --skip-parity   (int8 at sparsity 0 = dense INT8)
    shrinkwrap bench --runtimes ort-cpu,libtorch-cpp --batch 1

and one JSON line per family in OUT/speed.jsonl: each runtime's median FP32 and INT8 latency (separate
cells) and, where the runtime can interleave (ORT), the INT8 speed-up timed in one process with FP32 (the
number the README quotes for ORT; libtorch-cpp's is the ratio of its separate cells).
Parity is skipped because untrained squeeze-excitation models have no faithful INT8 model to check it on
(README, parity policy); docs/family_study.py checks parity on trained ones.

    .venv/bin/python docs/family_speed.py OUT [--runtimes a,b] [--reuse] [family ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typer.testing import CliRunner  # noqa: E402

from exporter.cli import app  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"
FAMILIES = {
    "resnet": "resnet18", "resnext": "resnext50_32x4d", "wide_resnet": "wide_resnet50_2",
    "mobilenetv2": "mobilenet_v2", "mobilenetv3": "mobilenet_v3_large", "googlenet": "googlenet",
    "inception": "inception_v3", "shufflenetv2": "shufflenet_v2_x1_0", "efficientnet": "efficientnet_b0",
    "efficientnet_v2": "efficientnet_v2_s", "regnet_x": "regnet_x_400mf", "regnet_y": "regnet_y_400mf",
    "mnasnet": "mnasnet1_0", "densenet": "densenet121", "squeezenet": "squeezenet1_1", "convnext": "convnext_tiny",
    "vgg": "vgg11_bn", "alexnet": "alexnet", "swin": "swin_t", "maxvit": "maxvit_t",
}
RUNTIMES = "ort-cpu,libtorch-cpp"


def measure(name: str, arch: str, out: Path, runtimes: str = RUNTIMES, reuse: bool = False) -> dict:
    run = out / arch
    t0 = time.perf_counter()
    runner = CliRunner()
    row: dict = {"family": name, "model": arch, "runtimes": runtimes}
    if not (reuse and (run / "manifest.json").exists()):
        res = runner.invoke(app, ["export", "--out", str(run), "--force", "--model", arch, "--weights", "random",
                                  "--calib-data", str(SAMPLE), "--calib-images", "32", "--variants", "fp32,int8",
                                  "--sparsity", "0", "--skip-parity"], catch_exceptions=True)
        row.update(export_exit=res.exit_code, export_s=round(time.perf_counter() - t0))
        if res.exit_code:
            row["error"] = res.output.strip().splitlines()[-1]
            return row
    res = runner.invoke(app, ["bench", str(run), "--runtimes", runtimes, "--batch", "1"], catch_exceptions=True)
    row["bench_exit"] = res.exit_code
    results = json.loads((run / "results.json").read_text())
    row["cells"] = {f"{c['variant']}.{c['format']}/{c['runtime']}": c["latency_ms"]["median"]
                    for c in results["cells"] if c["status"] == "ok"}
    row["interleaved"] = {c["runtime"]: {"a": c["a"], "b": c["b"], "ratio": c["ratio"], "stable": c["stable"],
                                         "status": c["status"], "reason": c["reason"][:120]}
                          for c in results["comparisons"]}
    manifest = json.loads((run / "manifest.json").read_text())
    int8 = next(a for a in manifest["artifacts"] if a["variant"] == "int8")
    row["lane"] = int8["quantization"]["lane"]
    row["float_ops"] = {op: len(w) for op, w in int8["quantization"]["float_ops"].items()}
    row["machine"] = results["environment"]["cpu_model"]
    return row


def main(out: Path, names: list[str], runtimes: str = RUNTIMES, reuse: bool = False) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "speed.jsonl").open("a") as f:
        for name in names or list(FAMILIES):
            row = measure(name, FAMILIES[name], out, runtimes, reuse)
            f.write(json.dumps(row) + "\n")
            f.flush()
            print(json.dumps({k: row.get(k) for k in ("family", "model", "export_exit", "bench_exit", "interleaved",
                                                     "error")}), flush=True)


if __name__ == "__main__":
    # docs/family_speed.py OUT [--runtimes a,b] [--reuse] [family ...]; --reuse benches the exports already in OUT
    args = sys.argv[2:]
    runtimes = args[args.index("--runtimes") + 1] if "--runtimes" in args else RUNTIMES
    names = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] != "--runtimes")]
    main(Path(sys.argv[1]), names, runtimes, "--reuse" in args)
