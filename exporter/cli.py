"""The ``shrinkwrap`` command line: thin wrappers over the library.

The library raises its own exception types; only this module turns them into a
one-line message and an exit code.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from runtimes.artifact import CalibMethod, PruneOrder, PruneScope
from runtimes.errors import ShrinkwrapError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Compress torchvision CNNs, export TorchScript + ONNX, gate on parity, benchmark runtimes.")
# Tables are wide; when output is not a terminal rich would squeeze them into 80 columns.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(stderr=True, width=_WIDTH)
out_console = Console(width=_WIDTH)


def _command_line() -> str:
    return "shrinkwrap " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def cli_errors(fn: Callable) -> Callable:
    """Map the library's exceptions to one line on stderr and the exception's exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ShrinkwrapError as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.print("[bold red]error:[/] interrupted; nothing partial was published")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # an internal failure, not bad input
            if os.environ.get("SHRINKWRAP_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {first} "
                          "(set SHRINKWRAP_DEBUG=1 for the traceback)", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _say(msg: str) -> None:
    console.print(f"[cyan]•[/] {msg}", highlight=False, soft_wrap=True)


# ------------------------------------------------------------------ shared options
Model = Annotated[str, typer.Option(help="torchvision classifier: resnet18, resnet50, ...")]
Weights = Annotated[str, typer.Option(help="imagenet (torchvision IMAGENET1K_V1), random (UNTRAINED), "
                                           "or a path to a state_dict / checkpoint (loaded weights_only)")]
VariantsOpt = Annotated[str, typer.Option("--variants", help="comma-separated variant names "
                                                            "(see `shrinkwrap variants`)")]
Sparsity = Annotated[float, typer.Option(help="fraction of prunable weights set to zero, 0 <= S < 1")]
Scope = Annotated[PruneScope, typer.Option("--prune-scope", help="one threshold for all layers, or per layer")]
Order = Annotated[PruneOrder, typer.Option(help="prune the INT8 weights after quantizing, or the float "
                                                "weights before")]
CalibData = Annotated[Optional[Path], typer.Option(help="ImageFolder directory for calibration "
                                                        "(default: synthetic inputs)")]
CalibImages = Annotated[int, typer.Option(help="deterministic subset size for calibration")]
CalibMethodOpt = Annotated[CalibMethod, typer.Option(help="activation observer")]
Resize = Annotated[Optional[int], typer.Option(help="resize short side to this (default: the weights' own, 256)")]
InputSize = Annotated[Optional[int], typer.Option(help="center crop size (default 224)")]
Mean = Annotated[Optional[str], typer.Option(help="normalization mean, e.g. 0.485,0.456,0.406")]
Std = Annotated[Optional[str], typer.Option(help="normalization std, e.g. 0.229,0.224,0.225")]
ParityImages = Annotated[int, typer.Option(help="inputs used by the parity check")]
Tolerance = Annotated[Optional[list[str]], typer.Option("--tolerance", help="override a parity tolerance, "
                                                        "e.g. int8.cosine=0.995 (repeatable)")]
Runtimes = Annotated[Optional[str], typer.Option(help="comma-separated runtimes (default: all)")]
Batch = Annotated[str, typer.Option(help="comma-separated batch sizes")]
Threads = Annotated[Optional[int], typer.Option(help="intra-op threads for every runtime (recorded)")]
Timeout = Annotated[float, typer.Option(help="per-cell timeout in seconds")]
MinTime = Annotated[float, typer.Option(help="minimum timed seconds per cell")]
MinIters = Annotated[int, typer.Option(help="minimum timed iterations per cell")]
EvalData = Annotated[Optional[Path], typer.Option(help="ImageFolder to measure top-1/top-5 on")]
EvalImages = Annotated[Optional[int], typer.Option(help="deterministic subset of --eval-data")]
MaxDrop = Annotated[float, typer.Option(help="accuracy budget in points of top-1 (auto variant, recommendation)")]
Json = Annotated[bool, typer.Option("--json", help="print the records as JSON on stdout")]


def _parse_csv_ints(csv: str, what: str) -> list[int]:
    from runtimes.errors import BadInputError

    try:
        vals = [int(v) for v in csv.split(",") if v.strip()]
    except ValueError:
        raise BadInputError(f"{what} must be comma-separated integers, got {csv!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise BadInputError(f"{what} must be positive integers, got {csv!r}")
    return vals


# ------------------------------------------------------------------ commands
@app.command()
@cli_errors
def variants() -> None:
    """List the registered variants."""
    from exporter.variants import all_variants

    table = Table("name", "precision", "prune", "formats", "description")
    for v in all_variants():
        table.add_row(v.name, v.precision.value, "yes" if v.prune else "no",
                      ",".join(f.value for f in v.formats), v.description)
    out_console.print(table)


def _export_request(model, weights, variants_csv, sparsity, prune_scope, order, calib_data, calib_images,
                    calib_method, resize, input_size, mean, std, out, eval_data=None, eval_images=None,
                    max_accuracy_drop=1.0, check_out=True):
    from exporter.data import list_image_folder, make_preprocess
    from exporter.errors import BadInputError
    from exporter.export import ExportRequest, check_output_dir
    from exporter.models import load_model
    from exporter.recipe import CompressionOptions
    from exporter.variants import parse_variants

    # Validate everything cheap before loading anything heavy or writing anything.
    if not 0.0 <= sparsity < 1.0:
        raise BadInputError(f"--sparsity must be in [0, 1), got {sparsity}")
    if calib_images <= 0:
        raise BadInputError(f"--calib-images must be positive, got {calib_images}")
    specs = parse_variants(variants_csv)
    for folder, flag in ((calib_data, "--calib-data"), (eval_data, "--eval-data")):
        if folder is not None:
            _, samples, _ = list_image_folder(folder)
            if not samples:
                raise BadInputError(f"{flag} {folder} holds no image files")
    if eval_data is None and any(s.budgeted for s in specs):
        raise BadInputError("the auto variant needs --eval-data (labelled images) to hold its accuracy budget")
    if eval_images is not None and eval_images <= 0:
        raise BadInputError(f"--eval-images must be positive, got {eval_images}")
    if check_out:
        check_output_dir(out)
    loaded = load_model(model, weights)
    _say(f"model {model}: weights {loaded.weights.label}")
    pre = make_preprocess(loaded.preprocess, resize, input_size, mean, std)
    opts = CompressionOptions(sparsity=sparsity, scope=prune_scope, order=order, calib_method=calib_method)
    eval_set = _load_eval_set(eval_data, eval_images, pre, loaded.num_classes) if eval_data else None
    return ExportRequest(loaded=loaded, preprocess=pre, variants=specs, options=opts, out=out,
                         calib_data=calib_data, calib_images=calib_images, command=_command_line(),
                         eval_set=eval_set, max_accuracy_drop=max_accuracy_drop)


def _load_eval_set(eval_data, eval_images, pre, num_classes):
    """Decode the eval images once, with a progress bar showing images/s."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn

    from exporter.data import load_image_folder
    from exporter.sensitivity import EvalSet

    t0 = time.perf_counter()
    with Progress(TextColumn("decoding eval images"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[rate]}"), console=console) as bar:
        task = bar.add_task("decode", total=None, rate="")

        def hook(done, total):
            bar.update(task, completed=done, total=total,
                       rate=f"{done / max(time.perf_counter() - t0, 1e-9):.0f} images/s")

        images = load_image_folder(eval_data, pre, limit=eval_images, num_classes=num_classes, progress=hook)
    _say(f"eval set: {len(images.images)} images in {len(images.classes)} classes from {eval_data} "
         f"({images.skipped} files skipped), decoded in {time.perf_counter() - t0:.1f} s")
    return EvalSet(images.images, images.labels, str(eval_data))


def _eval_npz(eval_set) -> Path:
    """Write the decoded eval set once for the benchmark's cell processes (removed at exit)."""
    import atexit
    import shutil
    import tempfile

    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix="shrinkwrap-eval-"))
    atexit.register(shutil.rmtree, tmp, True)
    path = tmp / "eval.npz"
    np.savez(path, images=eval_set.images.numpy(), labels=eval_set.labels.numpy())
    return path


