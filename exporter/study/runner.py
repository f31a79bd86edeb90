"""The study: each model's run as one unit, here or on a Ray cluster; one directory published at the end.

Every model's run directory and the study record are written into a staging directory beside ``out`` and
moved into place only when every model has finished, so an interrupted or failed study leaves no partial
directory behind. A model that fails parity or cannot be built is a row of the study (its status and reason),
not the end of the others; the command then exits non-zero, after publishing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from exporter.progress import SILENT, Reporter
from exporter.study.jobs import ModelJob, run_model, run_model_task, unpack
from exporter.study.records import STUDY_SCHEMA_VERSION, ModelRow, StudyRecord, write_study
from exporter.study.render import render_study
from runtimes.architectures import model_specs
from runtimes.errors import BadInputError, ParityError, ShrinkwrapError
from runtimes.executor.options import LOCAL, ExecutorOptions

ALL = "all"
CHECKPOINT_SUFFIX = ".pt"  # a weights directory holds <model>.pt per model


class StudyFailed(ShrinkwrapError):
    """At least one model of the study failed (parity, or its run); the study is still published."""


@dataclass(frozen=True)
class StudyOptions:
    models: tuple[str, ...]
    out: Path
    run: object  # exporter.pipeline.RunOptions, the template every model's run is made from
    executor: ExecutorOptions = LOCAL
    force: bool = False
    command: str = ""
    names: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        known = [m.name for m in model_specs()]
        asked = [m.strip() for m in self.models if m.strip()]
        if not asked:
            raise BadInputError("--models: give at least one model name, or 'all'")
        names = known if asked == [ALL] else asked
        unknown = [m for m in names if m not in known]
        if unknown:
            raise BadInputError(f"--models: unknown model(s) {', '.join(unknown)} (see `shrinkwrap models`)")
        object.__setattr__(self, "names", tuple(dict.fromkeys(names)))
        folder = self.weights_folder
        if folder is not None:
            missing = [f"{m}{CHECKPOINT_SUFFIX}" for m in self.names if not (folder / f"{m}{CHECKPOINT_SUFFIX}").is_file()]
            if missing:
                raise BadInputError(f"--weights {folder}: no checkpoint for {', '.join(missing)} (a weights directory "
                                    f"holds each model's as <model>{CHECKPOINT_SUFFIX})")
        out = Path(self.out)
        if out.exists() and any(out.iterdir()) and not self.force:
            raise BadInputError(f"{out} exists and is not empty: pass --force to replace it")


    @property
    def weights_folder(self) -> Path | None:
        """The directory of per-model checkpoints ``--weights`` names, or None (imagenet, random, one file)."""
        weights = Path(self.run.export.model.weights)
        return weights.resolve() if weights.is_dir() else None


def _job(opts: StudyOptions, model: str) -> ModelJob:
    run = opts.run
    e = run.export
    folder = opts.weights_folder
    weights = str(folder / f"{model}{CHECKPOINT_SUFFIX}") if folder is not None else e.model.weights
    # Absolute paths: a Ray worker's working directory is not this one.
    cal = dataclasses.replace(e.calibration, data=Path(e.calibration.data).resolve() if e.calibration.data else None)
    ev = dataclasses.replace(e.evaluation, data=Path(e.evaluation.data).resolve() if e.evaluation.data else None)
    export = dataclasses.replace(e, model=dataclasses.replace(e.model, model=model, weights=weights), calibration=cal,
                                 evaluation=ev, command=opts.command, force=True)
    # Inside a study job the benchmark runs on the job's own node, one cell after another.
    bench = dataclasses.replace(run.bench, executor=LOCAL)
    return ModelJob(model, dataclasses.replace(run, export=export, bench=bench))


def study(opts: StudyOptions, reporter: Reporter = SILENT) -> StudyRecord:
    """Run every model, publish ``opts.out`` (a run directory per model, ``study.json``, ``study.md``)."""
    out = Path(opts.out).resolve()
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = time.perf_counter()
    try:
        jobs = [_job(opts, m) for m in opts.names]
        rows = _run_distributed(jobs, staging, opts.executor, reporter) if opts.executor.distributed \
            else _run_here(jobs, staging, reporter)
        record = StudyRecord(STUDY_SCHEMA_VERSION, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                             opts.command, opts.executor.kind.value, rows, round(time.perf_counter() - started, 1))
        write_study(staging, record)
        render_study(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    failed = [r for r in record.models if r.status != "ok"]
    if failed:
        what = "; ".join(f"{r.model}: {r.status} ({r.reason})" for r in failed)
        exc = ParityError if all(r.status == "parity-failed" for r in failed) else StudyFailed
        raise exc(f"{len(failed)} of {len(record.models)} models failed ({out / 'study.md'} has them all): {what}")
    return record


def _run_here(jobs: list[ModelJob], staging: Path, reporter: Reporter) -> list[ModelRow]:
    rows = []
    with reporter.task("study") as update:
        for i, job in enumerate(jobs):
            update(i, len(jobs), job.model)
            rows.append(run_model(job, staging / job.model))
            reporter.say(f"{job.model}: {rows[-1].status} in {rows[-1].wall_s:.0f} s")
        update(len(jobs), len(jobs), "done")
    return rows


def _run_distributed(jobs: list[ModelJob], staging: Path, executor: ExecutorOptions,
                     reporter: Reporter) -> list[ModelRow]:
    from runtimes.executor.ray_cluster import RayCluster, TaskFailed

    cpus = executor.cpus_per_job()
    with RayCluster(executor) as cluster:
        cluster.require_targets((), cpus)
        refs = [cluster.submit(run_model_task, job, cpus=cpus) for job in jobs]
        with reporter.task("study") as update:
            count = [0]

            def done(i: int, value) -> None:
                count[0] += 1
                update(count[0], len(jobs), jobs[i].model)

            got = cluster.gather(refs, done)
    rows = []
    for job, value in zip(jobs, got):
        if isinstance(value, TaskFailed):
            rows.append(ModelRow(job.model, "error", value.reason))
            continue
        row, tar = value
        if tar:
            unpack(tar, staging / job.model)
        rows.append(dataclasses.replace(row, run_dir=job.model if tar else ""))
        reporter.say(f"{job.model}: {row.status} in {row.wall_s:.0f} s on {row.host}")
    return rows
