"""The export pipeline: model → variants → artifacts + manifest, staged then published.

Everything is written into a hidden staging directory next to ``out`` and moved
into place only when every artifact and the manifest exist, so an interrupted or
failed export never leaves a run directory whose manifest names a missing or
truncated file.

Each variant is built by its registered builder (:mod:`exporter.builders`) and
written by the registered writer of each of its formats (:mod:`exporter.formats`);
a variant compared with its own eager model also gets its eager reference.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from exporter.builders.base import BuiltVariant
from exporter.compress.unstructured import sparsity_shortfall
from exporter.data import synthetic_images
from exporter.evaluation import model_logits
from exporter.errors import BadInputError
from exporter.formats.base import WriteResult, WriterSettings, get_writer, refusal
from exporter.inputs import SYNTHETIC, Inputs, load_inputs
from exporter.options import (CalibrationOptions, CompressionOptions, EvalOptions, ModelOptions,
                              PreprocessOptions)
from exporter.progress import SILENT, Reporter
from exporter.variants import VariantSpec, check_request, default_variants, parse_variants
from runtimes.manifest import (COMPARE_WITH, INPUT_NAME, MANIFEST_NAME, OUTPUT_NAME, SCHEMA_VERSION,
                               ArtifactRecord, Format, InputSpec, LaneReference, Manifest, write_manifest)
from runtimes import openmp
from runtimes.metrics import output_variation
from runtimes.parity import DEGENERATE, DEGENERATE_VARIATION, degenerate_warning
from runtimes.quant_engine import set_quantized_engine
from runtimes.records import default_mode, sha256_file


def _export_defaults() -> tuple[str, ...]:
    return default_variants(with_peers=False)


@dataclass(frozen=True)
class ExportOptions:
    out: Path = Path("artifacts/run")
    model: ModelOptions = ModelOptions()
    variants: tuple[str, ...] = field(default_factory=_export_defaults)
    compression: CompressionOptions = CompressionOptions()
    calibration: CalibrationOptions = CalibrationOptions()
    preprocess: PreprocessOptions = PreprocessOptions()
    evaluation: EvalOptions = EvalOptions()
    command: str = ""  # the command line, recorded in the manifest
    force: bool = False  # replace an earlier shrinkwrap run in ``out`` (never anything else)
    # The formats to write (``--formats``); None: each variant's own (TorchScript + ONNX, a peer's ONNX).
    formats: tuple[str, ...] | None = None
    writing: WriterSettings = WriterSettings()  # how files are written (--int8-onnx-lane)

    def __post_init__(self) -> None:
        if self.formats is not None:
            object.__setattr__(self, "formats", parse_formats(self.formats))
        specs = parse_variants(self.variants)
        object.__setattr__(self, "variants", tuple(s.name for s in specs))
        check_request(self.model.model, specs, has_eval=self.evaluation.data is not None,
                      has_calib=self.calibration.data is not None)

    def specs(self) -> list[VariantSpec]:
        return parse_variants(self.variants)


def parse_formats(names: tuple[str, ...]) -> tuple[str, ...]:
    """Validate ``--formats``: deployable format names with a registered writer."""
    names = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not names:
        raise BadInputError("--formats is empty; give e.g. torchscript,onnx,pt2")
    for name in names:
        if name == Format.EAGER:
            raise BadInputError("--formats: eager is the reference every artifact is compared with, always written")
        get_writer(name)  # raises, naming the registered formats
    return names


def formats_for(spec: VariantSpec, requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """The formats ``spec`` is written in: its own, or those of ``requested`` it can be (a peer row is another
    tool's ONNX, so it is ONNX only; every other variant can be any format)."""
    if requested is None:
        return spec.formats
    if spec.compare_with is not None:
        return tuple(f for f in requested if f in spec.formats)
    return requested


def library_versions() -> dict[str, str]:
    import numpy
    import onnx
    import onnxruntime
    import torchvision

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__,
            "shrinkwrap": _own_version()}


def _own_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shrinkwrap")
    except PackageNotFoundError:
        return "0+source"


