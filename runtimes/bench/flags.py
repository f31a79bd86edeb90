"""Pure functions over measured cells: flag what is no deployment option, share accuracy across batches."""

from __future__ import annotations

import dataclasses
from typing import Sequence

from runtimes import registry
from runtimes.bench.results import Cell, Status
from runtimes.manifest import Precision
from runtimes.protocol import CPU

# On tiny inputs PyTorch's per-op overhead alone makes eager FP32 >10x slower than ORT; a
# 20x gap (FP16 in PyTorch on CPU is ~45x at 224 px) marks a configuration, not overhead.
PATHOLOGICAL_FACTOR = 20.0
FP16_CPU_FLAG = "FP16 in PyTorch on CPU has no fast kernels"


def flag_cells(cells: Sequence[Cell], factor: float = PATHOLOGICAL_FACTOR) -> list[Cell]:
    """Flag ok cells that are no deployment option.

    Data-driven only: a cell more than ``factor`` times slower than the fastest ok cell
    of the same variant, batch and device, when both timings are stable: a noisy
    measurement is never called pathological (it carries its ``noisy`` flag instead).
    When such a cell is FP16 in a PyTorch runtime on a CPU, the flag says why (no fast
    FP16 kernels there: 46x slower than ORT on the project's AVX-512 EPYC). It is not a
    rule: on a CPU with AMX-FP16 the same cells run within 1.5x of ORT and are not flagged.
    """
    pytorch = {s.name for s in registry.specs() if s.framework == "pytorch"}
    fastest: dict[tuple[str, int, str], Cell] = {}
    for c in cells:
        key = (c.variant, c.batch, c.device)
        if c.ok and c.median is not None and (key not in fastest or c.median < fastest[key].median):
            fastest[key] = c
    out = []
    for c in cells:
        flags = list(c.flags)
        pathological = False
        if c.ok and c.median is not None:
            best = fastest[(c.variant, c.batch, c.device)]
            if best.median > 0 and c.median > factor * best.median and c.stable and best.stable:
                flags.append(f"pathological: {c.median / best.median:.0f}x slower than "
                             f"{best.runtime} for this variant; not a deployment option")
                pathological = True
                if c.precision == Precision.FP16.value and c.device == CPU and c.runtime in pytorch:
                    flags.append(FP16_CPU_FLAG)
        out.append(dataclasses.replace(c, flags=flags, pathological=pathological))
    return out


def share_accuracy(cells: Sequence[Cell]) -> list[Cell]:
    """Copy the accuracy measured at one batch size to the other ok rows of the same artifact × runtime."""
    measured = {(c.variant, c.format, c.runtime): c for c in cells if c.top1 is not None}
    out = []
    for c in cells:
        src = measured.get((c.variant, c.format, c.runtime))
        if src is not None and c.top1 is None and c.status == Status.OK:
            c = dataclasses.replace(c, top1=src.top1, top5=src.top5, eval_images=src.eval_images)
        out.append(c)
    return out
