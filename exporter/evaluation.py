"""Evaluation data and in-process scoring: the eval set, its tensors file for the benchmark, logits, accuracy.

An eval ImageFolder is decoded once per command, with the run's own
preprocessing and class order; the benchmark's cell processes all read the same
``.npz`` of preprocessed tensors (:func:`eval_tensors_file`).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from exporter.progress import SILENT, Reporter
from runtimes.architectures import Preprocess
from runtimes.manifest import Manifest


@dataclass(frozen=True)
class EvalSet:
    images: torch.Tensor  # preprocessed float32 NCHW
    labels: torch.Tensor | None  # None: synthetic inputs, output SQNR only
    source: str


def preprocess_of(manifest: Manifest) -> Preprocess:
    """The preprocessing a run's artifacts were exported with."""
    spec = manifest.artifacts[0].input
    return Preprocess(spec.resize, spec.crop, tuple(spec.mean), tuple(spec.std))


def decode_eval_set(folder: Path, pre: Preprocess, num_classes: int, limit: int | None = None,
                    reporter: Reporter = SILENT) -> EvalSet:
    """Decode the labelled eval images once (reporting images/s)."""
    from exporter.data import load_image_folder

    t0 = time.perf_counter()
    with reporter.task("decoding eval images") as update:
        images = load_image_folder(folder, pre, limit=limit, num_classes=num_classes, progress=update)
    reporter.say(f"eval set: {len(images.images)} images in {len(images.classes)} classes from {folder} "
                 f"({images.skipped} files skipped), decoded in {time.perf_counter() - t0:.1f} s")
    return EvalSet(images.images, images.labels, str(folder))


@contextlib.contextmanager
def eval_tensors_file(eval_set: EvalSet | None) -> Iterator[Path | None]:
    """The eval set as one ``.npz`` the benchmark's cell processes read; removed on exit."""
    if eval_set is None or eval_set.labels is None:
        yield None
        return
    tmp = Path(tempfile.mkdtemp(prefix="shrinkwrap-eval-"))
    try:
        path = tmp / "eval.npz"
        np.savez(path, images=eval_set.images.numpy(), labels=eval_set.labels.numpy())
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def model_logits(model, images, batch: int = 64) -> np.ndarray:
    """Logits of an eager model over preprocessed images, in batches, as one numpy array."""
    outs = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            outs.append(model(images[i:i + batch]).float().numpy())
    return np.concatenate(outs)


def onnx_logits(proto_bytes: bytes, images, batch: int = 64, threads: int | None = None) -> np.ndarray:
    """Logits of an ONNX model (bytes) in ONNX Runtime's CPU provider."""
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