def _parity_inputs(run_dir: Path, data: Optional[Path], n: int):
    from exporter.data import load_image_folder
    from exporter.evaluation import preprocess_of
    from runtimes.artifact import read_manifest
    from runtimes.parity import synthetic_inputs

    manifest = read_manifest(run_dir)
    if data is None:
        return synthetic_inputs(n, manifest.artifacts[0].input, seed=0), "synthetic"
    images = load_image_folder(data, preprocess_of(manifest), limit=n,
                               num_classes=manifest.artifacts[0].num_classes)
    return images.images.numpy(), "images"


def _run_parity(run_dir: Path, data: Optional[Path], n: int, tolerance: Optional[list[str]],
                as_json: bool) -> None:
    from runtimes.artifact import to_jsonable
    from runtimes.parity import check_parity, parse_tolerance_overrides, write_parity

    overrides = parse_tolerance_overrides(tolerance or [])
    inputs, source = _parity_inputs(run_dir, data, n)
    _say(f"parity: {len(inputs)} {'real-image' if source == 'images' else source} inputs, "
         "every artifact vs its eager reference")
    results = check_parity(run_dir, inputs, source, tolerances=overrides)
    write_parity(run_dir, results)
    if as_json:
        import json

        out_console.print_json(json.dumps(to_jsonable(results)))
    else:
        table = Table("variant", "format", "runtime", "max abs", "cosine", "SQNR dB", "top-1 agr.", "top-5 ovl.",
                      "result", title="parity vs eager")
        for r in results:
            table.add_row(r.variant, r.format, r.runtime, f"{r.max_abs_error:.3g}", f"{r.cosine:.6f}",
                          f"{r.sqnr_db:.1f}", f"{r.top1_agreement:.3f}", f"{r.top5_overlap:.3f}",
                          "[green]pass[/]" if r.passed else "[red]FAIL: " + "; ".join(r.violations) + "[/]")
        out_console.print(table)
    failed = [r for r in results if not r.passed]
    if failed:
        from runtimes.errors import ParityError

        names = ", ".join(f"{r.variant}.{r.format} ({'; '.join(r.violations)})" for r in failed)
        raise ParityError(f"parity failed for {len(failed)} artifact(s): {names}")


