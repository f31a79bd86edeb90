"""Evaluation helpers: the run's preprocessing, and in-process logits and accuracy.

The CLI decodes an eval ImageFolder once per run; the benchmark's cell processes
all read the same ``.npz`` of preprocessed tensors.
"""

from __future__ import annotations

from exporter.models import Preprocess
from runtimes.artifact import Manifest


def preprocess_of(manifest: Manifest) -> Preprocess:
    spec = manifest.artifacts[0].input
    return Preprocess(spec.resize, spec.crop, tuple(spec.mean), tuple(spec.std))


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
