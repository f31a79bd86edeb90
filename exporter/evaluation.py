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