def check_output_dir(out: Path, force: bool = False) -> list[str]:
    """Fail before any work if ``out`` cannot become a run directory; return what publishing
    would replace (an earlier run's files, which only ``force`` allows)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} exists and is not a directory")
    replaced: list[str] = []
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST_NAME).is_file():
            raise BadInputError(f"--out {out} is a non-empty directory that is not a shrinkwrap run; "
                                "refusing to overwrite it (even with --force)")
        replaced = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
        if not force:
            shown = ", ".join(n for n in replaced if not n.endswith((".pt", ".onnx"))) or ", ".join(replaced)
            raise BadInputError(f"--out {out} already holds a shrinkwrap run ({shown}); pass --force to "
                                "replace it, or choose another --out")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".shrinkwrap-probe-", dir=parent):
            pass
    except OSError as exc:
        raise BadInputError(f"--out {out} cannot be written: {exc.strerror or exc}") from None
    return replaced


def sparsity_said(built: BuiltVariant) -> str:
    """What pruning did, in words: a variant that prunes nothing has only its weights' natural zeros."""
    sp = built.sparsity
    if built.pruning.requested <= 0:
        return f"not pruned; natural zeros {sp.achieved:.1%} of the weights"
    asked = f" of {built.pruning.requested:.3f} requested" if sp.shortfall else ""
    return f"pruned sparsity {sp.achieved:.3f} achieved{asked}"


