"""The pruning study behind the README's accuracy tables (run from the repository root, ~8 min on 2 cores).

Trains the two test models for real (tests/support/trained.py: 4 shapes, and a harder 10-class task with
more noise), then runs ``shrinkwrap sweep`` on each: OBS vs magnitude, both orders, 0/50/70/90% sparsity,
every point measured in ONNX Runtime. Prints each sweep's conclusions; the tables are in each sweep.json.

    .venv/bin/python docs/pruning_study.py /tmp/pruning-study
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere: tests.support

from exporter.cli import app
from tests.support import trained

ARGS = ("--calib-images", "128", "--resize", "32", "--input-size", "32", "--mean", "0.5,0.5,0.5",
        "--std", "0.25,0.25,0.25", "--sparsities", "0,0.5,0.7,0.9")


def study(root: Path, classes: tuple[str, ...], noise: float, per_class: int, epochs: int) -> None:
    train = trained.write_image_folder(root / "train", per_class, 0, classes, noise)
    val = trained.write_image_folder(root / "val", 50, 1, classes, noise)
    print(trained.train(train, root / "model.pt", epochs=epochs))
    res = CliRunner().invoke(app, ["sweep", "--out", str(root / "sweep"), "--weights", str(root / "model.pt"),
                                   "--calib-data", str(train), "--eval-data", str(val), *ARGS])
    assert res.exit_code == 0, res.output
    data = json.loads((root / "sweep" / "sweep.json").read_text())
    print(f"{root.name}: FP32 top-1 {data['fp32_top1']:.1f}%")
    for line in data["conclusions"]:
        print(" -", line)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pruning-study")
    study(out / "shapes-4", trained.CLASSES, 0.06, 100, 6)
    study(out / "shapes-10", trained.HARD_CLASSES, trained.HARD_NOISE, 200, 8)
