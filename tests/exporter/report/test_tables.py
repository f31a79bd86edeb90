"""The report's method lines: the retry budget is always stated, and said when it ran out."""

from __future__ import annotations

import dataclasses

from runtimes.bench.results import BenchSettings, read_results, write_results
from runtimes.bench.stability import Stability
from tests.support.runs import base_cells, write_run


def _noise_lines(tmp_path, **settings) -> list[str]:
    from exporter.report.context import load_context
    from exporter.report.tables import noise_lines

    judged = Stability(stable=False, spread=2.0, floor=1.1, drift=1.0, other_cores=1.0, attempts=1,
                       reasons=["other processes used 1.00 cores while it ran > 0.25"])
    cells = [dataclasses.replace(c, stability=judged) if c.ok else c for c in base_cells()]
    run = write_run(tmp_path / "run", cells=cells)
    res = read_results(run)
    write_results(run, dataclasses.replace(res, settings=BenchSettings(**{**dataclasses.asdict(res.settings),
                                                                           **settings})))
    return noise_lines(load_context(run))


def test_the_budget_is_stated_and_its_exhaustion_said(tmp_path):
    spent = _noise_lines(tmp_path / "a", retry_budget_s=120.0, retry_spent_s=131.0, one_window_cells=7,
                         not_remeasured=3)
    assert "- Retry budget: 120 s for timing unstable cells again, 131 s spent." in spent
    assert any(ln.startswith("- **The retry budget ran out:** 7 later cells were timed in one window only and 3 "
                             "noisy cells were not timed again") for ln in spent), spent
    within = _noise_lines(tmp_path / "b", retry_budget_s=120.0, retry_spent_s=10.0, one_window_cells=0,
                          not_remeasured=0)
    assert "- Retry budget: 120 s for timing unstable cells again, 10 s spent." in within
    assert not any("ran out" in ln for ln in within)
    older = _noise_lines(tmp_path / "c")  # results from before the budget existed: nothing claimed
    assert not any("Retry budget" in ln for ln in older)
