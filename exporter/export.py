"""The export pipeline: model → variants → artifacts + manifest, staged then published.

Everything is written into a hidden staging directory next to ``--out`` and moved
into place only when every artifact and the manifest exist, so an interrupted or
failed export never leaves a run directory whose manifest names a missing or
truncated file.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from exporter import serialize
from exporter.data import ImageSet, load_image_folder, synthetic_images
from exporter.errors import BadInputError
from exporter.models import LoadedModel, Preprocess
from exporter.recipe import BuiltVariant, Calibration, CompressionOptions, Recipe
from exporter.sensitivity import EvalSet
from exporter.variants import VariantSpec, get_variant
from runtimes.artifact import (MANIFEST_NAME, SCHEMA_VERSION, ArtifactRecord, Format, InputSpec, default_mode,
                               Manifest, PruneRecord, QuantRecord, atomic_write_bytes,
                               sha256_file, write_manifest)
from runtimes.structure import set_quantized_engine

INPUT_NAME = "input"
OUTPUT_NAME = "logits"

Progress = Callable[[str], None]


@dataclass
class ExportRequest:
    loaded: LoadedModel
    preprocess: Preprocess
    variants: list[VariantSpec]
    options: CompressionOptions
    out: Path
    calib_data: Path | None = None
    calib_images: int = 256
    command: str = ""
    eval_set: EvalSet | None = None  # labelled images for the budgeted (auto) variant
    max_accuracy_drop: float = 1.0


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


def check_output_dir(out: Path) -> None:
    """Fail before any work if ``out`` cannot become a run directory."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise BadInputError(f"--out {out} is a non-empty directory that is not a shrinkwrap run; "
                            "refusing to overwrite it")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".shrinkwrap-probe-", dir=parent):
            pass
    except OSError as exc:
        raise BadInputError(f"--out {out} cannot be written: {exc.strerror or exc}") from None


def calibration_set(req: ExportRequest, progress: Progress) -> tuple[Calibration, ImageSet | None]:
    if req.calib_data is None:
        progress(f"calibration: {req.calib_images} SYNTHETIC inputs (no --calib-data given)")
        return Calibration(synthetic_images(req.calib_images, req.preprocess, seed=0), "synthetic"), None
    images = load_image_folder(req.calib_data, req.preprocess, limit=req.calib_images,
                               num_classes=req.loaded.num_classes)
    progress(f"calibration: {len(images.images)} images from {req.calib_data} "
             f"({images.skipped} unreadable or non-image files skipped)")
    return Calibration(images.images, str(req.calib_data)), images