@app.command()
@cli_errors
def export(
    out: Annotated[Path, typer.Option(help="run directory to write")] = Path("artifacts/run"),
    model: Model = "resnet18",
    weights: Weights = "imagenet",
    variants_csv: VariantsOpt = "fp32,fp32-pruned,int8,fp16,mixed",
    sparsity: Sparsity = 0.5,
    prune_scope: Scope = PruneScope.GLOBAL,
    order: Order = PruneOrder.QUANTIZE_THEN_PRUNE,
    calib_data: CalibData = None,
    calib_images: CalibImages = 256,
    calib_method: CalibMethodOpt = CalibMethod.HISTOGRAM,
    resize: Resize = None,
    input_size: InputSize = None,
    mean: Mean = None,
    std: Std = None,
    parity_images: ParityImages = 16,
    tolerance: Tolerance = None,
    skip_parity: Annotated[bool, typer.Option(help="do not run the parity gate after exporting")] = False,
    eval_data: EvalData = None,
    eval_images: EvalImages = None,
    max_accuracy_drop: MaxDrop = 1.0,
) -> None:
    """Compress the model into the variants, write TorchScript + ONNX + manifest, then check parity."""
    from exporter.export import run_export

    req = _export_request(model, weights, variants_csv, sparsity, prune_scope, order, calib_data,
                          calib_images, calib_method, resize, input_size, mean, std, out, eval_data,
                          eval_images, max_accuracy_drop)
    run_export(req, progress=_say)
    if not skip_parity:
        _run_parity(out, calib_data, parity_images, tolerance, as_json=False)


