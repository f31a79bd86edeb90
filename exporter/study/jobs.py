"""One model's part of a study: its ``run`` (export → parity → bench → report) and the row it contributes.

The same function runs here and in a Ray task. On a node the run directory is written to a private
temporary directory and comes back as a tar archive (bytes through the object store), so the study
needs no filesystem shared with its workers.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import socket
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from exporter.study.records import BestCell, ModelRow
from runtimes.bench.results import Cell
from runtimes.errors import ParityError, ShrinkwrapError
from runtimes.manifest import Format, Precision
from runtimes.protocol import CPU


@dataclass(frozen=True)
class ModelJob:
    model: str
    run: object  # exporter.pipeline.RunOptions for this model; its export.out is set where it runs


def run_model(job: ModelJob, run_dir: Path) -> ModelRow:
    """Run the model's pipeline into ``run_dir``; a parity failure or a library error is the row's status."""
    from exporter.pipeline import run

    started = time.perf_counter()
    opts = job.run
    opts = dataclasses.replace(opts, export=dataclasses.replace(opts.export, out=Path(run_dir)))
    host = socket.gethostname()
    try:
        run(opts)
    except ParityError as exc:
        return dataclasses.replace(summarize(run_dir), model=job.model, status="parity-failed",
                                   reason=_line(exc), wall_s=time.perf_counter() - started, host=host)
    except ShrinkwrapError as exc:
        return ModelRow(job.model, "error", _line(exc), wall_s=time.perf_counter() - started, host=host)
    return dataclasses.replace(summarize(run_dir), model=job.model, wall_s=time.perf_counter() - started, host=host)


def run_model_task(job: ModelJob) -> tuple[ModelRow, bytes]:
    """A Ray task: the model's run in a private directory on this node, returned as (row, tar of the run)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"shrinkwrap-study-{job.model}-"))
    try:
        row = run_model(job, tmp / "run")
        return row, (pack(tmp / "run") if (tmp / "run").is_dir() else b"")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pack(run_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(Path(run_dir).rglob("*")):
            tar.add(p, arcname=str(p.relative_to(run_dir)), recursive=False)
    return buf.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(dest, filter="data")  # no absolute paths, no links out of dest


# ---------------------------------------------------------------- the row, from the run's records

def summarize(run_dir: Path) -> ModelRow:
    """The row's figures from the run's own records: the report's CPU batch-1 pick and the speed ratios."""
    from exporter.report.context import dense_of, load_context
    from exporter.report.recommend import recommend

    ctx = load_context(run_dir)
    picks = [r for r in recommend(ctx) if r.device == CPU and r.pick is not None]
    picks.sort(key=lambda r: r.batch or 0)
    best = None
    if picks:
        p = picks[0].pick
        best = BestCell(p.variant, p.format, p.runtime, float(p.median), p.top1)
    cells = [c for c in ctx.cells if c.device == CPU and c.ok and not c.excluded and c.format != Format.EAGER]
    batch = min((c.batch for c in cells), default=1)
    cells = [c for c in cells if c.batch == batch]
    int8 = fastest(cells, lambda c: c.precision == Precision.INT8.value)
    fp32 = fastest(cells, lambda c: c.precision == Precision.FP32.value and dense_of(c.variant) is None)
    ratios = {}
    for variant in dict.fromkeys(c.variant for c in cells):
        dense = dense_of(variant)
        slim, base = fastest(cells, lambda c: c.variant == variant), fastest(cells, lambda c: c.variant == dense)
        if dense and slim is not None and base is not None:
            ratios[f"{variant}/{dense}"] = round(slim / base, 3)
    return ModelRow(model=ctx.results.model, status="ok", run_dir=str(Path(run_dir).name), best=best,
                    int8_over_fp32=round(int8 / fp32, 3) if int8 is not None and fp32 else None,
                    slim_over_dense=ratios)


def fastest(cells: Sequence[Cell], keep) -> float | None:
    times = [c.median for c in cells if keep(c) and c.median is not None]
    return min(times) if times else None


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