def run_export(req: ExportRequest, progress: Progress = lambda msg: None) -> Manifest:
    """Build every requested variant, write the artifacts and the manifest into ``req.out``."""
    check_output_dir(req.out)
    set_quantized_engine()
    calib, _ = calibration_set(req, progress)
    recipe = Recipe(req.loaded, calib, req.options)
    out = Path(req.out)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.resolve().parent))
    os.chmod(stage, default_mode(directory=True))
    try:
        artifacts, references = [], []
        for spec in req.variants:
            progress(f"{spec.name}: building ({spec.description})")
            if spec.peer:
                artifacts.append(_write_peer(spec, req, recipe, calib, stage))
                continue
            if spec.budgeted:
                from exporter import autotune

                if req.eval_set is None:
                    raise BadInputError(f"variant {spec.name!r} needs --eval-data (labelled images) "
                                        "to hold its accuracy budget")
                built = autotune.search(recipe, spec, req.eval_set, req.max_accuracy_drop, progress)
            else:
                built = recipe.build(spec)
            progress(f"{spec.name}: writing TorchScript and ONNX "
                     f"(sparsity {built.sparsity.achieved:.3f} achieved)")
            refs, arts = _write_variant(built, req, stage)
            references += refs
            artifacts += arts
        manifest = Manifest(
            schema_version=SCHEMA_VERSION, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            model=req.loaded.arch, weights=req.loaded.weights, command=req.command,
            versions=library_versions(), artifacts=artifacts, references=references,
            notes=_notes(req, calib))
        write_manifest(stage, manifest)
        _publish(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    progress(f"wrote {len(artifacts)} artifacts and {MANIFEST_NAME} to {out}")
    return manifest


def _notes(req: ExportRequest, calib: Calibration) -> list[str]:
    notes = []
    if not req.loaded.weights.trained:
        notes.append(req.loaded.weights.label)
    if calib.source == "synthetic":
        notes.append("calibrated on synthetic inputs: INT8 activation ranges are not those of real images")
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


def input_spec(req: ExportRequest) -> InputSpec:
    p = req.preprocess
    return InputSpec(shape=[-1, 3, p.crop, p.crop], dtype="float32", resize=p.resize, crop=p.crop,
                     mean=list(p.mean), std=list(p.std), input_name=INPUT_NAME, output_name=OUTPUT_NAME)


def _record(req: ExportRequest, stage: Path, name: str, variant: str, fmt: Format, built: BuiltVariant | None,
            spec: VariantSpec, quant: QuantRecord, pruning: PruneRecord, sparsity, params: int, nonzero: int,
            decisions: dict | None = None) -> ArtifactRecord:
    path = stage / name
    return ArtifactRecord(
        variant=variant, format=fmt, path=name, bytes=path.stat().st_size, sha256=sha256_file(path),
        precision=spec.precision, model=req.loaded.arch, num_classes=req.loaded.num_classes,
        input=input_spec(req), sparsity=sparsity, quantization=quant, pruning=pruning,
        weights=req.loaded.weights, params=params, nonzero_params=nonzero,
        versions=library_versions(), command=req.command,
        decisions=dict(decisions or (built.decisions if built else {})))


def _example(req: ExportRequest) -> torch.Tensor:
    return synthetic_images(2, req.preprocess, seed=1)


def _write_variant(built: BuiltVariant, req: ExportRequest, stage: Path,
                   name: str | None = None) -> tuple[list[ArtifactRecord], list[ArtifactRecord]]:
    spec = built.spec
    name = name or spec.name
    example = _example(req)
    common = dict(spec=spec, quant=built.quant, pruning=built.pruning, sparsity=built.sparsity,
                  params=built.params, nonzero=built.nonzero_params)
    buf = io.BytesIO()
    torch.save(built.model.state_dict(), buf)
    atomic_write_bytes(stage / f"{name}.eager.pt", buf.getvalue())
    refs = [_record(req, stage, f"{name}.eager.pt", name, Format.EAGER, built, **common)]
    arts = []
    if Format.TORCHSCRIPT in spec.formats:
        serialize.write_torchscript(built.model, example, stage / f"{name}.pt")
        arts.append(_record(req, stage, f"{name}.pt", name, Format.TORCHSCRIPT, built, **common))
    if Format.ONNX in spec.formats:
        if spec.half:
            fp32 = serialize.float_copy(built.model.inner)
            proto = serialize.to_float16(serialize.export_onnx(fp32, example, INPUT_NAME, OUTPUT_NAME))
        else:
            proto = serialize.export_onnx(built.model, example, INPUT_NAME, OUTPUT_NAME)
        serialize.check_and_write_onnx(proto, stage / f"{name}.onnx")
        arts.append(_record(req, stage, f"{name}.onnx", name, Format.ONNX, built, **common))
    return refs, arts


def _write_peer(spec: VariantSpec, req: ExportRequest, recipe: Recipe, calib: Calibration,
                stage: Path) -> ArtifactRecord:
    from exporter import prune

    base = get_variant(spec.compare_with or "fp32")
    built = recipe.build(base)
    with tempfile.TemporaryDirectory(dir=stage) as tmp:
        fp32_path = Path(tmp) / "fp32.onnx"
        serialize.check_and_write_onnx(
            serialize.export_onnx(built.model, _example(req), INPUT_NAME, OUTPUT_NAME), fp32_path)
        serialize.ort_quantize_static(fp32_path, stage / f"{spec.name}.onnx", calib.images, INPUT_NAME)
    sparsity = prune.measure_sparsity(built.model, 0.0)
    quant = QuantRecord(backend="onnxruntime", scheme="quantize_static QDQ, per-channel INT8 weights, "
                        "UINT8 activations, MinMax calibration", calib_method="minmax",
                        calib_source=calib.source, calib_images=int(len(calib.images)))
    return _record(req, stage, f"{spec.name}.onnx", spec.name, Format.ONNX, None, spec, quant,
                   PruneRecord(None, None, None, 0.0), sparsity, built.params, built.nonzero_params,
                   decisions={"compare_with": spec.compare_with or "fp32", "peer": True})