@app.command()
@cli_errors
def verify(run_dir: Annotated[Path, typer.Argument(help="run directory holding manifest.json")]) -> None:
    """Re-hash every file the manifest names; exit non-zero on a missing, modified or foreign file."""
    from runtimes.artifact import read_manifest, verify_run_dir
    from runtimes.errors import ArtifactError

    problems = verify_run_dir(run_dir)
    if problems:
        raise ArtifactError(f"{run_dir}: " + ", ".join(f"{p.path} {p.problem}" for p in problems))
    m = read_manifest(run_dir)
    out_console.print(f"ok: {len(m.artifacts)} artifacts and {len(m.references)} references match their sha256")


@app.command()
@cli_errors
def parity(
    run_dir: Annotated[Path, typer.Argument(help="run directory holding manifest.json")],
    data: Annotated[Optional[Path], typer.Option(help="ImageFolder of real images (default: synthetic)")] = None,
    images: ParityImages = 16,
    tolerance: Tolerance = None,
    as_json: Json = False,
) -> None:
    """Compare every artifact with its eager model; exit non-zero on any tolerance violation."""
    _run_parity(run_dir, data, images, tolerance, as_json)


def _prepare_eval(run_dir: Path, eval_data: Optional[Path], eval_images: Optional[int]) -> Optional[Path]:
    """Decode the eval set once, with the run's own preprocessing; every cell reuses the tensors."""
    if eval_data is None:
        return None
    from exporter.evaluation import preprocess_of
    from runtimes.artifact import read_manifest

    manifest = read_manifest(run_dir)
    return _eval_npz(_load_eval_set(eval_data, eval_images, preprocess_of(manifest),
                                    manifest.artifacts[0].num_classes))


def _run_bench(run_dir, runtimes, batch, threads, min_time, min_iters, timeout, eval_npz, as_json,
               max_accuracy_drop=1.0):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from runtimes.base import parse_runtime
    from runtimes.bench import bench

    names = [parse_runtime(r.strip()) for r in runtimes.split(",") if r.strip()] if runtimes else None
    batches = _parse_csv_ints(batch, "--batch")
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("bench", total=None)

        def hook(done, total, cell):
            label = f"{cell.variant}.{cell.format} {cell.runtime} b{cell.batch}: {cell.status.value}"
            bar.update(task, completed=done, total=total, description=label)

        results = bench(run_dir, runtimes=names, batches=tuple(batches), threads=threads, min_time_s=min_time,
                        min_iters=min_iters, timeout_s=timeout, eval_tensors=eval_npz, progress=hook,
                        command=_command_line(), max_accuracy_drop=max_accuracy_drop)
    if as_json:
        import json

        from runtimes.artifact import to_jsonable

        out_console.print_json(json.dumps(to_jsonable(results)))
    ok = sum(c.status.value == "ok" for c in results.cells)
    _say(f"{ok}/{len(results.cells)} cells ok; results.json and results.csv written to {run_dir}")
    return results


@app.command("bench")
@cli_errors
def bench_cmd(
    run_dir: Annotated[Path, typer.Argument(help="run directory holding manifest.json")],
    runtimes: Runtimes = None,
    batch: Batch = "1,8",
    threads: Threads = None,
    min_time: MinTime = 1.0,
    min_iters: MinIters = 10,
    timeout: Timeout = 300.0,
    eval_data: EvalData = None,
    eval_images: EvalImages = None,
    max_accuracy_drop: MaxDrop = 1.0,
    as_json: Json = False,
) -> None:
    """Time every artifact in every runtime (one subprocess per cell); write results.json and results.csv."""
    from runtimes.artifact import require_verified

    require_verified(run_dir)
    npz = _prepare_eval(run_dir, eval_data, eval_images)
    _run_bench(run_dir, runtimes, batch, threads, min_time, min_iters, timeout, npz, as_json, max_accuracy_drop)


@app.command()
@cli_errors
def report(run_dir: Annotated[Path, typer.Argument(help="run directory holding results.json")]) -> None:
    """Render report.md and figures from results.json alone (nothing is re-run)."""
    from runtimes.report import render_report

    path = render_report(run_dir)
    out_console.print(f"wrote {path}")


