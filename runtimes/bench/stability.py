"""Is a timing trustworthy? Pure functions over a cell's own samples, plus what else the machine did meanwhile.

A measurement is *unstable* when its own samples say so: the slow tail is far
from the median (``p90 / median``), the median is far above the fastest run
(``median / min``, the noise floor), or the second half of the timed window
runs at another speed than the first (drift); or when other processes used
the CPUs while it ran (read from ``/proc/stat`` around the timed window, so
a neighbour's load is seen even when it only slows every run evenly).

The thresholds come from measurements: on a quiet 2-core VM (README), 41 of 42
ok cells of ``make run`` had ``p90 / median`` <= 1.08 and ``median / min`` <=
1.15; the busy bursts the project saw made cells 5 to 100 times slower.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

MAX_SPREAD = 1.25  # p90 / median
MAX_FLOOR = 1.25  # median / min
MAX_DRIFT = 1.20  # median of the slower half / median of the faster half
MAX_OTHER_CORES = 0.25  # CPU used by other processes during the timed window, in cores
MIN_SAMPLES_FOR_DRIFT = 8


@dataclass(frozen=True)
class MachineSample:
    """A point-in-time reading of the CPU counters (Linux ``/proc``); None fields elsewhere."""

    wall: float  # time.monotonic()
    busy_ticks: int | None  # non-idle ticks of all CPUs (steal included: a noisy neighbour's VM)
    own_ticks: int | None  # this process and its waited-for children
    loadavg: float | None  # 1-minute load average


@dataclass(frozen=True)
class Stability:
    """How trustworthy a cell's timing is, with the figures that decided it."""

    stable: bool
    spread: float  # p90 / median
    floor: float  # median / min
    drift: float  # slower half / faster half (1.0 when too few samples)
    other_cores: float | None  # other processes' CPU use during the timed window, in cores
    loadavg_before: float | None = None
    loadavg_after: float | None = None
    attempts: int = 1  # timed windows measured; the best one is reported
    reasons: list[str] = field(default_factory=list)  # why it is unstable ([] when stable)


def _ticks_per_s() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100


def machine_sample() -> MachineSample:
    busy = own = None
    try:
        with open("/proc/stat") as fh:
            cpu = fh.readline().split()
        # user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait
        vals = [int(v) for v in cpu[1:9]]
        busy = vals[0] + vals[1] + vals[2] + vals[5] + vals[6] + vals[7]
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        # utime stime cutime cstime are fields 14-17 of /proc/<pid>/stat (11-14 after the name)
        own = sum(int(v) for v in fields[11:15])
    except (OSError, ValueError, IndexError):
        busy = own = None
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = None
    return MachineSample(time.monotonic(), busy, own, load)


def other_cores(before: MachineSample, after: MachineSample) -> float | None:
    """CPU used by every other process between the two samples, in cores (None off Linux)."""
    if None in (before.busy_ticks, after.busy_ticks, before.own_ticks, after.own_ticks):
        return None
    wall = after.wall - before.wall
    if wall <= 0:
        return None
    other = (after.busy_ticks - before.busy_ticks) - (after.own_ticks - before.own_ticks)
    return max(0.0, other / _ticks_per_s() / wall)


def drift(times_ms: Sequence[float]) -> float:
    """Median of the slower half of the timed window over that of the faster half (>= 1)."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size < MIN_SAMPLES_FOR_DRIFT:
        return 1.0
    half = t.size // 2
    a, b = float(np.median(t[:half])), float(np.median(t[half:]))
    lo, hi = min(a, b), max(a, b)
    return hi / lo if lo > 0 else 1.0


def assess(times_ms: Sequence[float], cores: float | None, attempts: int = 1,
           before: MachineSample | None = None, after: MachineSample | None = None) -> Stability:
    """The stability verdict of one timed window."""
    t = np.asarray(times_ms, dtype=np.float64)
    med = float(np.median(t))
    spread = float(np.percentile(t, 90)) / med if med > 0 else 1.0
    floor = med / float(t.min()) if t.min() > 0 else 1.0
    d = drift(t)
    reasons = []
    if spread > MAX_SPREAD:
        reasons.append(f"p90/median {spread:.2f} > {MAX_SPREAD}")
    if floor > MAX_FLOOR:
        reasons.append(f"median/min {floor:.2f} > {MAX_FLOOR}")
    if d > MAX_DRIFT:
        reasons.append(f"drift {d:.2f}x between the halves of the timed window > {MAX_DRIFT}")
    if cores is not None and cores > MAX_OTHER_CORES:
        reasons.append(f"other processes used {cores:.2f} cores while it ran > {MAX_OTHER_CORES}")
    return Stability(not reasons, spread, floor, d, cores,
                     before.loadavg if before else None, after.loadavg if after else None, attempts, reasons)


def better(a: Stability, a_median: float, b: Stability, b_median: float) -> bool:
    """Whether attempt ``a`` is the one to keep over ``b``: a stable one, else the faster one.

    Noise on a CPU only ever adds time, so among unstable windows the fastest median is
    the least disturbed.
    """
    if a.stable != b.stable:
        return a.stable
    return a_median < b_median


NOISY = "noisy"  # the flag's first word


def noisy_flag(s: Stability) -> str:
    return (f"{NOISY}: still unstable after {s.attempts} timed window{'s' if s.attempts != 1 else ''} "
            f"({'; '.join(s.reasons)}); its figures are uncertain")
