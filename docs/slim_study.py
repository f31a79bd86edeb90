"""The channel-pruning study behind the README's slim tables (run from the repository root, ~10 min on 2 cores).

On the harder trained test model (tests/support/trained.py: 10 classes, 32x32, trained for real), for 30, 50
and 70% of every layer's channels removed:

- top-1 with no recovery at all (channels removed by Taylor importance, nothing else);
- top-1 after the always-on label-free reconstruction (BatchNorm re-estimated, least-squares refit), and
- after 3 epochs of label-free distillation on the training images,

for ``fp32-slim`` and ``int8-slim``, every accuracy measured in ONNX Runtime by ``shrinkwrap sweep``.

    .venv/bin/python docs/slim_study.py /tmp/slim-study
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere: tests.support

from exporter.cli import app
from exporter.compress import channels
from runtimes.architectures import build_float_model
from tests.support import trained

LEVELS = (0.3, 0.5, 0.7)
ARGS = ("--calib-images", "256", "--resize", "32", "--input-size", "32", "--mean", "0.5,0.5,0.5",
        "--std", "0.25,0.25,0.25", "--variants", "fp32-slim,int8-slim",
        "--channel-sparsities", ",".join(map(str, LEVELS)))


def without_recovery(model_path: Path, train: Path, val: Path, classes: int) -> dict[float, float]:
    """Top-1 of the channel-pruned model before any reconstruction (eager FP32)."""
    x, _ = trained.load_tensors(train)
    xv, yv = trained.load_tensors(val)
    model = build_float_model("resnet18", classes)
    model.load_state_dict(torch.load(model_path, weights_only=True))
    images = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:128]]
    out = {}
    for c in LEVELS:
        slim = copy.deepcopy(model).eval()
        channels.remove_channels(slim, images, c, 8, channels.TAYLOR)
        with torch.no_grad():
            out[c] = float((slim(xv).argmax(1) == yv).float().mean()) * 100
    return out


def sweep(root: Path, name: str, model: Path, train: Path, val: Path, *extra: str) -> dict:
    res = CliRunner().invoke(app, ["sweep", "--out", str(root / name), "--weights", str(model),
                                   "--calib-data", str(train), "--eval-data", str(val), *ARGS, *extra])
    assert res.exit_code == 0, res.output
    return json.loads((root / name / "sweep.json").read_text())


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/slim-study")
    train = root / "train"
    if not (root / "model.pt").is_file():
        trained.write_image_folder(train, 200, 0, trained.HARD_CLASSES, trained.HARD_NOISE)
        trained.write_image_folder(root / "val", 50, 1, trained.HARD_CLASSES, trained.HARD_NOISE)
        print(trained.train(train, root / "model.pt", epochs=8))
    raw = without_recovery(root / "model.pt", train, root / "val", len(trained.HARD_CLASSES))
    plain = sweep(root, "recovered", root / "model.pt", train, root / "val")
    tuned = sweep(root, "distilled", root / "model.pt", train, root / "val", "--finetune-data", str(train),
                  "--finetune-epochs", "3")
    print(f"FP32 top-1 {plain['fp32_top1']:.1f}%")
    print("| variant | channels removed | MMACs | no recovery | BN + refit | + distillation (3 epochs) |")
    for p, q in zip(plain["points"], tuned["points"]):
        print(f"| {p['variant']} | {p['channel_sparsity']:.0%} | {p['macs'] / 1e6:.1f} | {raw[p['channel_sparsity']]:.1f} "
              f"| {p['top1']:.1f} | {q['top1']:.1f} |")
