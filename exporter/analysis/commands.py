"""The analysis commands as library functions: ``sweep`` and ``sensitivity``.

Both load the model, calibration and eval images (synthetic when none), build
with the same recipe as ``export``, and write their typed record into ``out``;
nothing is exported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from exporter.analysis.inputs import (SENSITIVITY_SYNTHETIC_IMAGES, SWEEP_SYNTHETIC_IMAGES, AnalysisOptions,
                                      analysis_inputs)
from exporter.analysis.records import SensitivityReport, SweepReport, write_sensitivity, write_sweep
from exporter.analysis.sensitivity import layer_sensitivity
from exporter.analysis.sweep import DEFAULT_CHANNEL_SPARSITIES, DEFAULT_SPARSITIES, run_sweep
from exporter.compress import magnitude, obs
from exporter.errors import BadInputError
from exporter.options import check_sparsity
from exporter.progress import SILENT, Reporter
from exporter.variants import default_variants, parse_variants, sweepable
from runtimes.executor.options import LOCAL, ExecutorOptions
from runtimes.manifest import PruneMethod, PruneScope


def default_sweep_variants() -> tuple[str, ...]:
    return tuple(s.name for s in sweepable(parse_variants(default_variants(with_peers=False))))


@dataclass(frozen=True)
class SweepOptions:
    analysis: AnalysisOptions = AnalysisOptions()
    variants: tuple[str, ...] = field(default_factory=default_sweep_variants)
    sparsities: tuple[float, ...] = DEFAULT_SPARSITIES
    methods: tuple[PruneMethod, ...] = tuple(PruneMethod)  # obs and magnitude, compared
    channel_sparsities: tuple[float, ...] = DEFAULT_CHANNEL_SPARSITIES  # the slim variants' axis
    executor: ExecutorOptions = LOCAL  # ray: each point a Ray task (exporter.analysis.sweep_fanout)

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
    if opts.executor.distributed:
        from exporter.analysis.sweep_fanout import sweep_on_cluster

        report = sweep_on_cluster(opts.analysis, recipe, ev, parse_variants(opts.variants), opts.sparsities,
                                  opts.methods, opts.channel_sparsities, opts.executor, reporter)
    else:
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
