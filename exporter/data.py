"""Calibration and evaluation data: ImageFolder directories and synthetic inputs.

Images are decoded and preprocessed once into one float32 tensor, which every
variant and runtime then reuses. Unreadable files are skipped and counted.
"""

from __future__ import annotations

import random
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from exporter.errors import BadInputError, DataError
from exporter.image_folder import list_image_folder
from exporter.options import PreprocessOptions
from runtimes.architectures import Preprocess



@dataclass
class ImageSet:
    root: str
    images: torch.Tensor  # (N, 3, crop, crop) float32, normalized
    labels: torch.Tensor  # (N,) int64; index into sorted class folder names
    classes: list[str]
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)


def make_preprocess(base: Preprocess, overrides: PreprocessOptions = PreprocessOptions()) -> Preprocess:
    """The weights' own preprocessing with the user's overrides applied."""
    o = overrides
    pre = Preprocess(
        resize=o.resize if o.resize is not None else base.resize,
        crop=o.input_size if o.input_size is not None else base.crop,
        mean=tuple(o.mean) if o.mean is not None else base.mean,
        std=tuple(o.std) if o.std is not None else base.std,
    )
    if pre.crop > pre.resize:
        raise BadInputError(f"--input-size {pre.crop} is larger than --resize {pre.resize}")
    return pre


def transform(pre: Preprocess) -> Callable:
    from torchvision import transforms as T

    return T.Compose([
        T.Resize(pre.resize, interpolation=T.InterpolationMode.BILINEAR, antialias=True),
        T.CenterCrop(pre.crop),
        T.ToTensor(),
        T.Normalize(pre.mean, pre.std),
    ])


def _decode(path: Path, tf: Callable) -> torch.Tensor | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                im.load()
                # Grayscale, CMYK, palette and alpha images all become 3-channel RGB.
                if im.mode == "P" and "transparency" in im.info:
                    im = im.convert("RGBA")
                rgb = im.convert("RGB")
        return tf(rgb)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def load_image_folder(root: Path, pre: Preprocess, limit: int | None = None, seed: int = 0,
                      num_classes: int | None = None, workers: int = 2,
                      progress: Callable[[int, int], None] | None = None) -> ImageSet:
    """Decode an ImageFolder once. ``limit`` takes a deterministic subset (seeded, spread over classes)."""
    classes, samples, others = list_image_folder(root)
    if num_classes is not None and len(classes) > num_classes:
        raise DataError(f"{root} has {len(classes)} class folders but the model has only {num_classes} outputs")
    if limit is not None:
        if limit <= 0:
            raise BadInputError(f"the image count must be positive, got {limit}")
        if limit < len(samples):
            picked = sorted(random.Random(seed).sample(range(len(samples)), limit))
            samples = [samples[i] for i in picked]
    tf = transform(pre)
    tensors: list[torch.Tensor] = []
    labels: list[int] = []
    skipped = [str(p) for p in others]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, ((path, label), t) in enumerate(zip(samples, pool.map(lambda s: _decode(s[0], tf), samples))):
            if t is None:
                skipped.append(str(path))
            else:
                tensors.append(t)
                labels.append(label)
            if progress:
                progress(i + 1, len(samples))
    if not tensors:
        raise DataError(f"{root} has no readable images ({len(skipped)} files skipped)")
    return ImageSet(str(Path(root)), torch.stack(tensors), torch.tensor(labels, dtype=torch.int64),
                    classes, len(skipped), skipped)


def synthetic_images(n: int, pre: Preprocess, seed: int = 0) -> torch.Tensor:
    """Deterministic stand-in for normalized images: smooth random fields, not white noise.

    Low-frequency structure gives activations closer to real photographs than i.i.d.
    noise does, which matters for calibrating activation ranges.
    """
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, 3, max(1, pre.crop // 16), max(1, pre.crop // 16), generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(pre.crop, pre.crop), mode="bilinear",
                                             align_corners=False)
    return (smooth + 0.3 * torch.randn(n, 3, pre.crop, pre.crop, generator=g)).float()


def batches(images: torch.Tensor, size: int):
    for i in range(0, len(images), size):
        yield images[i:i + size]
