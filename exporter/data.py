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

import numpy as np
import torch

from exporter.errors import BadInputError, DataError
from exporter.models import Preprocess

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class ImageSet:
    root: str
    images: torch.Tensor  # (N, 3, crop, crop) float32, normalized
    labels: torch.Tensor  # (N,) int64; index into sorted class folder names
    classes: list[str]
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)

    def save_npz(self, path: Path) -> None:
        np.savez(path, images=self.images.numpy(), labels=self.labels.numpy())


def parse_triple(csv: str, what: str) -> tuple[float, float, float]:
    try:
        vals = tuple(float(v) for v in csv.split(","))
    except ValueError:
        raise BadInputError(f"{what} must be three comma-separated numbers, got {csv!r}") from None
    if len(vals) != 3:
        raise BadInputError(f"{what} must be three comma-separated numbers, got {csv!r}")
    return vals  # type: ignore[return-value]


def make_preprocess(base: Preprocess, resize: int | None = None, crop: int | None = None,
                    mean: str | None = None, std: str | None = None) -> Preprocess:
    pre = Preprocess(
        resize=resize if resize is not None else base.resize,
        crop=crop if crop is not None else base.crop,
        mean=parse_triple(mean, "--mean") if mean else base.mean,
        std=parse_triple(std, "--std") if std else base.std,
    )
    if pre.crop <= 0 or pre.resize <= 0:
        raise BadInputError(f"--resize and --input-size must be positive, got {pre.resize} and {pre.crop}")
    if pre.crop > pre.resize:
        raise BadInputError(f"--input-size {pre.crop} is larger than --resize {pre.resize}")
    if any(s <= 0 for s in pre.std):
        raise BadInputError(f"--std values must be positive, got {pre.std}")
    return pre


def transform(pre: Preprocess) -> Callable:
    from torchvision import transforms as T

    return T.Compose([
        T.Resize(pre.resize, interpolation=T.InterpolationMode.BILINEAR, antialias=True),
        T.CenterCrop(pre.crop),
        T.ToTensor(),
        T.Normalize(pre.mean, pre.std),
    ])


def list_image_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]], list[Path]]:
    """Class folders in sorted order, candidate image files, and files skipped by extension."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data directory not found: {root}")
    if not root.is_dir():
        raise DataError(f"data path is not a directory: {root}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class folders (expected ImageFolder layout: {root}/<class>/<image>)")
    samples: list[tuple[Path, int]] = []
    others: list[Path] = []
    for idx, cls in enumerate(classes):
        for p in sorted((root / cls).rglob("*")):
            if not p.is_file() or p.name.startswith("."):
                continue
            (samples.append((p, idx)) if p.suffix.lower() in IMG_EXTENSIONS else others.append(p))
    return classes, samples, others


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
