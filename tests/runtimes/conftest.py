"""A tiny run directory built without the exporter (resnet18, 10 classes, 64x64).

Variants: fp32, fp16, int8 (minmax PTQ), mixed (INT8 body, FP32 fc), each with a
frozen TorchScript .pt, an ONNX file and an eager state_dict reference; plus the
peer ``ort-quantize-static`` (ONNX only, compared with fp32's reference).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from runtimes import architectures, structure
from runtimes.quant_lanes import eager_mode
from runtimes.manifest import (ArtifactRecord, Format, InputSpec, Manifest, Precision, PruneRecord,
                               QuantRecord, SparsityRecord, WeightsRecord, read_manifest, write_manifest)
from runtimes.records import sha256_file

ARCH, CLASSES, SIZE = "resnet18", 10, 64
SPEC = InputSpec(shape=[-1, 3, SIZE, SIZE], dtype="float32", resize=73, crop=SIZE,
                 mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
WEIGHTS = WeightsRecord(source="random", trained=False, label="UNTRAINED (random init, seed 0)")
DYNAMIC = {SPEC.input_name: {0: "batch"}, SPEC.output_name: {0: "batch"}}


def _calibration(n_batches: int = 2) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(8, 3, SIZE, SIZE, generator=g) for _ in range(n_batches)]


def _quantize(float_model: torch.nn.Module, keep: tuple[str, ...]) -> torch.nn.Module:
    from torch.ao.quantization import convert, prepare

    structure.set_quantized_engine()
    model = eager_mode.fuse(copy.deepcopy(float_model))
    qc = structure.qconfig("minmax")
    model.qconfig = qc
    eager_mode.keep_float(model, keep, qc)
    prepare(model, inplace=True)
    with torch.no_grad():
        for x in _calibration():
            model(x)
    return convert(model, inplace=True)


def _torchscript(model: torch.nn.Module, path: Path) -> None:
    with torch.no_grad():
        frozen = torch.jit.freeze(torch.jit.trace(model, torch.randn(1, 3, SIZE, SIZE), check_trace=False))
    torch.jit.save(frozen, str(path))


def _onnx(model: torch.nn.Module, path: Path, opset: int) -> None:
    torch.onnx.export(model, (torch.randn(2, 3, SIZE, SIZE),), str(path), dynamo=False,
                      opset_version=opset, input_names=[SPEC.input_name],
                      output_names=[SPEC.output_name], dynamic_axes=DYNAMIC)


def _fp16_onnx(fp32_onnx: Path, path: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(fp32_onnx)), keep_io_types=True), str(path))


def _peer_onnx(fp32_onnx: Path, path: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{SPEC.input_name: x.numpy()} for x in _calibration()])

        def get_next(self):
            return next(self._it, None)

    quantize_static(str(fp32_onnx), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def record(run_dir: Path, variant: str, fmt: Format, name: str, precision: Precision,
           keep: tuple[str, ...] = (), decisions: dict | None = None, params: int = 0) -> ArtifactRecord:
    p = run_dir / name
    quantized = precision in (Precision.INT8, Precision.MIXED)
    return ArtifactRecord(
        variant=variant, format=fmt, path=name, bytes=p.stat().st_size, sha256=sha256_file(p),
        precision=precision, model=ARCH, num_classes=CLASSES, input=SPEC,
        sparsity=SparsityRecord(requested=0.0, achieved=0.0, zeros=0, total=params),
        quantization=QuantRecord(backend="fbgemm" if quantized else None,
                                 scheme="static-ptq" if quantized else None,
                                 calib_method="minmax" if quantized else None,
                                 calib_source="synthetic" if quantized else None,
                                 calib_images=16 if quantized else None, keep_float=list(keep)),
        pruning=PruneRecord(method=None, scope=None, order=None, requested=0.0),
        weights=WEIGHTS, params=params, nonzero_params=params,
        versions={"torch": torch.__version__}, command="tests/runtimes/conftest.py",
        decisions=decisions or {})


def build_tiny_run_dir(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    fp32 = architectures.build_float_model(ARCH, CLASSES)
    params = sum(p.numel() for p in fp32.parameters())
    fp16 = structure.skeleton(ARCH, CLASSES, "fp16")
    fp16.inner.load_state_dict(fp32.state_dict())
    models = {
        "fp32": (fp32, Precision.FP32, ()),
        "fp16": (fp16.eval(), Precision.FP16, ()),
        "int8": (_quantize(fp32, ()), Precision.INT8, ()),
        "mixed": (_quantize(fp32, ("fc",)), Precision.MIXED, ("fc",)),
    }
    artifacts, references = [], []
    for variant, (model, precision, keep) in models.items():
        torch.save(model.state_dict(), run_dir / f"{variant}.eager.pt")
        _torchscript(model, run_dir / f"{variant}.pt")
        if variant == "fp16":
            _fp16_onnx(run_dir / "fp32.onnx", run_dir / "fp16.onnx")
        else:
            _onnx(model, run_dir / f"{variant}.onnx", opset=17 if precision == Precision.FP32 else 13)
        kw = dict(precision=precision, keep=keep, params=params)
        artifacts += [record(run_dir, variant, Format.TORCHSCRIPT, f"{variant}.pt", **kw),
                      record(run_dir, variant, Format.ONNX, f"{variant}.onnx", **kw)]
        references.append(record(run_dir, variant, Format.EAGER, f"{variant}.eager.pt", **kw))
    _peer_onnx(run_dir / "fp32.onnx", run_dir / "ort-quantize-static.onnx")
    artifacts.append(record(run_dir, "ort-quantize-static", Format.ONNX, "ort-quantize-static.onnx",
                            Precision.INT8, decisions={"compare_with": "fp32"}, params=params))
    write_manifest(run_dir, Manifest(
        schema_version=1, created="2024-01-01T00:00:00Z", model=ARCH, weights=WEIGHTS,
        command="tests/runtimes/conftest.py", versions={"torch": torch.__version__},
        artifacts=artifacts, references=references))
    return run_dir


# pytest resets warning filters per test, undoing structure.quiet_quantization_warnings().
_QUIET = ["ignore:.*torch.ao.quantization is deprecated", "ignore:.*reduce_range will be deprecated",
          "ignore:.*must run observer before calling calculate_qparams", "ignore:.*TypedStorage is deprecated",
          "ignore:.*quantized tensor creation functions", "ignore::DeprecationWarning:torch.onnx",
          "ignore::torch.jit.TracerWarning", "ignore:.*legacy TorchScript-based ONNX export",
          r"ignore:.*torch\.jit\.\w+. is deprecated"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            for spec in _QUIET:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared and read-only: copy it (``copy_run_dir``) before changing anything."""
    return build_tiny_run_dir(tmp_path_factory.mktemp("tiny-run"))


@pytest.fixture()
def copy_run_dir(tiny_run_dir: Path, tmp_path: Path):
    def make() -> Path:
        dst = tmp_path / "run"
        shutil.copytree(tiny_run_dir, dst)
        return dst

    return make


@pytest.fixture(scope="session")
def tiny_inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((10, 3, SIZE, SIZE), dtype=np.float32)


def _replace_record(run_dir: Path, path: str) -> None:
    """Re-hash one artifact after a test changed it, keeping the manifest consistent."""
    import dataclasses

    m = read_manifest(run_dir)
    fix = lambda r: dataclasses.replace(r, bytes=(run_dir / r.path).stat().st_size,  # noqa: E731
                                        sha256=sha256_file(run_dir / r.path)) if r.path == path else r
    write_manifest(run_dir, dataclasses.replace(m, artifacts=[fix(a) for a in m.artifacts],
                                                references=[fix(r) for r in m.references]))


@pytest.fixture()
def rehash():
    """``rehash(run_dir, path)``: record a deliberately changed artifact in the manifest."""
    return _replace_record


@pytest.fixture(scope="session")
def tiny_spec() -> InputSpec:
    return SPEC
