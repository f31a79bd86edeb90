"""The sweep: a real run dir (built here without the exporter), subprocess cells, failures, flags."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from runtimes import bench as bench_mod
from runtimes import cell as cell_mod
from runtimes.artifact import (ArtifactRecord, Format, InputSpec, Manifest, Precision,
                               PruneRecord, QuantRecord, SparsityRecord, WeightsRecord,
                               sha256_file, write_manifest)
from runtimes.base import Device, Support
from runtimes.bench import FP16_CPU_FLAG, ZSTD_LEVEL, bench, flag_cells, size_record
from runtimes.cell import CellSpec, run_cell, time_runs
from runtimes.errors import ArtifactError, BadInputError, RuntimeUnavailable
from runtimes.results import (RESULTS_CSV_NAME, RESULTS_NAME, Cell, LatencyStats, Status,
                              read_results)

FAST = dict(min_time_s=0.05, min_iters=3, warmup=1)
WEIGHTS = WeightsRecord(source="random", trained=False, label="UNTRAINED (random weights)")
CPU_RUNTIMES = ("eager", "torchscript", "ort-cpu")
CUDA_RUNTIMES = ("eager-cuda", "torchscript-cuda", "ort-cuda")


def record(variant: str, fmt: Format, path: str, data: bytes | None = None, run_dir: Path | None = None,
           precision: Precision = Precision.FP32, params: int = 100, nonzero: int = 100) -> ArtifactRecord:
    f = (run_dir / path) if run_dir else None
    return ArtifactRecord(
        variant=variant, format=fmt, path=path, bytes=f.stat().st_size if f else 0,
        sha256=sha256_file(f) if f else "0" * 64, precision=precision, model="resnet18",
        num_classes=10,
        input=InputSpec(shape=[-1, 3, 64, 64], dtype="float32", resize=64, crop=64,
                        mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        sparsity=SparsityRecord(requested=0.0, achieved=1 - nonzero / params, zeros=params - nonzero,
                                total=params),
        quantization=QuantRecord(backend=None, scheme=None),
        pruning=PruneRecord(method=None, scope=None, order=None, requested=0.0),
        weights=WEIGHTS, params=params, nonzero_params=nonzero, versions={}, command="test")


def write_run_manifest(run_dir: Path, artifacts: list[ArtifactRecord], refs: list[ArtifactRecord]) -> None:
    write_manifest(run_dir, Manifest(schema_version=1, created="2025-01-01T00:00:00+00:00",
                                     model="resnet18", weights=WEIGHTS, command="test",
                                     versions={}, artifacts=artifacts, references=refs))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """fp32 resnet18 (10 classes, 64x64): TorchScript, ONNX and the eager state_dict."""
    import torch

    from runtimes.structure import build_float_model

    run_dir = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    model = build_float_model("resnet18", 10).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.jit.freeze(torch.jit.trace(model, x)).save(str(run_dir / "fp32.pt"))
    torch.onnx.export(model, (x,), str(run_dir / "fp32.onnx"), dynamo=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    torch.save(model.state_dict(), run_dir / "fp32.eager.pt")
    params = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(p.count_nonzero()) for p in model.parameters())
    arts = [record("fp32", Format.TORCHSCRIPT, "fp32.pt", run_dir=run_dir, params=params, nonzero=nonzero),
            record("fp32", Format.ONNX, "fp32.onnx", run_dir=run_dir, params=params, nonzero=nonzero)]
    refs = [record("fp32", Format.EAGER, "fp32.eager.pt", run_dir=run_dir, params=params, nonzero=nonzero)]
    write_run_manifest(run_dir, arts, refs)
    return run_dir


@pytest.fixture
def run_dir(pristine, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(pristine, dst)
    return dst


@pytest.fixture
def fast_zstd(monkeypatch):
    # Level 19 takes ~20 s per 45 MB file; the level is not what these tests are about.
    monkeypatch.setattr(bench_mod, "ZSTD_LEVEL", 1)


def test_sweep_runs_every_cell_with_reasons_and_accuracy(run_dir, fast_zstd, tmp_path):
    rng = np.random.default_rng(1)
    npz = tmp_path / "eval.npz"
    np.savez(npz, images=rng.standard_normal((10, 3, 64, 64)).astype(np.float32),
             labels=rng.integers(0, 10, 10).astype(np.int64))
    seen = []
    res = bench(run_dir, runtimes=[*CPU_RUNTIMES, *CUDA_RUNTIMES], batches=(4,), threads=1,
                eval_tensors=npz, progress=lambda done, total, c: seen.append((done, total, c.runtime)),
                command="pytest", **FAST)
    # 1 eager reference x 2 eager runtimes + 2 artifacts x 4 other runtimes
    assert len(res.cells) == 10
    assert [s[0] for s in seen] == list(range(1, 11)) and {s[1] for s in seen} == {10}
    by = {(c.runtime, c.format): c for c in res.cells}
    for rt, fmt in [("eager", "eager"), ("torchscript", "torchscript"), ("ort-cpu", "onnx")]:
        c = by[(rt, fmt)]
        assert c.status is Status.OK, c.reason
        assert c.latency_ms.iterations >= 3 and c.latency_ms.median > 0
        assert c.latency_ms.min <= c.latency_ms.median <= c.latency_ms.max
        assert c.throughput == pytest.approx(4 * 1000 / c.latency_ms.median)
        assert c.eval_images == 10 and 0 <= c.top1 <= c.top5 <= 100
        assert c.size.compression == "zstd-1" and 0 < c.size.compressed_bytes < c.size.bytes * 1.01
        assert c.threads == 1 and c.runtime_info["timing"]
    # same weights: every runtime ranks the 10 images the same way
    assert len({by[k].top1 for k in [("eager", "eager"), ("torchscript", "torchscript"),
                                     ("ort-cpu", "onnx")]}) == 1
    for rt in CUDA_RUNTIMES:
        cuda = [c for c in res.cells if c.runtime == rt]
        assert cuda and all(c.status is Status.SKIPPED and c.reason for c in cuda)
        assert all(c.device == "cuda" for c in cuda)
    mismatch = by[("ort-cpu", "torchscript")]
    assert mismatch.status is Status.SKIPPED and "onnx" in mismatch.reason
    assert res.environment.threads == 1 and res.settings["batches"] == [4]
    assert read_results(run_dir) == res
    rows = list(csv.DictReader(io.StringIO((run_dir / RESULTS_CSV_NAME).read_text())))
    assert len(rows) == 10


def test_unknown_runtime_is_bad_input(run_dir):
    with pytest.raises(BadInputError, match="unknown runtime 'nope'"):
        bench(run_dir, runtimes=["eager", "nope"], **FAST)
    with pytest.raises(BadInputError, match="batch"):
        bench(run_dir, runtimes=["eager"], batches=(0,), **FAST)
    with pytest.raises(BadInputError, match="not in this run"):
        bench(run_dir, runtimes=["eager"], variants=["int8"], **FAST)
    assert not (run_dir / RESULTS_NAME).exists()


def test_modified_artifact_is_refused_and_nothing_written(run_dir):
    with open(run_dir / "fp32.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match=r"fp32.onnx \(modified\)"):
        bench(run_dir, runtimes=["ort-cpu"], **FAST)
    assert not (run_dir / RESULTS_NAME).exists()
    assert not (run_dir / RESULTS_CSV_NAME).exists()


def test_hanging_cell_times_out_and_crashing_cell_is_recorded(run_dir, fast_zstd, monkeypatch):
    monkeypatch.setenv("SHRINKWRAP_TEST_CELL_SLEEP", "eager=60")
    monkeypatch.setenv("SHRINKWRAP_TEST_CELL_CRASH", "torchscript")
    res = bench(run_dir, runtimes=["eager", "torchscript", "ort-cpu"], batches=(1,), timeout_s=4,
                **FAST)
    by = {(c.runtime, c.format): c for c in res.cells}
    hung = by[("eager", "eager")]
    assert hung.status is Status.ERROR and hung.reason == "timed out after 4 s"
    assert 3.5 < hung.wall_s < 30 and hung.precision == "fp32"
    crashed = by[("torchscript", "torchscript")]
    assert crashed.status is Status.ERROR
    assert crashed.reason == "cell process exited with status 70: simulated crash (SHRINKWRAP_TEST_CELL_CRASH)"
    assert by[("ort-cpu", "onnx")].status is Status.OK  # the sweep went on
    assert json.loads((run_dir / RESULTS_NAME).read_text())["cells"][0]["status"] == "error"


def test_libtorch_cpp_cell_when_runner_is_built(run_dir, fast_zstd):
    from runtimes import libtorch_cpp

    # Builds the runner on first use (~20 s) when a compiler is present, as a user's first run would.
    res = bench(run_dir, runtimes=["libtorch-cpp"], batches=(2,), **FAST)
    (c,) = [c for c in res.cells if c.format == "torchscript"]
    if libtorch_cpp.unavailable_reason():
        assert c.status is Status.SKIPPED and c.reason == libtorch_cpp.unavailable_reason()
    else:
        assert c.status is Status.OK, c.reason
        assert c.latency_ms.iterations >= 3 and c.runtime_info["timing"] == "runtime's own bench()"


# ---------------------------------------------------------------- in-process cell logic

class FakeRuntime:
    """Stands in for a registered runtime; behaviour set per test."""

    device = Device.CPU

    def __init__(self, delay_s=0.0, support=Support.yes(), fail_load=None, out_classes=10):
        self.delay_s, self.support, self.fail_load, self.out_classes = delay_s, support, fail_load, out_classes
        self.closed = False

    def supports(self, record):
        return self.support

    def load(self, run_dir, record):
        if self.fail_load:
            raise self.fail_load

    def run(self, batch):
        import time

        time.sleep(self.delay_s)
        return np.zeros((len(batch), self.out_classes), np.float32)

    def close(self):
        self.closed = True


@pytest.fixture
def fake_dir(tmp_path) -> Path:
    write_run_manifest(tmp_path, [record("fp16", Format.TORCHSCRIPT, "fp16.pt", precision=Precision.FP16)],
                       [record("fp16", Format.EAGER, "fp16.eager.pt", precision=Precision.FP16)])
    return tmp_path


def _spec(run_dir, **kw) -> CellSpec:
    base = dict(variant="fp16", format="torchscript", runtime="torchscript", batch=2, min_time_s=0.0,
                min_iters=3, warmup=1)
    base.update(kw)
    return CellSpec(run_dir, **base)


def test_cell_outcomes(fake_dir, monkeypatch):
    rt = FakeRuntime()
    monkeypatch.setattr(cell_mod, "get_runtime", lambda name, threads: rt)
    ok = run_cell(_spec(fake_dir))
    assert ok.status is Status.OK and ok.precision == "fp16" and ok.latency_ms.iterations == 3
    assert ok.runtime_info == {"timing": "run() incl. numpy conversion"} and rt.closed

    rt.support = Support.no("needs a GPU")
    assert (run_cell(_spec(fake_dir)).status, run_cell(_spec(fake_dir)).reason) == (Status.SKIPPED, "needs a GPU")

    rt.support, rt.fail_load = Support.yes(), RuntimeUnavailable("no provider")
    assert run_cell(_spec(fake_dir)).status is Status.SKIPPED

    rt.fail_load = ValueError("bad\nfile")
    err = run_cell(_spec(fake_dir))
    assert (err.status, err.reason) == (Status.ERROR, "ValueError: bad file")

    rt.fail_load, rt.out_classes = None, 7
    assert "shape (2, 7)" in run_cell(_spec(fake_dir)).reason

    missing = run_cell(_spec(fake_dir, format="onnx", runtime="ort-cpu"))
    assert missing.status is Status.ERROR and "no 'onnx' artifact" in missing.reason
    assert "ArtifactError" in run_cell(_spec(fake_dir / "nope")).reason


def test_slow_cell_is_capped_by_max_time():
    calls = []

    def slow(x):
        import time

        calls.append(1)
        time.sleep(0.05)
        return x

    times, warm, _ = time_runs(slow, np.zeros(1), min_time_s=10, min_iters=100, warmup=5,
                               max_time_s=0.45)
    assert warm == 3  # warm-up stops once it has used a third of the budget
    assert 4 <= len(times) <= 7 and len(calls) == warm + len(times)
    assert all(t >= 45 for t in times)


def _ok(variant, runtime, median, batch=1, device="cpu", precision="fp32") -> Cell:
    lat = LatencyStats(median, median, median, median, 0.0, median, median, 5, 1)
    return Cell(variant, "x", runtime, device, batch, precision, Status.OK, latency_ms=lat,
                throughput=batch * 1000 / median)


def test_flags_are_data_driven_and_fp16_rule():
    cells = [_ok("int8", "ort-cpu", 2.0), _ok("int8", "torchscript", 48.0), _ok("int8", "eager", 19.0),
             _ok("int8", "eager", 48.0, batch=8), _ok("int8", "ort-cuda", 500.0, device="cuda"),
             _ok("fp16", "torchscript", 900.0, precision="fp16"), _ok("fp16", "ort-cpu", 3.0, precision="fp16"),
             Cell("int8", "x", "eager-cuda", "cuda", 1, "int8", Status.SKIPPED, reason="no gpu")]
    out = flag_cells(cells)
    assert out[0].flags == [] and out[2].flags == [] and out[3].flags == [] and out[4].flags == []
    assert out[1].flags == ["pathological: 24x slower than ort-cpu for this variant; not a deployment option"]
    assert out[5].flags[0].startswith("pathological: 300x slower than ort-cpu") and out[5].flags[1] == FP16_CPU_FLAG
    assert out[6].flags == [] and out[7].flags == []


def test_size_record_uses_zstd(tmp_path):
    import zstandard

    data = bytes(100_000) + np.random.default_rng(0).bytes(1000)
    (tmp_path / "a.pt").write_bytes(data)
    size = size_record(tmp_path, record("fp32", Format.TORCHSCRIPT, "a.pt", params=10, nonzero=4))
    assert (size.bytes, size.compression, size.params, size.nonzero_params) == (len(data), f"zstd-{ZSTD_LEVEL}", 10, 4)
    assert size.compressed_bytes == len(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data))
    assert size.compressed_bytes < 2000
    assert dataclasses.replace(size, nonzero_params=4).sparsity == pytest.approx(0.6)
