"""How PyTorch's OpenMP threads wait between parallel regions: spinning on a quiet machine, sleeping on a busy one.

libgomp's idle threads spin for a while after each parallel region, so that the next region starts at once.
On a quiet machine that is the fastest choice. When another process keeps a core busy, the thread that shares
its core spins instead of yielding, gets the core only in scheduler slices, and every fork/join waits for it:
OBS's column loop (thousands of small GEMMs) ran **7× slower** with one core busy than at one thread.
Measured on the 2-core AMX Xeon, ``obs_prune_matrix`` on a random 512×4608 weight with its 4608² Hessian:

| | quiet | one core busy (``taskset -c 1 yes``) |
|---|---:|---:|
| spinning (libgomp's default) | 1.19 s | 11.98 s |
| ``OMP_WAIT_POLICY=PASSIVE`` | 1.72 s | 1.68 s |
| one thread | 1.70 s | 1.73 s |

So a process that compresses (the CLI, the test suite) calls :func:`choose_wait_policy` before torch is
imported: when other processes use at least :data:`BUSY_CORES` cores, its threads sleep instead of spinning,
and so do the ONNX Runtime sessions it opens for parity and evaluation (:func:`passive`).
The user's own ``OMP_WAIT_POLICY`` always wins. Benchmark cells get the user's environment back
(:func:`cell_environment`): they measure what a deployment gets by default, and their stability check says
when the machine was busy.
"""

from __future__ import annotations

import os
import sys
import time

WAIT_POLICY = "OMP_WAIT_POLICY"
# Set beside WAIT_POLICY when shrinkwrap chose it (the value: the other processes' cores it measured).
CHOSEN = "SHRINKWRAP_OMP_WAIT_CHOSEN"
BUSY_CORES = 0.5
WINDOW_S = 0.25


def choose_wait_policy(window_s: float = WINDOW_S) -> str | None:
    """``PASSIVE`` when other processes keep at least :data:`BUSY_CORES` cores busy over ``window_s``, set in
    this process's environment for libgomp to read when torch loads; None when left alone (the user set it,
    torch is already loaded, the machine is quiet, or the load cannot be read off Linux)."""
    from runtimes.bench.stability import machine_sample, other_cores

    if WAIT_POLICY in os.environ or "torch" in sys.modules:
        return None
    before = machine_sample()
    time.sleep(window_s)
    cores = other_cores(before, machine_sample())
    if cores is None or cores < BUSY_CORES:
        return None
    os.environ[WAIT_POLICY] = "PASSIVE"
    os.environ[CHOSEN] = f"{cores:.2f}"
    return "PASSIVE"


def passive() -> bool:
    """Whether this process's OpenMP threads wait passively (whoever chose it): runtimes with thread pools of
    their own follow it in-process (ONNX Runtime's sessions then do not spin either)."""
    return os.environ.get(WAIT_POLICY, "").strip().upper() == "PASSIVE"


def chosen_note() -> str | None:
    """What :func:`choose_wait_policy` did in this process, for a run's notes; None when it did nothing."""
    cores = os.environ.get(CHOSEN)
    if cores is None:
        return None
    return (f"other processes used {cores} cores when this run started: its OpenMP threads waited passively "
            f"({WAIT_POLICY}=PASSIVE) during export and parity; benchmark cells ran with the default policy")


def cell_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the wait policy shrinkwrap chose (a user's own setting stays)."""
    if CHOSEN not in env:
        return env
    return {k: v for k, v in env.items() if k not in (WAIT_POLICY, CHOSEN)}