def export(opts: ExportOptions, reporter: Reporter = SILENT, inputs: Inputs | None = None) -> Manifest:
    """Build every requested variant, write the artifacts and the manifest into ``opts.out``."""
    replaced = check_output_dir(opts.out, opts.force)
    if inputs is None:
        inputs = load_inputs(opts.model, opts.preprocess, opts.calibration, opts.evaluation, reporter)
    set_quantized_engine()
    recipe = inputs.recipe(opts.compression, opts.calibration, opts.evaluation.max_accuracy_drop, reporter)
    out = Path(opts.out)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.resolve().parent))
    os.chmod(stage, default_mode(directory=True))
    try:
        artifacts, references, not_written = [], [], []
        for spec in opts.specs():
            formats = formats_for(spec, opts.formats)
            if not formats:  # nothing it can be written in: not built at all
                said = (f"{spec.name} has no artifact in --formats {','.join(opts.formats or ())}: it is written "
                        f"as {', '.join(spec.formats)} only (a peer row is another tool's file)")
                not_written.append(said)
                reporter.say(said)
                continue
            reporter.say(f"{spec.name}: building ({spec.description})")
            built = with_shortfall(recipe.build(spec))
            refused = {f: r for f in formats if (r := refusal(get_writer(f), built)) is not None}
            for fmt, reason in refused.items():
                not_written.append(f"{spec.name} has no {fmt} artifact: {reason}")
                reporter.say(f"{spec.name}: no {fmt} ({reason})")
            formats = tuple(f for f in formats if f not in refused)
            if not formats:
                continue
            reporter.say(f"{spec.name}: writing {', '.join(formats)} ({sparsity_said(built)})")
            warnings = list(dict.fromkeys([*built.warnings, *degeneracy_warnings(spec, built, inputs)]))
            for w in warnings:
                reporter.say(f"⚠ {w}")
            refs, arts = write_variant(spec, built, inputs, opts.command, stage, warnings, formats, opts.writing)
            references += refs
            artifacts += arts
        if not artifacts:
            raise BadInputError(f"no variant can be written in --formats {','.join(opts.formats or ())}: "
                                + "; ".join(not_written))
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            model=inputs.loaded.arch, weights=inputs.loaded.weights, command=opts.command,
            versions=library_versions(), artifacts=artifacts, references=references,
            notes=[*_notes(inputs), *not_written])
        write_manifest(stage, manifest)
        if replaced:
            reporter.say(f"--force: replacing the earlier run in {out}: {', '.join(replaced)}")
        _publish(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    reporter.say(f"wrote {len(artifacts)} artifacts and {MANIFEST_NAME} to {out}")
    return manifest


def with_shortfall(built: BuiltVariant) -> BuiltVariant:
    """``built`` with its sparsity shortfall (if any) in its sparsity record and its warnings."""
    said = sparsity_shortfall(built.sparsity, built.pruning)
    if said is None:
        return built
    return dataclasses.replace(built, sparsity=dataclasses.replace(built.sparsity, shortfall=said),
                               warnings=[*built.warnings, said])


def degeneracy_warnings(spec: VariantSpec, built: BuiltVariant, inputs: Inputs) -> list[str]:
    """Layers pruned to all zeros, and outputs that no longer depend on the input (on the calibration
    images, in the eager model): what parity alone cannot see, since a degenerate artifact matches
    its degenerate reference exactly."""
    out = []
    empty = [layer.name for layer in built.sparsity.per_layer if layer.total and layer.zeros == layer.total]
    if empty:
        out.append(f"{DEGENERATE}: {spec.name} has {len(empty)} layer(s) pruned to all zeros: {', '.join(empty[:6])}"
                   + (" ..." if len(empty) > 6 else ""))
    images = inputs.calib_images[:16]
    if len(images) > 1:
        variation = output_variation(model_logits(built.model, images))
        if variation < DEGENERATE_VARIATION:
            out.append(degenerate_warning(spec.name, variation))
    return out


def write_variant(spec: VariantSpec, built: BuiltVariant, inputs: Inputs, command: str,
                  stage: Path, warnings: list[str] = (), formats: tuple[str, ...] | None = None,
                  settings: WriterSettings = WriterSettings()) -> tuple[list[ArtifactRecord], list[ArtifactRecord]]:
    """Write the variant's reference (when it is its own) and one file per format (default: the variant's
    own); their records."""
    example = synthetic_images(2, inputs.preprocess, seed=1)
    versions = library_versions()

    def written(fmt: str) -> ArtifactRecord:
        writer = get_writer(fmt)
        name = f"{spec.name}{writer.suffix}"
        result = writer.write(built, example, stage / name, settings) or WriteResult()
        return record(spec, built, inputs, fmt, name, stage, command, versions, list(warnings), result)

    refs = [written(Format.EAGER)] if spec.compare_with is None else []
    return refs, [written(fmt) for fmt in (formats if formats is not None else spec.formats)]


def record(spec: VariantSpec, built: BuiltVariant, inputs: Inputs, fmt: str, name: str, stage: Path,
           command: str, versions: dict[str, str], warnings: list[str] | None = None,
           result: WriteResult = WriteResult()) -> ArtifactRecord:
    path = stage / name
    decisions = dict(built.decisions)
    if spec.compare_with is not None:
        decisions[COMPARE_WITH] = spec.compare_with
    lane_reference = None
    if result.lane_reference is not None:
        ref = stage / result.lane_reference
        lane_reference = LaneReference(path=result.lane_reference, sha256=sha256_file(ref), bytes=ref.stat().st_size,
                                       lane=(result.quantization or built.quant).lane or "")
    return ArtifactRecord(
        variant=spec.name, format=fmt, path=name, bytes=path.stat().st_size, sha256=sha256_file(path),
        precision=spec.precision, model=inputs.loaded.arch, num_classes=inputs.loaded.num_classes,
        input=input_spec(inputs), sparsity=built.sparsity, quantization=result.quantization or built.quant,
        pruning=built.pruning,
        weights=inputs.loaded.weights, params=built.params, nonzero_params=built.nonzero_params,
        versions=versions, command=command, decisions=decisions, warnings=list(warnings or []),
        macs=built.macs, channels=built.channels, finetune=built.finetune, compile=result.compile,
        lane_reference=lane_reference)


def input_spec(inputs: Inputs) -> InputSpec:
    p = inputs.preprocess
    return InputSpec(shape=[-1, 3, p.crop, p.crop], dtype="float32", resize=p.resize, crop=p.crop,
                     mean=list(p.mean), std=list(p.std), input_name=INPUT_NAME, output_name=OUTPUT_NAME)


def _notes(inputs: Inputs) -> list[str]:
    notes = []
    if not inputs.loaded.weights.trained:
        notes.append(inputs.loaded.weights.label)
    if inputs.calib_source == SYNTHETIC:
        notes.append("calibrated on synthetic inputs: INT8 activation ranges are not those of real images")
    waited = openmp.chosen_note()
    if waited:
        notes.append(waited)
    return notes


def _publish(stage: Path, out: Path) -> None:
    """Move the finished staging directory to ``out``, replacing an earlier run there."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

