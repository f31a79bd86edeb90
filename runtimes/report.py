"""``report.md`` and its figures, rendered from ``results.json`` alone.

``manifest.json`` and ``parity.json`` are read when present (per-layer
sparsity, weight histograms, parity note); nothing is ever re-run. The report
is a list of section functions ``(ReportContext) -> str``; later stages add
theirs either by passing ``extra_sections`` or by registering a renderer for
an optional JSON file in the run directory (``sweep.json``,
``sensitivity.json``) with :func:`register_json_section`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from runtimes import figures
from runtimes.artifact import MANIFEST_NAME, Manifest, atomic_write_bytes, read_manifest
from runtimes.base import RuntimeName
from runtimes.cell import RUNTIME_FORMAT
from runtimes.errors import ArtifactError
from runtimes.results import Cell, Results, Status, read_results

REPORT_NAME = "report.md"
FIGURES_DIR = "figures"
DEFAULT_MAX_ACCURACY_DROP = 1.0  # top-1 points below the FP32 eager reference
DEVICES = ("cpu", "cuda")
# The seed report's tables; variants not named here go to "Other".
TABLE_GROUPS = (
    ("FP32", ("fp32",)),
    ("INT8 + pruning", ("int8", "int8-dense", "ort-quantize-static")),
    ("FP16 + pruning", ("fp16",)),
    ("Mixed + pruning", ("mixed",)),
    ("Pruned only", ("fp32-pruned",)),
)
FORMAT_ORDER = ("eager", "torchscript", "onnx")


@dataclass
class ReportContext:
    run_dir: Path
    results: Results
    manifest: Manifest | None
    parity: Any | None
    figures: dict[str, Path] = field(default_factory=dict)  # name -> path relative to run_dir
    notes: list[str] = field(default_factory=list)  # e.g. figures that could not be drawn

    @property
    def figures_dir(self) -> Path:
        return self.run_dir / FIGURES_DIR


Section = Callable[[ReportContext], str]
JsonSection = Callable[[ReportContext, Any], str]

_JSON_SECTIONS: dict[str, JsonSection] = {}
OPTIONAL_JSON = ("sweep.json", "sensitivity.json")


def register_json_section(filename: str, renderer: JsonSection) -> None:
    """Render ``<run>/<filename>`` (when present) with ``renderer`` at the end of the report."""
    _JSON_SECTIONS[filename] = renderer


def render_report(run_dir: Path, extra_sections: Sequence[Section] = ()) -> Path:
    from runtimes import analysis_sections

    analysis_sections.register()
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    manifest = read_manifest(run_dir) if (run_dir / MANIFEST_NAME).is_file() else None
    ctx = ReportContext(run_dir, results, manifest, _read_optional_json(run_dir / "parity.json"))
    draw_figures(ctx)
    sections: list[Section] = [header, method, *(_device(d) for d in DEVICES), speedups,
                               recommendation, figures_section, parity_section, *extra_sections,
                               json_sections]
    text = "\n\n".join(s for s in (sec(ctx).strip() for sec in sections) if s) + "\n"
    path = run_dir / REPORT_NAME
    atomic_write_bytes(path, text.encode())
    return path


def _read_optional_json(path: Path) -> Any | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc


# ---------------------------------------------------------------- sections

def header(ctx: ReportContext) -> str:
    r, env = ctx.results, ctx.results.environment
    w = r.weights
    weights = w.label
    if not w.trained:
        weights = f"**⚠ UNTRAINED (random weights): accuracy is meaningless.** {w.label}"
    threads = env.threads if env.threads is not None else f"runtime default ({env.cores_logical} logical cores)"
    gpu = "none" if env.gpu_name == "none" else f"{env.gpu_name} (driver {env.gpu_driver})"
    versions = ", ".join(f"{k} {v}" for k, v in env.versions.items())
    lines = [
        f"# shrinkwrap benchmark: {r.model}", "",
        f"- **Weights:** {weights}",
        f"- **Command:** `{r.command or 'n/a'}`",
        f"- **Created:** {r.created}", "",
        "## Environment", "",
        f"- **CPU:** {env.cpu_model}; {env.cores_logical} logical / "
        f"{env.cores_physical if env.cores_physical is not None else '?'} physical cores",
        f"- **ISA flags:** {', '.join(env.cpu_flags) or 'none of the relevant ones'}",
        f"- **Threads:** {threads}",
        f"- **GPU:** {gpu}; CUDA (torch build) {env.cuda_version}",
        f"- **Versions:** {versions}",
        f"- **Platform:** {env.platform}",
    ]
    return "\n".join(lines)


def method(ctx: ReportContext) -> str:
    s = ctx.results.settings
    lines = [
        "## Method", "",
        "- Every cell (artifact × runtime × batch) runs in its own fresh subprocess, under a "
        f"timeout of {s.get('timeout_s', '?')} s.",
        f"- {s.get('warmup', '?')} untimed warm-up runs, then timed runs until both "
        f"{s.get('min_time_s', '?')} s and {s.get('min_iters', '?')} iterations are reached "
        f"(capped at {s.get('max_time_s', '?')} s per cell; the iteration count is recorded).",
        "- Input: a seeded random float32 batch, identical for every runtime; latency is per batch.",
        f"- {s.get('io_binding', 'ort-cuda is timed with IO binding (host↔device copies excluded).')}",
        "- libtorch-cpp is timed inside the C++ process; its start-up is not measured.",
    ]
    lines += [f"- {n}" for n in ctx.results.notes]
    return "\n".join(lines)


# ---------------------------------------------------------------- per-device tables

def cell_lookup(cells: Sequence[Cell]) -> dict[tuple[str, str, str], Cell]:
    """(variant, format, runtime) -> cell; for cells of one device and batch."""
    return {(c.variant, c.format, c.runtime): c for c in cells}


def _not_applicable(c: Cell) -> bool:
    """A skip that only says the runtime runs another format: shown as "—", not as a reason."""
    return c.status is Status.SKIPPED and _FORMAT_OF.get(c.runtime, c.format) != c.format


_FORMAT_OF = {rt.value: fmt for rt, fmt in RUNTIME_FORMAT.items()}


class _Footnotes:
    """Numbered notes under a table; identical texts share one number."""

    def __init__(self) -> None:
        self.items: dict[str, int] = {}

    def mark(self, text: str) -> str:
        return f"[{self.items.setdefault(text, len(self.items) + 1)}]"

    def render(self) -> list[str]:
        return [f"{i}. {text}" for text, i in self.items.items()]


def _ms(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _pct_range(values: list[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if hi - lo < 0.005 else f"{lo:.2f}–{hi:.2f}"


def _latency_text(c: Cell | None, notes: _Footnotes) -> str:
    if c is None:
        return ""
    if _not_applicable(c):
        return "—"
    if c.status is Status.SKIPPED:
        return f"skipped {notes.mark(f'skipped: {c.reason}')}"
    if c.status is Status.ERROR:
        return f"error {notes.mark(f'error ({c.runtime}, batch {c.batch}): {c.reason}')}"
    text = f"{_ms(c.latency_ms.median)} <sub>p90 {_ms(c.latency_ms.p90)}</sub>"
    if c.flags:
        text = "⚠ " + text + " " + "".join(notes.mark(f"⚠ {f}") for f in c.flags)
    return text


def device_section(cells: Sequence[Cell], device: str) -> str:
    dev = [c for c in cells if c.device == device]
    if not dev:
        return ""
    title = f"## {device.upper()}"
    if all(c.status is Status.SKIPPED for c in dev):
        real = [c for c in dev if not _not_applicable(c)]
        reasons = dict.fromkeys(c.reason for c in real)
        return "\n".join([title, "", f"All {len(real)} {device.upper()} cells were skipped:", "",
                          *(f"- {r}" for r in reasons)])
    runtimes = [rt.value for rt in RuntimeName if any(c.runtime == rt.value for c in dev)]
    with_acc = any(c.top1 is not None for c in dev)
    grouped = {v for _, vs in TABLE_GROUPS for v in vs}
    other = tuple(dict.fromkeys(c.variant for c in dev if c.variant not in grouped))
    parts = [title, "Median latency per batch in ms (p90 in small text); — = the runtime does "
                    "not run this format; ⚠ = flagged, see the notes."]
    for name, variants in (*TABLE_GROUPS, ("Other", other)):
        table = _table(name, [c for c in dev if c.variant in variants], variants, runtimes, with_acc)
        if table:
            parts.append(table)
    return "\n\n".join(parts)


def _table(title: str, cells: list[Cell], variants: Sequence[str], runtimes: list[str],
           with_acc: bool) -> str:
    if not cells:
        return ""
    notes = _Footnotes()
    head = ["Variant", "Format", "Batch", *(f"{r}" for r in runtimes), "img/s (best)", "Size MB",
            "zstd MB", "Sparsity", *(("Top-1 %", "Top-5 %") if with_acc else ())]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    formats = [*FORMAT_ORDER, *sorted({c.format for c in cells} - set(FORMAT_ORDER))]
    for v in variants:
        for f in formats:
            for b in sorted({c.batch for c in cells}):
                row = [c for c in cells if (c.variant, c.format, c.batch) == (v, f, b)]
                if not row or all(_not_applicable(c) for c in row):
                    continue
                by_rt = {c.runtime: c for c in row}
                ok = [c for c in row if c.ok]
                size = next((c.size for c in row if c.size is not None), None)
                vals = [v, f, str(b), *(_latency_text(by_rt.get(r), notes) for r in runtimes),
                        f"{max(c.throughput for c in ok):.1f}" if ok else "",
                        f"{size.bytes / 1e6:.2f}" if size else "",
                        f"{size.compressed_bytes / 1e6:.2f}" if size else "",
                        f"{size.sparsity * 100:.1f}%" if size else ""]
                if with_acc:
                    vals += [_pct_range([c.top1 for c in ok if c.top1 is not None]),
                             _pct_range([c.top5 for c in ok if c.top5 is not None])]
                lines.append("| " + " | ".join(vals) + " |")
    if notes.items:
        lines += ["", *notes.render()]
    return "\n".join(lines)


def _device(device: str) -> Section:
    def section(ctx: ReportContext) -> str:
        return device_section(ctx.results.cells, device)

    section.__name__ = f"device_{device}"
    return section


def speedups(ctx: ReportContext) -> str:
    cells = [c for c in ctx.results.cells if c.device == "cpu" and c.batch == 1 and c.ok]
    look = cell_lookup(cells)
    base = look.get(("fp32", "eager", RuntimeName.EAGER.value))
    int8 = [c for c in cells if c.variant == "int8"]
    lines = ["## Speed-up summary (CPU, batch 1)", ""]
    if base is None or not int8:
        lines.append("Not available: needs ok CPU cells for FP32 eager and INT8 at batch 1.")
        return "\n".join(lines)
    best = min(int8, key=lambda c: c.median)
    lines.append(f"- Best INT8: `{best.format}` on {best.runtime}, {best.median:.2f} ms vs FP32 eager "
                 f"{base.median:.2f} ms: **{base.median / best.median:.2f}×**")
    rows = []
    for rt in RuntimeName:
        for c in int8:
            ref = look.get(("fp32", c.format, rt.value))
            if c.runtime == rt.value and ref is not None:
                rows.append(f"| {rt.value} | {c.format} | {ref.median:.2f} | {c.median:.2f} | "
                            f"{ref.median / c.median:.2f}× |")
    if rows:
        lines += ["", "Same runtime, INT8 vs FP32:", "",
                  "| Runtime | Format | FP32 ms | INT8 ms | Speed-up |", "|---|---|---:|---:|---:|", *rows]
    peer = [c for c in cells if c.variant == "ort-quantize-static"]
    if peer:
        p = min(peer, key=lambda c: c.median)
        lines += ["", f"- INT8 vs ort-quantize-static (best of each): {best.median:.2f} ms vs "
                      f"{p.median:.2f} ms on {p.runtime}: **{p.median / best.median:.2f}×**"]
        same = look.get(("int8", "onnx", RuntimeName.ORT_CPU.value))
        peer_ort = look.get(("ort-quantize-static", "onnx", RuntimeName.ORT_CPU.value))
        if same is not None and peer_ort is not None:
            lines.append(f"- Both on ort-cpu: {same.median:.2f} ms vs {peer_ort.median:.2f} ms: "
                         f"**{peer_ort.median / same.median:.2f}×**")
    else:
        lines += ["", "- INT8 vs ort-quantize-static: no ok ort-quantize-static cell."]
    return "\n".join(lines)


def recommendation(ctx: ReportContext) -> str:
    cells = ctx.results.cells
    drop = float(ctx.results.settings.get("max_accuracy_drop", DEFAULT_MAX_ACCURACY_DROP))
    lines = ["## Recommendation", ""]
    for device in DEVICES:
        dev = [c for c in cells if c.device == device]
        cands = [c for c in dev if c.ok and not c.flags and c.format != "eager"]
        if not dev:
            continue
        if not cands:
            lines.append(f"- **{device.upper()}:** no ok, unflagged artifact cell.")
            continue
        base = _fp32_eager_top1(cells, device)
        for batch in sorted({c.batch for c in cands}):
            pool = [c for c in cands if c.batch == batch]
            rule = "fastest ok, unflagged artifact"
            if base is not None:
                pool = [c for c in pool if c.top1 is not None and c.top1 >= base - drop]
                rule = f"fastest within {drop:g} top-1 points of FP32 eager ({base:.2f}%)"
            if not pool:
                lines.append(f"- **{device.upper()}, batch {batch}:** nothing meets: {rule}.")
                continue
            c = min(pool, key=lambda c: c.median)
            extra = f"; top-1 {c.top1:.2f}%" if c.top1 is not None else ""
            size = f", zstd {c.size.compressed_bytes / 1e6:.2f} MB" if c.size else ""
            lines.append(f"- **{device.upper()}, batch {batch}:** `{c.variant}` as {c.format} on "
                         f"{c.runtime}: {c.median:.2f} ms{size}{extra} ({rule})")
    if not ctx.results.weights.trained and any(c.top1 is not None for c in cells):
        lines.append("- Weights are UNTRAINED: the accuracy criterion above is not meaningful.")
    return "\n".join(lines)


def _fp32_eager_top1(cells: list[Cell], device: str) -> float | None:
    order = [RuntimeName.EAGER_CUDA.value, RuntimeName.EAGER.value] if device == "cuda" else [RuntimeName.EAGER.value]
    for rt in order:
        for c in cells:
            if c.variant == "fp32" and c.runtime == rt and c.ok and c.top1 is not None:
                return c.top1
    return None


def draw_figures(ctx: ReportContext) -> None:
    fdir = ctx.figures_dir
    cells = ctx.results.cells
    jobs: list[tuple[str, Callable[[Path], Path | None]]] = []
    for device in DEVICES:
        batches = sorted({c.batch for c in cells if c.device == device and c.ok})
        if batches:
            b = batches[0]
            jobs.append((f"latency_vs_size_{device}", lambda p, d=device, b=b: figures.latency_vs_size(cells, d, b, p)))
            jobs.append((f"latency_vs_top1_{device}", lambda p, d=device, b=b: figures.latency_vs_accuracy(cells, d, b, p)))
    if ctx.manifest is not None:
        m = ctx.manifest
        jobs.append(("sparsity_per_layer", lambda p: figures.sparsity_per_layer(m, p)))
        jobs.append(("classifier_weights", lambda p: figures.classifier_weights(ctx.run_dir, m, p)))
    for name, draw in jobs:
        try:
            out = draw(fdir / f"{name}.png")
        except ArtifactError as exc:
            ctx.notes.append(f"figure {name} not drawn: {exc}")
            continue
        if out is not None:
            ctx.figures[name] = out.relative_to(ctx.run_dir)


_FIGURE_TITLES = {
    "latency_vs_size": "Latency vs compressed size",
    "latency_vs_top1": "Latency vs top-1",
    "sparsity_per_layer": "Sparsity per layer",
    "classifier_weights": "Classifier weights before/after compression",
}


def figures_section(ctx: ReportContext) -> str:
    if not ctx.figures and not ctx.notes:
        return ""
    lines = ["## Figures", ""]
    for name, rel in ctx.figures.items():
        title = next((t for k, t in _FIGURE_TITLES.items() if name.startswith(k)), name)
        suffix = name.rsplit("_", 1)[-1].upper() if name.endswith(("_cpu", "_cuda")) else ""
        lines += [f"### {title}{f' ({suffix})' if suffix else ''}", "", f"![{name}]({rel.as_posix()})", ""]
    lines += [f"- {n}" for n in ctx.notes]
    return "\n".join(lines)


def parity_section(ctx: ReportContext) -> str:
    """The parity records (artifact vs its eager reference), from parity.json."""
    if not isinstance(ctx.parity, dict) or not ctx.parity.get("results"):
        return ""
    rows = ctx.parity["results"]
    first = rows[0]
    lines = ["## Parity", "",
             f"Each artifact against the eager model it was exported from, on {first['n_inputs']} "
             f"{first['input_source']} inputs; overall: **{'pass' if ctx.parity.get('passed') else 'FAIL'}**. "
             "Tolerances per precision are in the README.", "",
             "| artifact | runtime | vs | max abs | cosine | SQNR dB | top-1 agr. | top-5 ovl. | result |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        sq = r["sqnr_db"]
        sq_text = "identical" if isinstance(sq, float) and sq == float("inf") else f"{sq:.1f}"
        result = "pass" if r["passed"] else "FAIL: " + "; ".join(r["violations"])
        lines.append(f"| {r['path']} | {r['runtime']} | {r['reference']} | {r['max_abs_error']:.3g} | "
                     f"{r['cosine']:.6f} | {sq_text} | {r['top1_agreement']:.3f} | {r['top5_overlap']:.3f} | "
                     f"{result} |")
    return "\n".join(lines)


def json_sections(ctx: ReportContext) -> str:
    parts = []
    for name in dict.fromkeys([*OPTIONAL_JSON, *_JSON_SECTIONS]):
        data = _read_optional_json(ctx.run_dir / name)
        if data is None:
            continue
        renderer = _JSON_SECTIONS.get(name)
        parts.append(renderer(ctx, data) if renderer else
                     f"## {name}\n\n`{name}` is present; no report section is registered for it.")
    return "\n\n".join(parts)

