"""``study.md``, rendered from ``study.json`` alone (nothing is re-run)."""

from __future__ import annotations

from pathlib import Path

from runtimes.records import atomic_write_bytes
from exporter.study.records import STUDY_REPORT_NAME, StudyRecord, read_study


def _num(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def study_markdown(record: StudyRecord) -> str:
    lines = ["# Study", "",
             f"{len(record.models)} models, executor `{record.executor}`, {record.wall_s:.0f} s of wall time. "
             f"Command: `{record.command}`.", "",
             "Best is what each model's report recommends on the CPU at batch 1 (its Recommendation section: the "
             "fastest artifact × runtime within the accuracy budget). The ratios are latencies at batch 1 on the "
             "CPU, each within one model's own run on one machine: INT8/FP32 is the fastest deployable INT8 "
             "cell over the fastest deployable FP32 cell (below 1: INT8 is faster); slim/dense is each slim "
             "variant's fastest cell over its dense variant's.", "",
             "| model | status | best artifact × runtime | latency (ms) | top-1 | INT8/FP32 | slim/dense | "
             "wall (s) | host |",
             "|---|---|---|---:|---:|---:|---|---:|---|"]
    for r in record.models:
        best = f"`{r.best.variant}.{r.best.format}` in {r.best.runtime}" if r.best else "—"
        slim = ", ".join(f"{k} {v:.2f}" for k, v in r.slim_over_dense.items()) or "—"
        status = r.status if not r.reason else f"{r.status}: {r.reason}"
        model = f"[{r.model}]({r.run_dir}/report.md)" if r.run_dir else r.model
        lines.append(f"| {model} | {status} | {best} | {_num(r.best.median_ms if r.best else None, '.2f')} | "
                     f"{_num(r.best.top1 if r.best else None, '.1f')} | {_num(r.int8_over_fp32, '.2f')} | {slim} | "
                     f"{r.wall_s:.0f} | {r.host or '—'} |")
    return "\n".join(lines) + "\n"


def render_study(study_dir: Path) -> Path:
    path = Path(study_dir) / STUDY_REPORT_NAME
    atomic_write_bytes(path, study_markdown(read_study(study_dir)).encode())
    return path
