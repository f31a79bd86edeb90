"""The analysis commands as library functions: ``sweep`` and ``sensitivity``.

Both load the model, calibration and eval images (synthetic when none), build
with the same recipe as ``export``, and write their typed record into ``out``;
nothing is exported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from exporter.analysis.records import SensitivityReport, SweepReport, write_sensitivity, write_sweep
from exporter.analysis.sensitivity import layer_sensitivity
from exporter.analysis.sweep import DEFAULT_CHANNEL_SPARSITIES, DEFAULT_SPARSITIES, run_sweep
from exporter.compress import magnitude, obs
from exporter.data import synthetic_images
from exporter.errors import BadInputError
from exporter.evaluation import EvalSet
from exporter.inputs import SYNTHETIC, load_inputs
from exporter.options import (CalibrationOptions, CompressionOptions, EvalOptions, ModelOptions,
                              PreprocessOptions, check_sparsity)
from exporter.progress import SILENT, Reporter
from exporter.recipe import Recipe
from exporter.variants import default_variants, parse_variants, sweepable
from runtimes.manifest import PruneMethod, PruneScope

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


def default_sweep_variants() -> tuple[str, ...]:
    return tuple(s.name for s in sweepable(parse_variants(default_variants(with_peers=False))))


@dataclass(frozen=True)
class SweepOptions:
    analysis: AnalysisOptions = AnalysisOptions()
    variants: tuple[str, ...] = field(default_factory=default_sweep_variants)
    sparsities: tuple[float, ...] = DEFAULT_SPARSITIES
    methods: tuple[PruneMethod, ...] = tuple(PruneMethod)  # obs and magnitude, compared
    channel_sparsities: tuple[float, ...] = DEFAULT_CHANNEL_SPARSITIES  # the slim variants' axis

    def __post_init__(self) -> None:
        channels = tuple(check_sparsity(c, "--channel-sparsities") for c in self.channel_sparsities)
        if not channels:
            raise BadInputError("--channel-sparsities is empty")
        object.__setattr__(self, "channel_sparsities", channels)
        levels = tuple(check_sparsity(s, "--sparsities") for s in self.sparsities)
        if not levels:
            raise BadInputError("--sparsities is empty")
        object.__setattr__(self, "sparsities", levels)
        specs = sweepable(parse_variants(self.variants))
        if not specs:
            raise BadInputError("--variants names no pruned variant to sweep")
        object.__setattr__(self, "variants", tuple(s.name for s in specs))


def sweep(opts: SweepOptions, reporter: Reporter = SILENT) -> SweepReport:
    """Run the sweep and write ``sweep.json`` into ``opts.analysis.out``."""
    recipe, ev = analysis_inputs(opts.analysis, SWEEP_SYNTHETIC_IMAGES, reporter)
    report = run_sweep(recipe, parse_variants(opts.variants), ev, opts.sparsities, say=reporter.say,
                       methods=opts.methods, channel_sparsities=opts.channel_sparsities)
    write_sweep(opts.analysis.out, report)
    return report


def sensitivity(opts: AnalysisOptions, reporter: Reporter = SILENT) -> SensitivityReport:
    """Per-layer sensitivity at ``opts.compression.sparsity``; writes ``sensitivity.json`` into ``opts.out``."""
    opts = dataclasses.replace(opts, compression=dataclasses.replace(opts.compression, scope=PruneScope.LAYER))
    recipe, ev = analysis_inputs(opts, SENSITIVITY_SYNTHETIC_IMAGES, reporter)
    prune_layer = None
    if opts.compression.method is PruneMethod.OBS:
        def prune_layer(model, name: str, sparsity: float) -> None:
            targets = {w.name: (sparsity if w.name == name else 0.0) for w in magnitude.prunable_weights(model)}
            obs.reconstruct(model, recipe.obs_images, sparsity, targets=targets)

    report = layer_sensitivity(recipe.loaded.model, recipe.calibrated(False), ev, opts.compression.sparsity,
                               recipe.loaded.arch, say=reporter.say, prune_layer=prune_layer)
    write_sensitivity(opts.out, report)
    return report
