"""What an analysis reads: its options, and the recipe and eval set built from them (nothing is exported).

Shared by the analysis commands (:mod:`exporter.analysis.commands`) and the sweep's Ray tasks
(:mod:`exporter.analysis.sweep_fanout`), which rebuild the same inputs from the same options on their node.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exporter.data import synthetic_images
from exporter.evaluation import EvalSet
from exporter.inputs import SYNTHETIC, load_inputs
from exporter.options import CalibrationOptions, CompressionOptions, EvalOptions, ModelOptions, PreprocessOptions
from exporter.progress import SILENT, Reporter
from exporter.recipe import Recipe

SWEEP_SYNTHETIC_IMAGES = 256  # inputs when no --eval-data is given (output SQNR only)
SENSITIVITY_SYNTHETIC_IMAGES = 128


@dataclass(frozen=True)
class AnalysisOptions:
    out: Path = Path("artifacts/run")  # where the record (and its figures) go, e.g. a run directory
    model: ModelOptions = ModelOptions()
    compression: CompressionOptions = CompressionOptions()
    calibration: CalibrationOptions = CalibrationOptions()
    preprocess: PreprocessOptions = PreprocessOptions()
    evaluation: EvalOptions = EvalOptions()


def analysis_inputs(opts: AnalysisOptions, synthetic_n: int, reporter: Reporter = SILENT) -> tuple[Recipe, EvalSet]:
    """The recipe and the eval set of an analysis; nothing is exported."""
    inputs = load_inputs(opts.model, opts.preprocess, opts.calibration, opts.evaluation, reporter)
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    ev = inputs.eval_set
    if ev is None:
        reporter.say(f"no --eval-data: {synthetic_n} SYNTHETIC inputs, output SQNR only (no accuracy)")
        ev = EvalSet(synthetic_images(synthetic_n, inputs.preprocess, seed=7), None, SYNTHETIC)
    return inputs.recipe(opts.compression, opts.calibration, opts.evaluation.max_accuracy_drop, reporter), ev