@app.command()
@cli_errors
def run(
    out: Annotated[Path, typer.Option(help="run directory to write")] = Path("artifacts/run"),
    model: Model = "resnet18",
    weights: Weights = "imagenet",
    variants_csv: VariantsOpt = "fp32,fp32-pruned,int8,fp16,mixed,ort-quantize-static",
    sparsity: Sparsity = 0.5,
    prune_scope: Scope = PruneScope.GLOBAL,
    order: Order = PruneOrder.QUANTIZE_THEN_PRUNE,
    calib_data: CalibData = None,
    calib_images: CalibImages = 256,
    calib_method: CalibMethodOpt = CalibMethod.HISTOGRAM,
    resize: Resize = None,
    input_size: InputSize = None,
    mean: Mean = None,
    std: Std = None,
    parity_images: ParityImages = 16,
    tolerance: Tolerance = None,
    runtimes: Runtimes = None,
    batch: Batch = "1,8",
    threads: Threads = None,
    min_time: MinTime = 1.0,
    min_iters: MinIters = 10,
    timeout: Timeout = 300.0,
    eval_data: EvalData = None,
    eval_images: EvalImages = None,
    max_accuracy_drop: MaxDrop = 1.0,
) -> None:
    """Export, parity, bench and report in one command."""
    from exporter.export import run_export
    from runtimes.base import parse_runtime
    from runtimes.errors import ParityError
    from runtimes.report import render_report

    if runtimes:  # fail on a bad runtime name before minutes of export
        [parse_runtime(r.strip()) for r in runtimes.split(",") if r.strip()]
    _parse_csv_ints(batch, "--batch")
    req = _export_request(model, weights, variants_csv, sparsity, prune_scope, order, calib_data,
                          calib_images, calib_method, resize, input_size, mean, std, out, eval_data,
                          eval_images, max_accuracy_drop)
    _say("[1/4] export")
    run_export(req, progress=_say)
    _say("[2/4] parity")
    parity_error = None
    try:
        _run_parity(out, calib_data, parity_images, tolerance, as_json=False)
    except ParityError as exc:  # still benchmark and report, then fail
        parity_error = exc
    _say("[3/4] bench")
    npz = _eval_npz(req.eval_set) if req.eval_set is not None else None
    _run_bench(out, runtimes, batch, threads, min_time, min_iters, timeout, npz, False, max_accuracy_drop)
    _say("[4/4] report")
    path = render_report(out)
    out_console.print(f"wrote {path}")
    if parity_error is not None:
        raise parity_error


def _analysis_setup(model, weights, sparsity, prune_scope, order, calib_data, calib_images, calib_method,
                    resize, input_size, mean, std, out, eval_data, eval_images, synthetic_images_n):
    """Model, calibration and eval set for the analyses (sweep, sensitivity); nothing is exported."""
    from exporter.data import synthetic_images
    from exporter.export import calibration_set
    from exporter.recipe import Recipe
    from exporter.sensitivity import EvalSet

    req = _export_request(model, weights, "fp32", sparsity, prune_scope, order, calib_data, calib_images,
                          calib_method, resize, input_size, mean, std, out, eval_data, eval_images,
                          check_out=False)
    out.mkdir(parents=True, exist_ok=True)
    calib, _ = calibration_set(req, _say)
    ev = req.eval_set
    if ev is None:
        _say(f"no --eval-data: {synthetic_images_n} SYNTHETIC inputs, output SQNR only (no accuracy)")
        ev = EvalSet(synthetic_images(synthetic_images_n, req.preprocess, seed=7), None, "synthetic")
    return req, Recipe(req.loaded, calib, req.options), ev


