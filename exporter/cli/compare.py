"""``compare``: the regression gate between an accepted run and a new one (exit 5 on a regression)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from exporter.cli.app import app, cli_errors, console, out_console
from exporter.cli.options import JunitXml, Json, compare_options
from runtimes.bench.regression import CompareOptions, Verdict

_STYLE = {Verdict.REGRESSED: "red", Verdict.NOISE: "yellow", Verdict.NOT_GATED: "yellow",
          Verdict.IMPROVED: "green", Verdict.OK: ""}


@app.command()
@cli_errors
def compare(
    base_dir: Annotated[Path, typer.Argument(help="the accepted (baseline) run directory")],
    new_dir: Annotated[Path, typer.Argument(help="the run directory to check")],
    max_slowdown: Annotated[float, typer.Option(help="percent: median or p90 latency growth that regresses "
                                                     "(beyond the runs' own spread)")] =
    CompareOptions.max_slowdown_pct,
    max_accuracy_drop: Annotated[float, typer.Option(help="points of top-1 / top-5 lost that regress")] =
    CompareOptions.max_accuracy_drop,
    max_size_growth: Annotated[float, typer.Option(help="percent: file or zstd size growth that regresses")] =
    CompareOptions.max_size_growth_pct,
    max_sqnr_drop: Annotated[float, typer.Option(help="dB of parity SQNR lost that regress")] =
    CompareOptions.max_sqnr_drop_db,
    same_machine_only: Annotated[str, typer.Option(help="true: gate latency only when both runs come from the "
                                                        "same machine; false: gate it anyway")] = "true",
    summary: Annotated[Optional[Path], typer.Option(help="write a markdown summary (a pull-request "
                                                         "comment) here")] = None,
    junit_xml: JunitXml = None,
    all_rows: Annotated[bool, typer.Option("--all", help="print every comparison, not only those that "
                                                         "moved")] = False,
    as_json: Json = False,
) -> None:
    """Compare a run with a baseline run cell by cell (latency, size, accuracy, parity); exit 5 on a regression.

    Cells present in one run only are listed, not failed. Runs from different machines are compared with
    a warning and their latency is not gated unless --same-machine-only false."""
    from exporter.ci.junit import compare_junit, write_junit
    from exporter.ci.summary import write_summary
    from runtimes.bench.regression import compare_runs, require_no_regression
    from runtimes.records import to_jsonable

    opts = compare_options(max_slowdown, max_accuracy_drop, max_size_growth, max_sqnr_drop, same_machine_only)
    result = compare_runs(base_dir, new_dir, opts)
    if result.machine_differences:
        console.print(f"[bold yellow]warning:[/] the runs come from different machines "
                      f"({'; '.join(result.machine_differences)}); latency "
                      + ("is gated anyway" if result.latency_gated else "is not gated"),
                      highlight=False, soft_wrap=True)
    if as_json:
        out_console.print_json(json.dumps(to_jsonable(result)))
    else:
        print_comparison(result, all_rows)
    if summary is not None:
        out_console.print(f"wrote {write_summary(summary, result)}", highlight=False)
    if junit_xml is not None:
        out_console.print(f"wrote {write_junit(junit_xml, compare_junit(result))}", highlight=False)
    require_no_regression(result)
    out_console.print(f"no regression against {base_dir}", highlight=False)


def print_comparison(result, all_rows: bool = False) -> None:
    shown = [d for d in result.deltas if all_rows or d.verdict is not Verdict.OK]
    hidden = len(result.deltas) - len(shown)
    if not shown:
        out_console.print(f"{result.new_dir} vs baseline {result.base_dir}: {len(result.deltas)} comparisons, "
                          "all within their thresholds", highlight=False)
    else:
        table = Table("cell", "metric", "base", "new", "change", "limit", "verdict",
                      title=f"{result.new_dir} vs baseline {result.base_dir}: {len(result.deltas)} comparisons"
                            + (f", {hidden} ok not shown (--all shows them)" if hidden else ""))
        for d in shown:
            style = _STYLE[d.verdict]
            verdict = f"[{style}]{d.verdict.value}[/]" if style else d.verdict.value
            table.add_row(d.cell, d.metric, f"{d.base:.4g}", f"{d.new:.4g}", d.moved(), d.limit(),
                          verdict + (f" ({d.note})" if d.note else ""))
        out_console.print(table)
    for one in result.one_sided:
        out_console.print(f"only in {one.side}: {one.cell} — {one.status}", highlight=False)
    for note in result.notes:
        out_console.print(f"note: {note}", highlight=False)
