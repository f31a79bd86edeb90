"""What each INT8 accuracy step is worth: activation width (the deployment target) and bias correction.

For each model (run from the repository root):

1. train it on the test shapes (tests/support/trained.py: 4 classes, 400 training images, 32 px), from scratch,
   cached in OUT;
2. build ``int8-dense`` and ``int8`` (50% OBS) with the recipe ``shrinkwrap export`` uses, for each setting:
   7-bit activations without correction (the old default), then 8 bits without, with fast and with full bias
   correction (today's default), and the default with cross-layer equalization;
3. print top-1 of each eager INT8 model on the 200 held-out images, with FP32 and ``fp32-pruned``.

    .venv/bin/python docs/int8_steps.py OUT [model ...]   (default: mobilenet_v3_large efficientnet_b0)
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere: tests.support

import torch  # noqa: E402

from exporter.evaluation import accuracy, model_logits  # noqa: E402
from exporter.models import load_model  # noqa: E402
from exporter.options import CalibrationOptions, CompressionOptions  # noqa: E402
from exporter.recipe import Recipe  # noqa: E402
from runtimes.manifest import BiasCorrection  # noqa: E402
from tests.support import trained  # noqa: E402

# (target, bias correction, cross-layer equalization)
SETTINGS = (("x86-avx2", BiasCorrection.NONE, False), ("x86-vnni", BiasCorrection.NONE, False),
            ("x86-vnni", BiasCorrection.FAST, False), ("x86-vnni", BiasCorrection.FULL, False),
            ("x86-vnni", BiasCorrection.FULL, True))
VARIANTS = ("int8-dense", "int8")


def main(out: Path, models: list[str]) -> None:
    warnings.filterwarnings("ignore")
    train_dir = out / "train"
    val_dir = out / "val"
    if not train_dir.is_dir():
        trained.write_image_folder(train_dir, per_class=100, seed=0)
        trained.write_image_folder(val_dir, per_class=50, seed=1)
    xt, _ = trained.load_tensors(train_dir)
    xv, yv = trained.load_tensors(val_dir)
    calib = xt[torch.randperm(len(xt), generator=torch.Generator().manual_seed(0))[:128]]
    labels = yv.numpy()
    for arch in models:
        ckpt, _ = trained.cached_train(train_dir, out / "ckpt", arch=arch)
        loaded = load_model(arch, str(ckpt))
        fp32 = accuracy(model_logits(loaded.model, xv), labels)[0]
        pruned = None
        print(f"{arch}: fp32 {fp32:.1f}", flush=True)
        for target, mode, equalize in SETTINGS:
            recipe = Recipe(loaded, calib, str(train_dir), CompressionOptions(sparsity=0.5),
                            CalibrationOptions(target=target, bias_correction=mode, equalize=equalize))
            if pruned is None:
                pruned = accuracy(model_logits(recipe.build_named("fp32-pruned", recipe.compression).model, xv),
                                  labels)[0]
                print(f"  fp32-pruned {pruned:.1f}", flush=True)
            cells = []
            for variant in VARIANTS:
                t0 = time.perf_counter()
                model = recipe.build_named(variant, recipe.compression).model
                cells.append(f"{variant} {accuracy(model_logits(model, xv), labels)[0]:.1f} "
                             f"({time.perf_counter() - t0:.1f} s)")
            flags = f"--target {target} --bias-correction {mode.value}" + (" --equalize" if equalize else "")
            print(f"  {flags}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: docs/int8_steps.py OUT [model ...]")
    main(Path(sys.argv[1]), sys.argv[2:] or ["mobilenet_v3_large", "efficientnet_b0"])
