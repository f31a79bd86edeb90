"""The parity gate of a run directory: its inputs, the check, parity.json, the verdict.

:mod:`runtimes.parity` compares arrays; this module supplies the inputs with the
run's own preprocessing (decoding images needs the exporter's data code), keeps
the run's record of them, and turns a failed check into
:class:`~runtimes.errors.ParityError` (exit 4).

A run is checked on the inputs it recorded, unless told otherwise: ``parity
DIR`` after ``export --calib-data X`` checks the same images of X again. A check
on other inputs is written beside the run's ``parity.json``
(``parity-<source>-<n>.json``), never over it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exporter.data import load_image_folder
from exporter.evaluation import preprocess_of
from exporter.options import ParityOptions
from exporter.progress import SILENT, Reporter
from runtimes.errors import BadInputError, ParityError
from runtimes.localize import LOCALIZE_INPUTS, localize_results
from runtimes.manifest import RUN_FILES, read_manifest
from runtimes.parity import (DEGENERATE, ParityInputs, ParityResult, check_parity, read_parity,
                             synthetic_inputs, write_parity)

SYNTHETIC_SEED = 0


def resolve_inputs(run_dir: Path, opts: ParityOptions) -> ParityInputs:
    """The inputs this check runs on: the ones asked for, else the run's recorded ones, else synthetic."""
    recorded = _recorded(run_dir)
    if opts.data is not None:
        same_folder = recorded is not None and recorded.data == str(opts.data)
        n = opts.images or (recorded.n if same_folder else ParityOptions.DEFAULT_IMAGES)
        return ParityInputs("images", n, str(opts.data), SYNTHETIC_SEED)
    if recorded is not None and not opts.synthetic:
        return ParityInputs(recorded.source, opts.images or recorded.n, recorded.data, recorded.seed)
    n = opts.images or (recorded.n if recorded is not None else ParityOptions.DEFAULT_IMAGES)
    return ParityInputs("synthetic", n, None, SYNTHETIC_SEED)


def _recorded(run_dir: Path) -> ParityInputs | None:
    report = read_parity(run_dir)
    return report.inputs if report is not None else None


def parity_inputs(run_dir: Path, inputs: ParityInputs) -> np.ndarray:
    """The arrays for ``inputs``, with the run's preprocessing."""
    manifest = read_manifest(run_dir)
    if inputs.source == "synthetic":
        return synthetic_inputs(inputs.n, manifest.artifacts[0].input, seed=inputs.seed)
    if inputs.data is None or not Path(inputs.data).is_dir():
        raise BadInputError(f"this run's parity inputs were images from {inputs.data}, which is not there; "
                            "pass --data DIR or --synthetic")
    images = load_image_folder(Path(inputs.data), preprocess_of(manifest), limit=inputs.n, seed=inputs.seed,
                               num_classes=manifest.artifacts[0].num_classes)
    return images.images.numpy()


def run_parity(run_dir: Path, opts: ParityOptions = ParityOptions(), threads: int | None = None,
               reporter: Reporter = SILENT) -> list[ParityResult]:
    """Check every artifact against its eager model and record it: in ``parity.json`` when these are the
    run's own inputs (or the first check), else beside it."""
    run_dir = Path(run_dir)
    inputs = resolve_inputs(run_dir, opts)
    recorded = _recorded(run_dir)
    arrays = parity_inputs(run_dir, inputs)
    where = (f"images from {inputs.data}" if inputs.source == "images"
             else f"synthetic inputs (seed {inputs.seed})")
    reporter.say(f"parity: {len(arrays)} {where}, every artifact vs its eager reference")
    results = check_parity(run_dir, arrays, inputs.source, tolerances=opts.tolerances(), threads=threads)
    own = recorded is None or recorded == inputs or not (run_dir / RUN_FILES.parity).is_file()
    name = RUN_FILES.parity if own else f"{Path(RUN_FILES.parity).stem}-{inputs.tag()}.json"
    if not own:
        reporter.say(f"parity: these are not the run's recorded inputs; written to {name}, "
                     f"{RUN_FILES.parity} left as it was")
    write_parity(run_dir, results, inputs, name)
    if opts.localize is not None:
        targets = [r for r in results if opts.localize == "all" or not r.passed]
        if targets:
            reporter.say(f"parity: localizing {len(targets)} artifact(s) layer by layer against their eager "
                         f"modules ({min(len(arrays), LOCALIZE_INPUTS)} inputs)")
            results = localize_results(run_dir, results, arrays, opts.localize, opts.tolerances(), threads)
            write_parity(run_dir, results, inputs, name)
    for r in results:
        for note in r.notes:
            if note.startswith(DEGENERATE):
                reporter.say(f"⚠ {note}")
    return results


def gated_failures(results: list[ParityResult], strict_peers: bool = False) -> list[ParityResult]:
    """The failures that fail the gate: the run's own artifacts, and peer rows only with ``strict_peers``."""
    return [r for r in results if not r.passed and (strict_peers or not r.peer)]


def peer_failures(results: list[ParityResult], strict_peers: bool = False) -> list[ParityResult]:
    """Peer rows outside their tolerance that the gate reports but does not fail on."""
    return [] if strict_peers else [r for r in results if not r.passed and r.peer]


def parity_failure_line(failed: list[ParityResult]) -> str:
    """One terminal line: the first failing artifact, its runtime, its first metric and limit, the layer where
    it first diverges; how many more; where every figure is (parity.json; the report's parity table)."""
    first = failed[0]
    # a violation reads "int8.onnx (int8, ort-cpu vs eager int8): sqnr 8.20 dB < 25 dB": keep the metric part
    metric = first.violations[0].split("): ", 1)[-1] if first.violations else "outside its tolerance"
    metric = metric if len(metric) <= 90 else metric[:89].rstrip() + "…"
    layer = f"; first divergent layer: {first.first_divergent_layer}" if first.first_divergent_layer else ""
    more = f"; +{len(failed) - 1} more" if len(failed) > 1 else ""
    return (f"parity failed for {len(failed)} artifact(s): {first.path} ({first.variant}) in {first.runtime}: "
            f"{metric}{layer}{more}; "
            f"every metric in parity.json")


def require_parity(results: list[ParityResult], fail_on_degenerate: bool = True, strict_peers: bool = False) -> None:
    """Raise :class:`ParityError` naming every artifact of the run outside its tolerance (or degenerate).

    A peer row's failure (another tool's artifact, kept for comparison) is the peer's problem, not the user's:
    it is reported in the table, the JSON, JUnit (as skipped) and the report, and fails the gate only with
    ``strict_peers``."""
    failed = gated_failures(results, strict_peers)
    if failed:
        raise ParityError(parity_failure_line(failed))
    degenerate = [r for r in results if r.degenerate and (strict_peers or not r.peer)]
    if degenerate and fail_on_degenerate:
        raise ParityError(f"{len(degenerate)} artifact(s) are {DEGENERATE}: their outputs do not depend on "
                          f"the input ({', '.join(r.path for r in degenerate)}); --allow-degenerate lets "
                          "them pass")
