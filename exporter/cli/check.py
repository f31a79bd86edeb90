"""``verify`` and ``parity``: is every file what the manifest says, and does every artifact compute what its eager model does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from exporter.cli.app import REPORTER, app, cli_errors, out_console, say
from exporter.cli.options import (Degenerate, Json, JunitXml, Localize, LocalizeAll, ParityImages, RunDir,
                                  StrictPeers, Tolerance, localize_which, parity_options)
from exporter.options import ParityOptions


@app.command()
@cli_errors
def verify(run_dir: RunDir) -> None:
    """Re-hash every file the manifest names; exit non-zero on a missing, modified or foreign file."""
    from runtimes.errors import ArtifactError
    from runtimes.manifest import read_manifest, verify_run_dir

    problems = verify_run_dir(run_dir)
    if problems:
        raise ArtifactError(f"{run_dir}: " + ", ".join(f"{p.path} {p.problem}" for p in problems))
    m = read_manifest(run_dir)
    out_console.print(f"ok: {len(m.artifacts)} artifacts and {len(m.references)} references match their sha256")


# Extra arguments are allowed only for the older spelling "--localize violating" (see localize_which).
@app.command(context_settings={"allow_extra_args": True})
@cli_errors
def parity(
    ctx: typer.Context,
    run_dir: RunDir,
    data: Annotated[Optional[Path], typer.Option(help="ImageFolder of real images (default: the inputs the "
                                                      "run recorded, else synthetic)")] = None,
    synthetic: Annotated[bool, typer.Option("--synthetic", help="synthetic inputs, even if the run recorded "
                                                                "images")] = False,
    images: ParityImages = ParityOptions.images,
    tolerance: Tolerance = None,
    fail_on_degenerate: Degenerate = ParityOptions.fail_on_degenerate,
    localize: Localize = False,
    localize_all: LocalizeAll = False,
    strict_peers: StrictPeers = False,
    junit_xml: JunitXml = None,
    as_json: Json = False,
) -> None:
    """Compare every artifact with its eager model; exit non-zero on any tolerance violation.

    Without --data or --synthetic it re-checks the inputs the run recorded in parity.json; other
    inputs are written beside it (parity-<source>-<n>.json), never over it. --localize compares
    each violating artifact's intermediate activations with the eager modules' and names the
    first layer outside the tolerance (--localize-all: every artifact)."""
    which = localize_which(localize, localize_all, list(ctx.args))
    show_parity(run_dir, parity_options(images, tolerance, data, synthetic, fail_on_degenerate, which, strict_peers),
                as_json, junit_xml)


def show_parity(run_dir: Path, opts: ParityOptions, as_json: bool, junit_xml: Path | None = None) -> None:
    """Run the gate, print its table (or JSON), write JUnit XML, and fail with exit 4 on any violation."""
    from exporter.parity_gate import require_parity, run_parity
    from runtimes.records import to_jsonable

    results = run_parity(run_dir, opts, reporter=REPORTER)
    if as_json:
        out_console.print_json(json.dumps(to_jsonable(results)))
    else:
        print_parity(results)
        for r in results:
            if r.localization is not None:
                print_layers(r)
    if junit_xml is not None:
        from exporter.ci.junit import parity_junit, write_junit

        say(f"wrote {write_junit(junit_xml, parity_junit(results, opts.fail_on_degenerate, opts.strict_peers))}")
    say_peer_failures(results, opts.strict_peers)
    require_parity(results, opts.fail_on_degenerate, opts.strict_peers)


def say_peer_failures(results: list, strict_peers: bool) -> None:
    """One line per peer row that failed parity but is not gated."""
    from exporter.parity_gate import peer_failures

    for r in peer_failures(results, strict_peers):
        say(f"peer {r.path} is outside its parity tolerance ({r.violations[0].split(': ', 1)[-1]}): reported, "
            f"not gated (--strict-peers gates it)")


def print_layers(r) -> None:
    """The per-layer table of a localized artifact (or why it could not be localized)."""
    if not r.layers:
        out_console.print(f"{r.path}: {r.localization}", highlight=False)
        return
    t = r.tolerance
    table = Table("#", "layer (eager module)", "SQNR dB", "cosine", "max abs", "result",
                  title=f"{r.path} in {r.runtime}, layer by layer vs eager {r.reference} "
                        f"(tolerance: cosine ≥ {t.min_cosine}, SQNR ≥ {t.min_sqnr_db} dB)")
    for i, lp in enumerate(r.layers):
        first = lp.layer == r.first_divergent_layer
        result = "[green]ok[/]" if lp.passed else "[red]FIRST DIVERGENT[/]" if first else "[red]outside[/]"
        name = lp.layer + (f" (+{', '.join(lp.folded)} folded)" if lp.folded else "")
        table.add_row(str(i), name, f"{lp.sqnr_db:.1f}", f"{lp.cosine:.6f}", f"{lp.max_abs_error:.3g}", result)
    out_console.print(table)
    out_console.print(f"{r.path}: {r.localization}", highlight=False)


def print_parity(results: list) -> None:
    table = Table("variant", "format", "runtime", "max abs", "max rel", "cosine", "SQNR dB", "top-1 agr.", "top-5 ovl.",
                  "result", title="parity vs eager (* = gated by a tolerance; the rest is informational)")
    for r in results:
        gated = set(r.gated())

        def mark(name: str, text: str) -> str:
            return f"{text}*" if name in gated else text

        result = f"[green]{r.verdict()}[/]" if r.passed else f"[red]{r.verdict()}[/]"
        if r.degenerate:
            result += " [red]DEGENERATE[/]"
        rel = "–" if r.max_rel_error is None else f"{r.max_rel_error:.3g}"
        table.add_row(r.variant, r.format, r.runtime_label, mark("max_abs_error", f"{r.max_abs_error:.3g}"),
                      mark("max_rel_error", rel),
                      mark("cosine", f"{r.cosine:.6f}"), mark("sqnr_db", f"{r.sqnr_db:.1f}"),
                      mark("top1_agreement", f"{r.top1_agreement:.3f}"), f"{r.top5_overlap:.3f}", result)
    out_console.print(table)
