"""The benchmark's options: one frozen record, validated once, holding every default."""

from __future__ import annotations

import math
from dataclasses import dataclass

from runtimes import registry
from runtimes.errors import BadInputError
from runtimes.executor.options import LOCAL, ExecutorOptions
from runtimes.protocol import check_threads

# Per cell; only pathological configurations (FP16 in PyTorch on CPU) reach these.
DEFAULT_MAX_TIME_S = 30.0
EVAL_BUDGET_S = 20.0
DEFAULT_RETRY_BUDGET_S = 120.0


@dataclass(frozen=True)
class BenchOptions:
    runtimes: tuple[str, ...] | None = None  # None: every registered runtime
    batches: tuple[int, ...] = (1, 8)
    threads: int | None = None  # None: each runtime's default
    min_time_s: float = 1.0  # timed runs go on until both this ...
    min_iters: int = 10  # ... and this are reached
    warmup: int = 3
    attempts: int = 3  # timed windows per cell at most, until one is stable (runtimes.bench.stability)
    remeasure: bool = True  # a cell still unstable after its windows gets one more fresh process at the end
    max_time_s: float = DEFAULT_MAX_TIME_S  # per-cell cap on the timing loop
    # What the whole sweep may spend timing unstable cells again (windows after a cell's first, fresh-process
    # re-measures): on a busy machine every cell is unstable, and retrying them all doubled a run's bench. Once
    # spent, cells get one window and no re-measure, and the results say how many (runtimes.bench.runner).
    retry_budget_s: float = DEFAULT_RETRY_BUDGET_S
    timeout_s: float = 300.0  # per-cell process timeout
    # Start each cell's process as a fork of one server that imported what the runtimes declare in
    # ``preload`` (runtimes.bench.launch), not as a fresh interpreter: the same isolation, 2-4 s less each.
    fork_cells: bool = True
    variants: tuple[str, ...] | None = None  # None: every variant of the run
    # Variant pairs (a, b) to time interleaved in one process, per runtime that runs both,
    # at the smallest batch: the speed-up of b over a that noise cannot bias (runtimes.bench.compare).
    compare: tuple[tuple[str, str], ...] = ()
    # Variants whose artifact is also timed interleaved in two runtimes of one device that run its format
    # (the format's reference runtime against each other one: ort-cpu against openvino on the .onnx).
    compare_across: tuple[str, ...] = ()
    # The accuracy budget (top-1 points below the FP32 baseline) of the report's
    # recommendation and of the budgeted `auto` variant; recorded with the results.
    max_accuracy_drop: float = 1.0
    # Where the cells run: here, one after another (the default), or as Ray tasks (runtimes.bench.fanout).
    executor: ExecutorOptions = LOCAL

    def __post_init__(self) -> None:
        if self.runtimes is not None:
            names = tuple(dict.fromkeys(registry.parse_runtime(r) for r in self.runtimes))
            if not names:
                raise BadInputError("no runtimes given")
            object.__setattr__(self, "runtimes", names)
        batches = tuple(self.batches)
        if not batches or any(not isinstance(b, int) or isinstance(b, bool) or b < 1 for b in batches):
            raise BadInputError(f"batch sizes must be integers >= 1, got {list(batches)}")
        object.__setattr__(self, "batches", tuple(dict.fromkeys(batches)))
        check_threads(self.threads)
        if self.min_time_s < 0 or self.min_iters < 1 or self.warmup < 0:
            raise BadInputError("min time must be >= 0, min iterations >= 1 and warm-up >= 0")
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise BadInputError(f"attempts must be an integer >= 1, got {self.attempts!r}")
        if not (self.timeout_s > 0 and self.max_time_s > 0):
            raise BadInputError("timeout and max time must be > 0 seconds")
        if not (math.isfinite(self.retry_budget_s) and self.retry_budget_s >= 0):
            raise BadInputError(f"--retry-budget must be a number of seconds >= 0, got {self.retry_budget_s}")
        if not (math.isfinite(self.max_accuracy_drop) and self.max_accuracy_drop >= 0):
            raise BadInputError(f"--max-accuracy-drop must be a number >= 0, got {self.max_accuracy_drop}")
        if self.variants is not None:
            object.__setattr__(self, "variants", tuple(dict.fromkeys(self.variants)))

    def runtime_names(self) -> list[str]:
        return list(self.runtimes) if self.runtimes is not None else registry.runtime_names()
