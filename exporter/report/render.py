"""``report.md`` and its figures, rendered from the run directory's typed records alone.

``results.json`` is required; ``manifest.json``, ``parity.json``, ``sweep.json``
and ``sensitivity.json`` are read when present. Nothing is ever re-run. The
report is the registered sections (:mod:`exporter.report.sections`) in order,
plus any ``extra_sections`` a caller passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from exporter.report import (analyses, compression, deployment_targets, figures, int8_slower, parity, peers, pt2,  # noqa: F401
                             summary, tables, target)  # (sections)
from exporter.report.context import load_context
from exporter.report.sections import EXTRA_ORDER, RegisteredSection, Section, registered_sections
from runtimes.manifest import RUN_FILES
from runtimes.records import atomic_write_bytes

REPORT_NAME = RUN_FILES.report


def render_report(run_dir: Path, extra_sections: Sequence[Section] = ()) -> Path:
    """Write ``report.md`` (and its figures) into ``run_dir``; return its path."""
    run_dir = Path(run_dir)
    ctx = load_context(run_dir)
    figures.draw_figures(ctx)
    extras = [RegisteredSection(f"extra-{i}", EXTRA_ORDER, fn) for i, fn in enumerate(extra_sections)]
    ordered = sorted([*registered_sections(), *extras], key=lambda s: s.order)
    text = "\n\n".join(s for s in (sec.render(ctx).strip() for sec in ordered) if s) + "\n"
    path = run_dir / REPORT_NAME
    atomic_write_bytes(path, text.encode())
    return path
