"""ImageFolder layout: class folders in sorted order, image files found by extension (no decoding)."""

from __future__ import annotations

from pathlib import Path

from exporter.errors import DataError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


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
