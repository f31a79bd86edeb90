"""The command-line options: typer types, each default taken from its option record (written once there).

Each ``*_options`` function turns a command's flags into the library's frozen
option records, which validate themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from exporter.analysis.inputs import AnalysisOptions
from exporter.export import ExportOptions
from exporter.formats.base import Int8OnnxLane, WriterSettings
from exporter.options import (CalibrationOptions, ChannelOptions, CompressionOptions, EvalOptions, FinetuneOptions,
                              QatOptions,
                              ModelOptions, ParityOptions, PreprocessOptions)
from exporter.variants import default_comparisons, default_runtime_comparisons, default_variants
from runtimes.bench.options import BenchOptions
from runtimes.bench.regression import CompareOptions
from runtimes.errors import BadInputError
from runtimes.executor.options import LOCAL, ExecutorOptions
from runtimes.manifest import BiasCorrection, CalibMethod, PruneMethod, PruneOrder, PruneScope

EXPORT_VARIANTS = ",".join(default_variants(with_peers=False))
RUN_VARIANTS = ",".join(default_variants(with_peers=True))

Out = Annotated[Path, typer.Option(help="run directory to write")]
Model = Annotated[str, typer.Option(help="torchvision classifier (see `shrinkwrap models`)")]
Weights = Annotated[str, typer.Option(help="imagenet (torchvision's ImageNet weights), random (UNTRAINED), "
                                           "or a path to a state_dict / checkpoint (loaded weights_only)")]
VariantsOpt = Annotated[str, typer.Option("--variants", help="comma-separated variant names "
                                                            "(see `shrinkwrap variants`)")]
FormatsOpt = Annotated[Optional[str], typer.Option(
    "--formats", help="comma-separated artifact formats to write (torchscript, onnx, pt2); default: each "
    "variant's own, TorchScript + ONNX. pt2 is an AOTInductor package compiled for this CPU (INT8 through the pt2e "
    "lane), about 20-60 s of compile per artifact")]
Int8OnnxLaneOpt = Annotated[Int8OnnxLane, typer.Option(
    "--int8-onnx-lane", help="which INT8 lane an INT8 variant's ONNX carries: fbgemm (the TorchScript's model, "
    "torch's TorchScript-based exporter) or pt2e (PyTorch 2's path: the pt2e graph through the dynamo exporter; "
    "variants without a pt2e model keep fbgemm)")]
Sparsity = Annotated[float, typer.Option(help="fraction of prunable weights set to zero, 0 <= S < 1")]
Scope = Annotated[PruneScope, typer.Option("--prune-scope", help="one threshold for all layers, or per layer")]
Order = Annotated[PruneOrder, typer.Option(help="prune the INT8 weights after quantizing, or the float "
                                                "weights before")]
# A string, parsed by parse_methods: a bad value is then one line and exit 2, like every bad input.
Method = Annotated[str, typer.Option("--prune-method", help="obs: choose by OBS saliency and reconstruct the "
                                     "kept weights from the calibration images; magnitude: L1, no reconstruction")]
BnRecalibrate = Annotated[bool, typer.Option("--bn-recalibrate/--no-bn-recalibrate",
                                             help="re-estimate BatchNorm statistics on the calibration images "
                                                  "after pruning float weights")]
ChannelSparsity = Annotated[float, typer.Option(help="slim variants: fraction of each prunable layer's output "
                                                     "channels removed, 0 <= C < 1")]
ChannelRound = Annotated[int, typer.Option(help="slim variants: channel counts kept are multiples of this")]
FinetuneData = Annotated[Optional[Path], typer.Option(help="ImageFolder for recovery by distillation from the FP32 "
                                                           "model (labels are not used)")]
FinetuneEpochs = Annotated[int, typer.Option(help="distillation epochs after pruning (slim variants, and the "
                                                  "pruned float weights with their zeros held); 0 = none")]
Seed = Annotated[int, typer.Option(help="seed of the distillation (shuffling, augmentation)")]
QatEpochs = Annotated[int, typer.Option(help="quantization-aware training of the INT8 variants: epochs of "
                                             "fake-quantized distillation from the FP32 model on --finetune-data; "
                                             "0 = none")]
QatLr = Annotated[float, typer.Option(help="QAT's SGD learning rate (cosine-annealed to 0)")]
CalibData = Annotated[Optional[Path], typer.Option(help="ImageFolder directory for calibration "
                                                        "(default: synthetic inputs)")]
CalibImages = Annotated[int, typer.Option(help="deterministic subset size for calibration")]
CalibMethodOpt = Annotated[CalibMethod, typer.Option(help="activation observer")]
Target = Annotated[str, typer.Option("--target", help="the CPU class the INT8 artifacts are for: x86-vnni (VNNI/AMX, "
                                                     "8-bit activations; the default), x86-avx2 (no VNNI: 7-bit "
                                                     "activations, which fbgemm cannot saturate) or native (the "
                                                     "one this machine is)")]
BiasCorrectionOpt = Annotated[BiasCorrection, typer.Option(
    "--bias-correction", help="after convert, shift each INT8 layer's bias so its mean output matches FP32: full "
                              "(in execution order, on the INT8 model's own inputs), fast (each layer's own error) "
                              "or none")]
EqualizeOpt = Annotated[bool, typer.Option(
    "--equalize/--no-equalize", help="cross-layer equalization before calibration: rescale channels between "
                                     "consecutive convolutions joined by a ReLU (off by default, see docs/accuracy.md)")]
Resize = Annotated[Optional[int], typer.Option(help="resize short side to this (default: the weights' own)")]
InputSize = Annotated[Optional[int], typer.Option(help="center crop size (default: the weights' own)")]
Mean = Annotated[Optional[str], typer.Option(help="normalization mean, e.g. 0.485,0.456,0.406")]
Std = Annotated[Optional[str], typer.Option(help="normalization std, e.g. 0.229,0.224,0.225")]
ParityImages = Annotated[Optional[int], typer.Option(help="inputs used by the parity check")]
Force = Annotated[bool, typer.Option("--force", help="replace an earlier shrinkwrap run in --out")]
Degenerate = Annotated[bool, typer.Option("--fail-on-degenerate/--allow-degenerate",
                                          help="fail (exit 4) when an artifact's outputs do not depend on its input")]
StrictPeers = Annotated[bool, typer.Option("--strict-peers", help="let a peer row's parity failure (e.g. "
                                           "ort-quantize-static) fail the run too (exit 4); by default it is "
                                           "reported, not gated")]
Tolerance = Annotated[Optional[list[str]], typer.Option("--tolerance", help="override a parity tolerance, "
                                                        "e.g. int8.cosine=0.995 (repeatable)")]
Runtimes = Annotated[Optional[str], typer.Option(help="comma-separated runtimes (default: all; see "
                                                      "`shrinkwrap runtimes`)")]
Batch = Annotated[str, typer.Option(help="comma-separated batch sizes")]
Threads = Annotated[Optional[int], typer.Option(help="intra-op threads for every runtime (recorded)")]
Timeout = Annotated[float, typer.Option(help="per-cell timeout in seconds")]
MinTime = Annotated[float, typer.Option(help="minimum timed seconds per cell")]
MinIters = Annotated[int, typer.Option(help="minimum timed iterations per cell")]
Attempts = Annotated[int, typer.Option(help="timed windows per cell at most, until one is stable")]
Remeasure = Annotated[bool, typer.Option("--remeasure/--no-remeasure",
                                         help="time a cell still unstable once more, in a fresh process, at the "
                                              "end (--no-remeasure: for runs that only want accuracy)")]
RetryBudget = Annotated[float, typer.Option(help="seconds the whole sweep may spend timing unstable cells again "
                                                 "(extra windows, fresh-process re-measures); then one window each")]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="where the cells (and study jobs) run: local (this "
                                         "machine, one after another) or ray (tasks on a Ray cluster)")]
RayAddress = Annotated[Optional[str], typer.Option("--ray-address", help="host:port of a Ray cluster's head (ray "
                                                   "start --head); default: $RAY_ADDRESS, else a local cluster "
                                                   "started for the command")]
TargetsOpt = Annotated[Optional[str], typer.Option("--targets", help="comma-separated deployment targets: each "
                                                   "cell runs once per target, on Ray nodes started with "
                                                   "--resources '{\"target:NAME\": 1}'")]
MaxRetries = Annotated[int, typer.Option("--max-retries", help="how often Ray resubmits a task whose worker "
                                         "died (another node of the same target may take it)")]
JobCpus = Annotated[Optional[float], typer.Option("--job-cpus", help="CPUs each timing job asks Ray for "
                                                  "(default: this machine's cores: one cell at a time per node "
                                                  "of that size)")]
ShardImages = Annotated[int, typer.Option("--shard-images", help="--executor ray: eval images per accuracy task "
                                          "(whole batches; the shards' counts merge into the exact top-1/top-5)")]
EvalData = Annotated[Optional[Path], typer.Option(help="ImageFolder to measure top-1/top-5 on")]
EvalImages = Annotated[Optional[int], typer.Option(help="deterministic subset of --eval-data")]
MaxDrop = Annotated[float, typer.Option(help="accuracy budget in points of top-1 (auto variant, recommendation)")]
Json = Annotated[bool, typer.Option("--json", help="print the records as JSON on stdout")]
JunitXml = Annotated[Optional[Path], typer.Option("--junit-xml", help="write a JUnit XML report here (one test "
                                                                      "case per artifact × runtime × metric)")]
VariantsFilter = Annotated[Optional[str], typer.Option("--variants", help="comma-separated variants of the run "
                                                                         "(default: all)")]
# --localize is a bare flag (the violating artifacts: what a user types first); --localize-all takes every one.
Localize = Annotated[bool, typer.Option("--localize", help="compare the intermediate activations of each "
                                                           "violating artifact with the eager modules' and "
                                                           "name the first divergent layer")]
LocalizeAll = Annotated[bool, typer.Option("--localize-all", help="the same for every artifact, passing or not")]
RunDir = Annotated[Path, typer.Argument(help="run directory holding manifest.json")]

DEFAULT_BATCH = ",".join(map(str, BenchOptions.batches))


def parse_ints(csv: str, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in csv.split(",") if v.strip())
    except ValueError:
        raise BadInputError(f"{what} must be comma-separated integers, got {csv!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise BadInputError(f"{what} must be positive integers, got {csv!r}")
    return vals


def parse_floats(csv: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in csv.split(",") if v.strip())
    except ValueError:
        raise BadInputError(f"{what} must be comma-separated numbers, got {csv!r}") from None


def parse_method(name: str | PruneMethod) -> PruneMethod:
    (method,) = parse_methods(name.value if isinstance(name, PruneMethod) else name)
    return method


def parse_methods(csv: str) -> list[PruneMethod]:
    out = []
    for name in (v.strip() for v in csv.split(",") if v.strip()):
        try:
            out.append(PruneMethod(name))
        except ValueError:
            raise BadInputError(f"unknown pruning method {name!r}; known: "
                                f"{', '.join(m.value for m in PruneMethod)}") from None
    if not out:
        raise BadInputError("--prune-methods is empty")
    return out


def parse_triple(csv: str | None, what: str) -> tuple[float, float, float] | None:
    if csv is None:
        return None
    vals = parse_floats(csv, what)
    if len(vals) != 3:
        raise BadInputError(f"{what} must be three comma-separated numbers, got {csv!r}")
    return vals  # type: ignore[return-value]


def preprocess_options(resize, input_size, mean, std) -> PreprocessOptions:
    return PreprocessOptions(resize, input_size, parse_triple(mean, "--mean"), parse_triple(std, "--std"))


def recovery_options(channel_sparsity: float = ChannelOptions.sparsity, channel_round: int = ChannelOptions.round_to,
                     finetune_data: Path | None = FinetuneOptions.data,
                     finetune_epochs: int = FinetuneOptions.epochs,
                     seed: int = FinetuneOptions.seed, qat_epochs: int = QatOptions.epochs,
                     qat_lr: float = QatOptions.lr) -> dict:
    """The channel-pruning, distillation and QAT records, as ``CompressionOptions`` keyword arguments."""
    return {"channels": ChannelOptions(channel_sparsity, channel_round),
            "finetune": FinetuneOptions(finetune_data, finetune_epochs, seed), "qat": QatOptions(qat_epochs, qat_lr)}


def export_options(out, model, weights, variants_csv, sparsity, prune_scope, order, calib_data, calib_images,
                   calib_method, resize, input_size, mean, std, eval_data, eval_images, max_accuracy_drop,
                   command, force=False, method=CompressionOptions.method.value,
                   bn_recalibrate=CompressionOptions.bn_recalibrate, recovery: dict | None = None,
                   target: str = CalibrationOptions.target,
                   bias_correction: BiasCorrection = CalibrationOptions.bias_correction,
                   equalize: bool = CalibrationOptions.equalize, formats: str | None = None,
                   int8_onnx_lane: Int8OnnxLane = Int8OnnxLane.FBGEMM) -> ExportOptions:
    # Cheap checks first, in the order a user reads the flags; nothing heavy is loaded yet.
    compression = CompressionOptions(sparsity, prune_scope, order, parse_method(method), bn_recalibrate,
                                     **(recovery or {}))
    return ExportOptions(
        out=out, model=ModelOptions(model, weights), variants=tuple(variants_csv.split(",")),
        compression=compression,
        calibration=CalibrationOptions(calib_data, calib_images, calib_method, target=target,
                                       bias_correction=bias_correction, equalize=equalize),
        preprocess=preprocess_options(resize, input_size, mean, std),
        evaluation=EvalOptions(eval_data, eval_images, max_accuracy_drop), command=command, force=force,
        formats=tuple(formats.split(",")) if formats is not None else None,
        writing=WriterSettings(int8_onnx_lane=Int8OnnxLane(int8_onnx_lane)))


def analysis_options(out, model, weights, sparsity, prune_scope, calib_data, calib_images, calib_method,
                     resize, input_size, mean, std, eval_data, eval_images, method=CompressionOptions.method.value,
                     bn_recalibrate=CompressionOptions.bn_recalibrate, recovery: dict | None = None,
                     target: str = CalibrationOptions.target,
                     bias_correction: BiasCorrection = CalibrationOptions.bias_correction,
                     equalize: bool = CalibrationOptions.equalize) -> AnalysisOptions:
    return AnalysisOptions(
        out=out, model=ModelOptions(model, weights),
        compression=CompressionOptions(sparsity, prune_scope, method=parse_method(method),
                                       bn_recalibrate=bn_recalibrate, **(recovery or {})),
        calibration=CalibrationOptions(calib_data, calib_images, calib_method, target=target,
                                       bias_correction=bias_correction, equalize=equalize),
        preprocess=preprocess_options(resize, input_size, mean, std),
        evaluation=EvalOptions(eval_data, eval_images))


def split_names(csv: str | None) -> tuple[str, ...] | None:
    return tuple(r.strip() for r in csv.split(",") if r.strip()) if csv else None


def executor_options(executor, ray_address, targets, max_retries, job_cpus,
                     shard_images: int = LOCAL.shard_images) -> ExecutorOptions:
    return ExecutorOptions(kind=executor, address=ray_address, targets=split_names(targets) or (),
                           max_retries=max_retries, job_cpus=job_cpus, shard_images=shard_images)


def bench_options(runtimes, batch, threads, min_time, min_iters, timeout, max_accuracy_drop,
                  variants=None, attempts=BenchOptions.attempts, remeasure=BenchOptions.remeasure,
                  retry_budget=BenchOptions.retry_budget_s, executor: ExecutorOptions = LOCAL) -> BenchOptions:
    return BenchOptions(runtimes=split_names(runtimes), batches=parse_ints(batch, "--batch"), threads=threads,
                        executor=executor,
                        min_time_s=min_time, min_iters=min_iters, timeout_s=timeout, attempts=attempts,
                        remeasure=remeasure, retry_budget_s=retry_budget,
                        max_accuracy_drop=max_accuracy_drop, compare=default_comparisons(),
                        compare_across=default_runtime_comparisons(),
                        variants=split_names(variants))


def localize_which(localize: bool, localize_all: bool, extra: list[str]) -> str | None:
    """``"violating"``, ``"all"`` or None from the two flags. ``extra``: the command's leftover arguments, which
    may hold the older spelling ``--localize violating`` / ``--localize all``; anything else there is refused."""
    from runtimes.localize import WHICH

    if localize and len(extra) == 1 and extra[0] in WHICH:
        return extra[0]
    if extra:
        raise BadInputError(f"unexpected argument {' '.join(map(repr, extra))}: --localize (violating artifacts) "
                            f"and --localize-all (every artifact) take no value")
    return "all" if localize_all else "violating" if localize else None


def parity_options(images, tolerance, data, synthetic=False, fail_on_degenerate=True,
                   localize=None, strict_peers=False) -> ParityOptions:
    return ParityOptions(images=images, tolerance=tuple(tolerance or ()), data=data, synthetic=synthetic,
                         fail_on_degenerate=fail_on_degenerate, localize=localize, strict_peers=strict_peers)


def parse_bool(text: str, flag: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise BadInputError(f"{flag} takes true or false, got {text!r}")


def compare_options(max_slowdown, max_accuracy_drop, max_size_growth, max_sqnr_drop,
                    same_machine_only: str) -> CompareOptions:
    return CompareOptions(max_slowdown_pct=max_slowdown, max_accuracy_drop=max_accuracy_drop,
                          max_size_growth_pct=max_size_growth, max_sqnr_drop_db=max_sqnr_drop,
                          same_machine_only=parse_bool(same_machine_only, "--same-machine-only"))
