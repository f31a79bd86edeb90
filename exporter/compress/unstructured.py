"""Unstructured pruning as one step of a recipe: the method (OBS reconstruction or magnitude), then what the record says.

Builders call :func:`prune_as` on a float model or on a converted INT8 model; the
method decides how (:mod:`exporter.compress.obs` or :mod:`exporter.compress.magnitude`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from exporter.compress import magnitude, obs
from exporter.options import CompressionOptions
from exporter.progress import SILENT, Reporter
from runtimes.manifest import PruneMethod, PruneRecord, SparsityRecord

MAGNITUDE_RECORD = "l1-unstructured"
SYNTHETIC_WARNING = ("obs reconstruction from SYNTHETIC inputs is not meaningful (it fits the weights to "
                     "noise): pass --calib-data with real images, or --prune-method magnitude")


def method_record(opts: CompressionOptions, images: int) -> str:
    if opts.method is PruneMethod.OBS:
        return f"obs (SparseGPT-style reconstruction from {images} calibration images)"
    return MAGNITUDE_RECORD


@dataclass
class PruneOutcome:
    notes: list[str] = field(default_factory=list)  # e.g. Cholesky needed more damping
    seconds: float = 0.0
    results: dict = field(default_factory=dict)  # per layer (before, after), for reuse by an identical model


def prune_as(model: nn.Module, opts: CompressionOptions, images: torch.Tensor, reporter: Reporter = SILENT,
             label: str = "", targets: dict[str, float] | None = None,
             known: dict | None = None) -> PruneOutcome:
    """Prune ``model`` in place at ``opts.sparsity`` with ``opts.method``; sparsity 0 is a no-op.

    ``targets``: per-layer sparsities already allocated (OBS, global scope), shared between variants."""
    if opts.sparsity == 0.0:
        return PruneOutcome()
    if opts.method is PruneMethod.MAGNITUDE:
        magnitude.prune_model(model, opts.sparsity, opts.scope.value)
        return PruneOutcome()
    with reporter.task(f"obs {label}".strip()) as update:
        report = obs.reconstruct(model, images, opts.sparsity, opts.scope.value,
                                         progress=lambda i, n, name: update(i, n, f"obs {label}: {name}".strip()),
                                         targets=targets, known=known)
    reused = f" ({report.reused} leading layers reused from an identical model)" if report.reused else ""
    reporter.say(f"obs {label}: {len(report.layers)} layers reconstructed from {report.images} images "
                 f"in {report.seconds:.1f} s{reused}".replace("  ", " "))
    return PruneOutcome(report.notes(), report.seconds, report.results)


# A delivered sparsity this far below the request is said, never passed over in silence.
SHORTFALL_TOLERANCE = 0.005


def sparsity_shortfall(sparsity: SparsityRecord, pruning: PruneRecord) -> str | None:
    """Why the achieved sparsity misses the request by more than ``SHORTFALL_TOLERANCE``, or None when it does not.

    shrinkwrap delivers the closest model it can build and says so (the console, the record's warnings and
    ``SparsityRecord.shortfall``) rather than refusing: with OBS the global allocation never empties a layer, so
    a request above ``obs.CAP`` of every layer is met only up to that cap.
    """
    if pruning.requested <= 0 or sparsity.achieved >= pruning.requested - SHORTFALL_TOLERANCE:
        return None
    said = f"requested sparsity {pruning.requested:.3f} but achieved {sparsity.achieved:.3f}"
    if pruning.method and pruning.method.startswith("obs") and pruning.scope == "global":
        reachable = sum(int(obs.CAP * layer.total) for layer in sparsity.per_layer) / max(sparsity.total, 1)
        return (f"{said}: OBS's global allocation caps each layer at {obs.CAP:.0%} so that none is emptied, "
                f"so at most {reachable:.3f} is reachable; use --prune-method magnitude or --prune-scope layer "
                f"for more")
    return f"{said}: some weights could not be pruned (e.g. layers the pruner does not cover count in the total)"
