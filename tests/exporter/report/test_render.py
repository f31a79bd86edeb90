"""The report: rendered from a hand-built results.json (+ manifest and eager state_dicts)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from exporter import report
from exporter.analysis.records import SweepPoint, SweepReport, write_sweep
from exporter.report import figures, sections
from runtimes.bench.results import (BenchSettings, Cell, Environment, LatencyStats, Results, SizeRecord, Status,
                                    write_results)
from runtimes.errors import ArtifactError
from runtimes.manifest import (ArtifactRecord, Format, InputSpec, LayerSparsity, Manifest, Precision,
                               PruneRecord, QuantRecord, SparsityRecord, WeightsRecord, write_manifest)

WEIGHTS = WeightsRecord(source="random", trained=False, label="random init, seed 0")
ENV = Environment(cpu_model="Test CPU 9000", cpu_flags=["avx2", "avx512_vnni"], cores_logical=2,
                  cores_physical=1, threads=2, gpu_name="none", gpu_driver="none",
                  cuda_version="none", versions={"python": "3.11.9", "torch": "2.13.0"},
                  platform="Linux-test")
MB = 1_000_000


def _rec(variant, fmt, path, precision, per_layer=()) -> ArtifactRecord:
    return ArtifactRecord(
        variant=variant, format=fmt, path=path, bytes=1, sha256="0" * 64, precision=precision,
        model="resnet18", num_classes=10,
        input=InputSpec(shape=[-1, 3, 64, 64], dtype="float32", resize=64, crop=64,
                        mean=[0.5] * 3, std=[0.5] * 3),
        sparsity=SparsityRecord(requested=0.5, achieved=0.5, zeros=5, total=10,
                                per_layer=list(per_layer)),
        quantization=QuantRecord(backend=None, scheme=None,
                                 keep_float=["fc"] if precision is Precision.MIXED else []),
        pruning=PruneRecord(method=None, scope=None, order=None, requested=0.5),
        weights=WEIGHTS, params=10, nonzero_params=5, versions={}, command="test")


def _save_references(run_dir: Path) -> np.ndarray:
    """fp32, int8, fp16 and mixed eager state_dicts whose classifiers are the fp32 one, half pruned."""
    import torch

    from runtimes import architectures, structure

    torch.manual_seed(0)
    fp32 = architectures.build_float_model("resnet18", 10)
    torch.save(fp32.state_dict(), run_dir / "fp32.eager.pt")
    w = fp32.fc.weight.detach().clone()
    pruned = torch.where(w.abs() < w.abs().median(), torch.zeros_like(w), w)

    int8 = structure.skeleton("resnet18", 10, "int8")
    scales = pruned.abs().amax(dim=1) / 127
    q = torch.quantize_per_channel(pruned, scales, torch.zeros(10, dtype=torch.long), 0, torch.qint8)
    int8.fc.set_weight_bias(q, fp32.fc.bias.detach())
    torch.save(int8.state_dict(), run_dir / "int8.eager.pt")

    fp16 = structure.skeleton("resnet18", 10, "fp16")
    fp16.inner.fc.weight.data = pruned.half()
    torch.save(fp16.state_dict(), run_dir / "fp16.eager.pt")

    mixed = structure.skeleton("resnet18", 10, "mixed", keep=["fc"])
    mixed.fc[1].weight.data = pruned.clone()
    torch.save(mixed.state_dict(), run_dir / "mixed.eager.pt")
    return q.dequantize().numpy()


def _lat(median: float) -> LatencyStats:
    return LatencyStats(median, median * 1.1, median * 1.2, median, 0.1, median * 0.9,
                        median * 1.3, 20, 3)


def _cell(variant, fmt, runtime, median=None, *, batch=1, precision="fp32", status=Status.OK,
          reason="", top1=None, size_mb=40.0, flags=(), device=None) -> Cell:
    size = SizeRecord(int(size_mb * MB), int(size_mb * 0.8 * MB), "zstd-19", 1000, 400)
    return Cell(variant, fmt, runtime, device or ("cuda" if runtime.endswith("-cuda") else "cpu"),
                batch, precision, status, reason,
                latency_ms=_lat(median) if median is not None else None,
                throughput=batch * 1000 / median if median else None, size=size, threads=2,
                top1=top1, top5=None if top1 is None else min(100.0, top1 + 20), 
                eval_images=None if top1 is None else 100, flags=list(flags))


PATHO = "pathological: 450x slower than ort-cpu for this variant; not a deployment option"
FP16 = "FP16 in PyTorch on CPU has no fast kernels"


def hand_results() -> Results:
    cells = [
        _cell("fp32", "eager", "eager", 10.0, top1=70.0),
        _cell("fp32", "torchscript", "torchscript", 9.0, top1=70.0),
        _cell("fp32", "torchscript", "ort-cpu", status=Status.SKIPPED,
              reason="ort-cpu runs onnx files, not torchscript"),
        _cell("fp32", "onnx", "ort-cpu", 8.0, top1=70.0),
        _cell("fp32", "onnx", "ort-cpu", 30.0, batch=8, top1=70.0),
        _cell("int8", "torchscript", "torchscript", 5.0, precision="int8", top1=69.5, size_mb=11),
        _cell("int8", "torchscript", "libtorch-cpp", precision="int8", status=Status.ERROR,
              reason="RuntimeError: boom", size_mb=11),
        _cell("int8", "onnx", "ort-cpu", 2.0, precision="int8", top1=69.5, size_mb=11),
        _cell("ort-quantize-static", "onnx", "ort-cpu", 2.5, precision="int8", top1=60.0, size_mb=11),
        _cell("fp16", "torchscript", "torchscript", 900.0, precision="fp16", top1=68.0, size_mb=20,
              flags=[PATHO, FP16]),
        _cell("fp16", "onnx", "ort-cpu", 1.5, precision="fp16", top1=68.0, size_mb=20),
        _cell("weird", "onnx", "ort-cpu", 4.0, top1=70.0, size_mb=5),
        _cell("weird", "onnx", "ort-cuda", status=Status.SKIPPED, reason="no CUDA device"),
        _cell("int8", "onnx", "ort-cuda", status=Status.SKIPPED, reason="no CUDA device"),
        _cell("fp32", "eager", "eager-cuda", status=Status.SKIPPED, reason="torch has no CUDA"),
        _cell("fp32", "torchscript", "ort-cuda", status=Status.SKIPPED,
              reason="ort-cuda runs onnx files, not torchscript"),
    ]
    return Results(schema_version=1, created="2025-01-01T00:00:00+00:00", run_dir="run",
                   model="resnet18", weights=WEIGHTS, environment=ENV,
                   command="shrinkwrap bench run --batches 1,8",
                   settings=BenchSettings(batches=[1, 8], threads=2, min_time_s=1.0, min_iters=10,
                                          warmup=3, timeout_s=300, max_time_s=30),
                   cells=cells, notes=["one fresh subprocess per cell"])


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("report")
    dequant = _save_references(run_dir)
    layers = [LayerSparsity(f"layer{i}.conv", 5, 10, s) for i, s in enumerate([0.2, 0.5, 0.9])]
    refs = [_rec(v, Format.EAGER, f"{v}.eager.pt", p) for v, p in
            [("fp32", Precision.FP32), ("int8", Precision.INT8), ("fp16", Precision.FP16),
             ("mixed", Precision.MIXED)]]
    arts = [_rec("int8", Format.ONNX, "int8.onnx", Precision.INT8, layers),
            _rec("fp16", Format.ONNX, "fp16.onnx", Precision.FP16, layers[:2])]
    write_manifest(run_dir, Manifest(1, "2025-01-01", "resnet18", WEIGHTS, "test", {}, arts, refs))
    write_results(run_dir, hand_results())
    point = SweepPoint("int8", "quantize-then-prune", 0.5, 0.5, None, None, 30.0, 1000, 600, 1.0)
    write_sweep(run_dir, SweepReport("resnet18", "synthetic", 8, None, [0.5], [point] * 3))
    # a section registered from outside the report package, reading a typed record
    report.register_section("test-sweep", order=85)(lambda ctx: f"## Sweep\n\n{len(ctx.sweep.points)} points")
    try:
        path = report.render_report(run_dir, extra_sections=[lambda ctx: "## Extra\n\nhello extra"])
    finally:
        sections.unregister_section("test-sweep")
    return run_dir, path.read_text(), dequant


def test_header_and_environment(rendered):
    _, text, _ = rendered
    assert text.startswith("# shrinkwrap benchmark: resnet18")
    assert "**⚠ UNTRAINED (random weights): accuracy is meaningless.**" in text
    assert "`shrinkwrap bench run --batches 1,8`" in text
    assert "Test CPU 9000" in text and "avx2, avx512_vnni" in text and "**GPU:** none" in text
    assert "torch 2.13.0" in text
    assert "IO binding" in text and "subprocess" in text


def _table(text: str, title: str) -> str:
    start = text.index(f"### {title}\n")
    end = text.find("\n### ", start + 1)
    return text[start:end if end != -1 else None].split("\n## ")[0]


def test_tables_rows_reasons_and_flags(rendered):
    _, text, _ = rendered
    cpu = text[text.index("## CPU"):text.index("## CUDA")]
    fp32 = _table(cpu, "FP32")
    assert "| Variant | Format | Batch | eager | torchscript | libtorch-cpp | ort-cpu | img/s (best) |" in fp32
    assert "| fp32 | eager | 1 | 10.0 <sub>p90 11.0</sub> |  |  |  | 100.0 | 40.00 | 32.00 | 60.0% natural | 70.00 | 90.00 |" in fp32
    # a runtime that runs another format shows "—", and its reason is not listed
    assert "| fp32 | torchscript | 1 |  | 9.00 <sub>p90 9.90</sub> |  | — |" in fp32
    assert "| fp32 | onnx | 8 |  |  |  | 30.0 <sub>p90 33.0</sub> | 266.7 |" in fp32
    assert "runs onnx files" not in text
    int8 = _table(cpu, "INT8 + pruning")
    assert "| int8 | torchscript | 1 |  | 5.00 <sub>p90 5.50</sub> | error [1] |  |" in int8
    assert "1. error (libtorch-cpp, batch 1): RuntimeError: boom" in int8
    assert "| ort-quantize-static | onnx | 1 |" in int8
    fp16 = _table(cpu, "FP16 + pruning")
    assert "| fp16 | torchscript | 1 |  | ⚠ 900 <sub>p90 990</sub> [1][2] |" in fp16
    assert f"1. ⚠ {PATHO}" in fp16 and f"2. ⚠ {FP16}" in fp16
    assert "| weird | onnx | 1 |" in _table(cpu, "Other")
    assert "### Mixed + pruning" not in text  # no cells, no table
    cuda = text[text.index("## CUDA"):text.index("## Speed-up")]
    assert "All 3 CUDA cells were skipped" in cuda
    assert cuda.count("- no CUDA device") == 1 and "- torch has no CUDA" in cuda


def test_speedups_and_recommendation(rendered):
    _, text, _ = rendered
    assert "Best INT8: `int8` as `onnx` on ort-cpu, 2.00 ms vs FP32 eager 10.00 ms: **5.00×**" in text
    assert "| torchscript | torchscript | 9.00 | 5.00 | 1.80× |" in text
    assert "| ort-cpu | onnx | 8.00 | 2.00 | 4.00× |" in text
    assert "2.00 ms vs 2.50 ms on ort-cpu: **1.25×**" in text
    rec = text[text.index("## Recommendation"):]
    # fp16/onnx is faster (1.5 ms) but 2 points below FP32 eager; int8 is within 1 point
    assert ("**CPU, batch 1:** `int8` as onnx on ort-cpu: 2.00 ms, zstd 8.80 MB; top-1 69.50% "
            "(fastest within 1 top-1 points of FP32 eager (70.00%))") in rec
    assert "**CPU, batch 8:** `fp32` as onnx on ort-cpu: 30.00 ms" in rec
    assert "**CUDA:** no ok, unflagged artifact cell." in rec
    assert "UNTRAINED: the accuracy criterion above is not meaningful" in rec


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_figures_are_valid_pngs_and_linked(rendered):
    run_dir, text, _ = rendered
    names = ["latency_vs_size_cpu", "latency_vs_top1_cpu", "sparsity_per_layer", "classifier_weights"]
    for name in names:
        path = run_dir / "figures" / f"{name}.png"
        w, h = _png_size(path)
        assert w > 300 and h > 200
        assert f"![{name}](figures/{name}.png)" in text
    assert not (run_dir / "figures" / "latency_vs_size_cuda.png").exists()


def test_extra_sections_hook(rendered):
    _, text, _ = rendered
    assert "## Extra\n\nhello extra" in text
    assert "## Sweep\n\n3 points" in text
    assert text.index("## Extra") < text.index("## Sweep")


def test_classifier_weight_dequantizes_int8(rendered):
    run_dir, _, dequant = rendered
    w = figures.classifier_weight(run_dir / "int8.eager.pt")
    np.testing.assert_array_equal(w, dequant)
    assert np.mean(w == 0) == pytest.approx(0.5, abs=0.01)
    assert figures.classifier_weight(run_dir / "mixed.eager.pt").shape == (10, 512)
    assert np.mean(figures.classifier_weight(run_dir / "fp16.eager.pt") == 0) == pytest.approx(0.5, abs=0.01)
    (run_dir / "junk.pt").write_bytes(b"not a state dict")
    with pytest.raises(ArtifactError, match="cannot load"):
        figures.classifier_weight(run_dir / "junk.pt")


def test_pareto_front():
    pts = [(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (4.0, 1.0), (2.0, 6.0)]
    assert figures.pareto_front(pts) == [0, 1, 3]
    assert figures.pareto_front([]) == []


def test_report_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactError, match="no results.json"):
        report.render_report(tmp_path)


def test_pareto_front_ignores_pathological_and_noisy_cells():
    import dataclasses

    from runtimes.bench.stability import assess

    good = _cell("int8", "onnx", "ort-cpu", 5.0)
    patho = dataclasses.replace(_cell("fp16", "torchscript", "torchscript", 1.0), pathological=True)
    noisy = dataclasses.replace(_cell("mixed", "onnx", "ort-cpu", 2.0), stability=assess([2.0] * 9, cores=1.5))
    pts = [patho, noisy, good]
    xs, ys = [1.0, 2.0, 5.0], [1.0, 1.0, 1.0]
    assert figures.trusted_front(pts, xs, ys, lambda x, y: (x, y)) == [2]
    assert figures.pareto_front(list(zip(xs, ys))) == [0]  # the untrusted point would have won


def test_a_pathological_cell_does_not_set_the_axes(tmp_path):
    import dataclasses

    cells = [_cell("int8", "onnx", "ort-cpu", 2.0), _cell("fp32", "onnx", "ort-cpu", 8.0),
             dataclasses.replace(_cell("fp16", "torchscript", "torchscript", 900.0, precision="fp16"),
                                 pathological=True, flags=[PATHO])]
    fig_path = figures.latency_vs_size(cells, "cpu", 1, tmp_path / "f.png")
    assert fig_path.read_bytes()[:4] == b"\x89PNG"
