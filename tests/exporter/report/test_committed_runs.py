"""The runs committed under docs/ (their records, not their artifacts) still read by type and re-render."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exporter.report.render import render_report

DOCS = Path(__file__).resolve().parents[3] / "docs"
RUNS = sorted(p.parent for p in DOCS.glob("*/results.json"))


def test_there_are_committed_runs():
    assert {p.name for p in RUNS} >= {"cpu-resnet18", "cpu-resnet18-slim"}


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_a_committed_run_re_renders(run, tmp_path):
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    text = render_report(copy).read_text()
    assert text.startswith("# shrinkwrap benchmark:") and "## CPU" in text
    if (run / "manifest.json").is_file() and "slim" in run.name:
        assert "## Channel pruning" in text and "Speed-up vs dense" in text
