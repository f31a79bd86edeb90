"""The parity gate of a run directory: inputs from real images (or synthetic), the check, parity.json, the verdict.

:mod:`runtimes.parity` compares arrays; this module supplies the inputs with the
run's own preprocessing (decoding images needs the exporter's data code) and
turns a failed check into :class:`~runtimes.errors.ParityError` (exit 4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exporter.data import load_image_folder
from exporter.evaluation import preprocess_of
from exporter.options import ParityOptions
from exporter.progress import SILENT, Reporter
from runtimes.errors import ParityError
from runtimes.manifest import read_manifest
from runtimes.parity import ParityResult, check_parity, synthetic_inputs, write_parity


def parity_inputs(run_dir: Path, data: Path | None, n: int) -> tuple[np.ndarray, str]:
    """``n`` inputs for the artifacts of ``run_dir``: decoded from ``data`` with the run's
    preprocessing, or deterministic synthetic ones."""
    manifest = read_manifest(run_dir)
    if data is None:
        return synthetic_inputs(n, manifest.artifacts[0].input, seed=0), "synthetic"
    images = load_image_folder(data, preprocess_of(manifest), limit=n,
                               num_classes=manifest.artifacts[0].num_classes)
    return images.images.numpy(), "images"


def run_parity(run_dir: Path, opts: ParityOptions = ParityOptions(), threads: int | None = None,
               reporter: Reporter = SILENT) -> list[ParityResult]:
    """Check every artifact against its eager model and write ``parity.json`` (pass or fail)."""
    inputs, source = parity_inputs(run_dir, opts.data, opts.images)
    reporter.say(f"parity: {len(inputs)} {'real-image' if source == 'images' else source} inputs, "
                 "every artifact vs its eager reference")
    results = check_parity(run_dir, inputs, source, tolerances=opts.tolerances(), threads=threads)
    write_parity(run_dir, results)
    return results


def require_parity(results: list[ParityResult]) -> None:
    """Raise :class:`ParityError` naming every artifact outside its tolerance."""
    failed = [r for r in results if not r.passed]
    if failed:
        names = ", ".join(f"{r.variant}.{r.format} ({'; '.join(r.violations)})" for r in failed)
        raise ParityError(f"parity failed for {len(failed)} artifact(s): {names}")
