"""One verdict per question: when separate cells and interleaved rounds disagree on which side is faster.

A run times a speed-up two ways. Separate cells time each artifact in a process of its own:
each sees its own steady state (caches warm for that model alone), but a burst of load
during one cell biases the ratio. Interleaved rounds alternate the two artifacts in one
process: load slows both sides of a round alike, but every switch costs cache, so on a quiet
machine their ratio sits closer to 1. When the two disagree on the *direction* (one says
faster, the other slower) the report says so once and names the figure to believe:

- the separate cells, when both were timed stably on a quiet machine (caches are then the
  difference, and separate cells are robust to them);
- the interleaved rounds, when either separate cell was noisy or other processes were busy
  during the window (load is then the likelier cause, and interleaving is robust to it);
- neither, when the interleaved window was noisy too: undecided, rerun on a quiet machine.

Pure functions of the run's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from runtimes.bench.results import Cell, Comparison

SEPARATE = "separate cells"
INTERLEAVED = "interleaved rounds"


@dataclass(frozen=True)
class Disagreement:
    comparison: Comparison
    separate: float  # time(a) / time(b) from the separate cells: a speed-up of b over a
    interleaved: float  # the comparison's median ratio
    believe: str | None  # SEPARATE, INTERLEAVED, or None: undecided
    why: str

    @property
    def figure(self) -> float | None:
        """The speed-up the summary states, or None when undecided."""
        return {SEPARATE: self.separate, INTERLEAVED: self.interleaved}.get(self.believe)


def _separate_cells(comp: Comparison, cells: Sequence[Cell]) -> tuple[Cell, Cell] | None:
    def find(variant: str, fmt: str, runtime: str) -> Cell | None:
        return next((c for c in cells if c.ok and c.variant == variant and c.format == fmt
                     and c.runtime == runtime and c.batch == comp.batch and c.median), None)

    a, b = find(comp.a, comp.a_format, comp.runtime), find(comp.b, comp.b_format, comp.b_runs_in)
    return (a, b) if a is not None and b is not None else None


# Other processes' CPU use (in cores) during the interleaved window above which the machine counts as busy.
BUSY_CORES = 0.5


def _choose(cells_stable: bool, comp: Comparison) -> tuple[str | None, str]:
    busy = comp.other_cores is not None and comp.other_cores >= BUSY_CORES
    if cells_stable and not busy:
        return SEPARATE, ("both separate cells were timed stably on a quiet machine, so the difference is the "
                          "cache that interleaving pays at every switch; separate cells are robust to it")
    if comp.stable is not False:
        cause = f"other processes used {comp.other_cores:.1f} cores" if busy else "a separate cell was timed under noise"
        return INTERLEAVED, f"{cause}; interleaved rounds are robust to load"
    return None, "both figures were timed under noise: undecided, rerun on a quiet machine"


def disagreements(cells: Sequence[Cell], comparisons: Sequence[Comparison]) -> list[Disagreement]:
    """Every ok interleaved comparison whose direction (faster / slower) the separate cells contradict."""
    out = []
    for comp in comparisons:
        if not comp.ok or comp.ratio is None:
            continue
        pair = _separate_cells(comp, cells)
        if pair is None:
            continue
        a, b = pair
        separate = a.median / b.median
        if (separate - 1.0) * (comp.ratio - 1.0) >= 0:
            continue  # same direction (or a tie on one side): no contradiction to resolve
        believe, why = _choose(a.stable and b.stable, comp)
        out.append(Disagreement(comp, separate, comp.ratio, believe, why))
    return out


def sentence(d: Disagreement, labels: dict[str, str]) -> str:
    """One sentence: what each figure says, which to believe and why."""
    c = d.comparison
    a, b = labels.get(c.a, c.a), labels.get(c.b, c.b)

    def says(x: float) -> str:
        return f"{x:.2f}× ({'faster' if x > 1 else 'slower'})"

    where = f"{c.runtime}" if not c.b_runtime else f"{c.runtime} and {c.b_runtime}"
    if c.b_runtime:
        a, b = f"{a} on {c.runtime}", f"{b} on {c.b_runtime}"
    head = (f"On {where}, {b} vs {a} disagree: separate cells say {says(d.separate)}, interleaved rounds "
            f"say {says(d.interleaved)}; ")
    if d.believe is None:
        return head + d.why + "."
    return head + f"believe the {d.believe} ({d.why}); the summary uses {d.figure:.2f}×."