@app.command()
@cli_errors
def sweep(
    out: Annotated[Path, typer.Option(help="directory for sweep.json and figures (e.g. a run directory)")]
    = Path("artifacts/run"),
    model: Model = "resnet18",
    weights: Weights = "imagenet",
    variants_csv: VariantsOpt = "fp32-pruned,int8,fp16,mixed",
    sparsities: Annotated[str, typer.Option(help="comma-separated sparsities")] = "0,0.3,0.5,0.7,0.9",
    prune_scope: Scope = PruneScope.GLOBAL,
    calib_data: CalibData = None,
    calib_images: CalibImages = 256,
    calib_method: CalibMethodOpt = CalibMethod.HISTOGRAM,
    resize: Resize = None,
    input_size: InputSize = None,
    mean: Mean = None,
    std: Std = None,
    eval_data: EvalData = None,
    eval_images: EvalImages = None,
) -> None:
    """Accuracy and compressed size against sparsity, for both pruning orders."""
    from exporter.prune import check_sparsity
    from exporter.sweep import run_sweep
    from runtimes.analysis_sections import sweep_figures
    from exporter.variants import parse_variants
    from runtimes.artifact import to_jsonable, write_json
    from runtimes.errors import BadInputError

    try:
        levels = [check_sparsity(float(v)) for v in sparsities.split(",") if v.strip()]
    except ValueError:
        raise BadInputError(f"--sparsities must be comma-separated numbers, got {sparsities!r}") from None
    if not levels:
        raise BadInputError("--sparsities is empty")
    specs = [v for v in parse_variants(variants_csv) if v.prune and not v.budgeted and not v.peer]
    if not specs:
        raise BadInputError("--variants names no pruned variant to sweep")
    req, recipe, ev = _analysis_setup(model, weights, 0.5, prune_scope, PruneOrder.QUANTIZE_THEN_PRUNE,
                                      calib_data, calib_images, calib_method, resize, input_size, mean, std,
                                      out, eval_data, eval_images, 256)
    report_ = run_sweep(recipe, specs, ev, levels, progress=_say)
    write_json(out / "sweep.json", report_)
    sweep_figures(to_jsonable(report_), out / "figures")
    for c in report_.conclusions:
        _say(c)
    out_console.print(f"wrote {out / 'sweep.json'} and figures in {report_.seconds:.0f} s")


@app.command()
@cli_errors
def sensitivity(
    out: Annotated[Path, typer.Option(help="directory for sensitivity.json and figures")] = Path("artifacts/run"),
    model: Model = "resnet18",
    weights: Weights = "imagenet",
    sparsity: Sparsity = 0.5,
    calib_data: CalibData = None,
    calib_images: CalibImages = 256,
    calib_method: CalibMethodOpt = CalibMethod.HISTOGRAM,
    resize: Resize = None,
    input_size: InputSize = None,
    mean: Mean = None,
    std: Std = None,
    eval_data: EvalData = None,
    eval_images: EvalImages = None,
) -> None:
    """Per layer: the loss when only that layer is INT8, and when only that layer is pruned; ranked."""
    from exporter.sensitivity import layer_sensitivity, write_sensitivity
    from runtimes.analysis_sections import sensitivity_figure
    from runtimes.artifact import to_jsonable

    req, recipe, ev = _analysis_setup(model, weights, sparsity, PruneScope.LAYER, PruneOrder.QUANTIZE_THEN_PRUNE,
                                      calib_data, calib_images, calib_method, resize, input_size, mean, std,
                                      out, eval_data, eval_images, 128)
    rep = layer_sensitivity(recipe.base.model, recipe.calibrated(False), ev, sparsity, req.loaded.arch,
                            progress=_say)
    write_sensitivity(out, rep)
    sensitivity_figure(to_jsonable(rep), out / "figures" / "sensitivity.png")
    table = Table("rank", "layer", "INT8-only SQNR dB", "prune-only SQNR dB", "INT8-only top-1 drop")
    for i, r in enumerate(rep.layers[:10], 1):
        table.add_row(str(i), r.layer, f"{r.quant_sqnr_db:.1f}", f"{r.prune_sqnr_db:.1f}",
                      "-" if r.quant_top1_drop is None else f"{r.quant_top1_drop:+.2f}")
    out_console.print(table)
    out_console.print(f"wrote {out / 'sensitivity.json'} in {rep.seconds:.0f} s")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
