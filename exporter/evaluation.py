"""Evaluation data: decode an ImageFolder once and hand the tensors to every cell.

The benchmark runs each cell in its own process; they all read one ``.npz`` of
preprocessed tensors, so JPEG decoding happens once per run, not once per cell.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from exporter.data import ImageSet, load_image_folder
from exporter.models import Preprocess
from runtimes.artifact import Manifest, read_manifest


def preprocess_of(manifest: Manifest) -> Preprocess:
    spec = manifest.artifacts[0].input
    return Preprocess(spec.resize, spec.crop, tuple(spec.mean), tuple(spec.std))


def load_eval_set(run_dir: Path, data: Path, limit: Optional[int] = None,
                  progress: Callable[[int, int], None] | None = None) -> ImageSet:
    """The eval images with the run's own preprocessing and class order."""
    manifest = read_manifest(run_dir)
    return load_image_folder(data, preprocess_of(manifest), limit=limit,
                             num_classes=manifest.artifacts[0].num_classes, progress=progress)


def decode_eval_set(run_dir: Path, data: Path, limit: Optional[int] = None,
                    progress: Callable[[str], None] = lambda m: None) -> Path:
    """Decode once into a temporary ``.npz`` (removed at exit) and return its path."""
    from rich.progress import BarColumn, Progress, TextColumn

    t0 = time.perf_counter()
    with Progress(TextColumn("decoding eval images"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[rate]}")) as bar:
        task = bar.add_task("decode", total=None, rate="")

        def hook(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, completed=done, total=total, rate=f"{rate:.0f} images/s")

        images = load_eval_set(run_dir, data, limit, progress=hook)
    tmp = Path(tempfile.mkdtemp(prefix="shrinkwrap-eval-"))
    atexit.register(shutil.rmtree, tmp, True)
    path = tmp / "eval.npz"
    images.save_npz(path)
    progress(f"eval set: {len(images.images)} images, {len(images.classes)} classes from {data} "
             f"({images.skipped} files skipped), decoded in {time.perf_counter() - t0:.1f} s")
    return path


def model_logits(model, images, batch: int = 64):
    """Logits of an eager model over preprocessed images, in batches, as one numpy array."""
    import numpy as np
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            outs.append(model(images[i:i + batch]).float().numpy())
    return np.concatenate(outs)


def onnx_logits(proto_bytes: bytes, images, batch: int = 64, threads: int | None = None):
    """Logits of an ONNX model (bytes) in ONNX Runtime's CPU provider."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(proto_bytes, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = images.numpy() if hasattr(images, "numpy") else images
    return np.concatenate([sess.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def accuracy(logits, labels) -> tuple[float, float | None]:
    """(top-1, top-5) in percent; top-5 is None for models with fewer than 5 classes."""
    from runtimes.metrics import topk_accuracy

    ks = (1, 5) if logits.shape[1] >= 5 else (1,)
    acc = topk_accuracy(logits, labels.numpy() if hasattr(labels, "numpy") else labels, ks=ks)
    return acc[1], acc.get(5)
