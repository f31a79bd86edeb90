"""Result records: JSON round-trip, CSV columns, clear errors on bad files, environment."""

from __future__ import annotations

import csv
import io
import json

import pytest

from runtimes.bench.environment import RELEVANT_FLAGS, collect_environment
from runtimes.bench.results import (CSV_COLUMNS, RESULTS_CSV_NAME, RESULTS_NAME, BenchSettings, Cell,
                                    Environment, LatencyStats, Results, SizeRecord, Status, read_results,
                                    write_results)
from runtimes.errors import ArtifactError
from runtimes.manifest import WeightsRecord

ENV = Environment(cpu_model="Test CPU", cpu_flags=["avx2", "fma"], cores_logical=2,
                  cores_physical=1, threads=2, gpu_name="none", gpu_driver="none",
                  cuda_version="none", versions={"python": "3.11", "torch": "2.x"},
                  platform="Linux")


def sample_results() -> Results:
    lat = LatencyStats(median=2.5, p90=3.0, p99=3.5, mean=2.6, std=0.2, min=2.1, max=3.9,
                       iterations=40, warmup=3)
    size = SizeRecord(bytes=1000, compressed_bytes=600, compression="zstd-19", params=100,
                      nonzero_params=40)
    ok = Cell("int8", "onnx", "ort-cpu", "cpu", 8, "int8", Status.OK, latency_ms=lat,
              throughput=3200.0, size=size, threads=2, runtime_info={"providers": ["CPU"], "n": 1},
              top1=71.25, top5=90.5, eval_images=100, flags=["pathological: 12x slower"], wall_s=1.5)
    skipped = Cell("int8", "onnx", "ort-cuda", "cuda", 8, "int8", Status.SKIPPED,
                   reason="no CUDA device", size=size)
    return Results(schema_version=1, created="2025-01-01T00:00:00+00:00", run_dir="/x",
                   model="resnet18", weights=WeightsRecord("random", False, "UNTRAINED"),
                   environment=ENV, command="shrinkwrap bench /x",
                   settings=BenchSettings(batches=[1, 8], threads=2), cells=[ok, skipped],
                   notes=["a note"])


def test_json_round_trip_keeps_types_and_values(tmp_path):
    res = sample_results()
    write_results(tmp_path, res)
    back = read_results(tmp_path)
    assert back == res
    assert back.cells[0].status is Status.OK
    assert isinstance(back.cells[0].latency_ms, LatencyStats)
    assert back.cells[0].size.sparsity == pytest.approx(0.6)
    assert back.cells[1].latency_ms is None and back.cells[1].reason == "no CUDA device"
    # numbers stay numbers in the file
    raw = json.loads((tmp_path / RESULTS_NAME).read_text())
    assert raw["cells"][0]["latency_ms"]["median"] == 2.5
    assert raw["cells"][0]["status"] == "ok"


def test_csv_has_one_flat_row_per_cell(tmp_path):
    write_results(tmp_path, sample_results())
    rows = list(csv.DictReader(io.StringIO((tmp_path / RESULTS_CSV_NAME).read_text())))
    assert len(rows) == 2
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["median_ms"] == "2.5" and rows[0]["compressed_bytes"] == "600"
    assert rows[0]["flags"] == "pathological: 12x slower"
    assert json.loads(rows[0]["runtime_info"]) == {"n": 1, "providers": ["CPU"]}
    assert rows[1]["status"] == "skipped" and rows[1]["median_ms"] == ""


def test_read_results_errors_are_clear(tmp_path):
    with pytest.raises(ArtifactError, match="no results.json"):
        read_results(tmp_path)
    (tmp_path / RESULTS_NAME).write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        read_results(tmp_path)
    (tmp_path / RESULTS_NAME).write_text(json.dumps({"schema_version": 99, "cells": []}))
    with pytest.raises(ArtifactError, match="schema_version"):
        read_results(tmp_path)
    (tmp_path / RESULTS_NAME).write_text(json.dumps({"schema_version": 1, "cells": [{"x": 1}]}))
    with pytest.raises(ArtifactError, match="does not match the results schema"):
        read_results(tmp_path)


def test_collect_environment_describes_this_machine():
    env = collect_environment(3)
    assert env.threads == 3
    assert env.cores_logical >= 1
    assert env.cpu_model and env.cpu_model != "unknown"
    assert set(env.cpu_flags) <= set(RELEVANT_FLAGS)
    assert set(env.versions) >= {"python", "torch", "torchvision", "onnx", "onnxruntime", "numpy"}
    assert env.versions["torch"][0].isdigit()
    import shutil

    import torch

    if not torch.cuda.is_available() and shutil.which("nvidia-smi") is None:
        assert (env.gpu_name, env.gpu_driver) == ("none", "none")
    else:
        assert env.gpu_name != "none"
    assert env.cuda_version == (torch.version.cuda or "none")  # the torch build's, GPU or not
