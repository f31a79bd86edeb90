"""The C++ runner: builds once (cached), and computes what the torchscript runtime computes.

The binary lives in the normal cache (``$SHRINKWRAP_CACHE`` or ~/.cache/shrinkwrap),
so the ~20 s g++ build happens once per machine and torch version, not per test.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from runtimes import libtorch_cpp, structure
from runtimes.errors import RuntimeUnavailable
from runtimes.manifest import read_manifest
from runtimes.registry import get_runtime

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


@pytest.fixture(scope="module")
def runner():
    return libtorch_cpp.ensure_runner()


def _record(run_dir, path):
    return next(a for a in read_manifest(run_dir).artifacts if a.path == path)


def _torchscript_output(run_dir, path, x):
    rt = get_runtime("torchscript")
    rt.load(run_dir, _record(run_dir, path))
    return rt.run(x)


def test_runner_is_built_and_cached(runner):
    assert runner.is_file() and runner.name == "runner"
    assert runner == libtorch_cpp.runner_path()
    assert libtorch_cpp.ensure_runner() == runner  # second call: no rebuild
    assert not list(runner.parent.glob(".runner.*.tmp"))


@pytest.mark.parametrize("path,atol", [("fp32.pt", 1e-5), ("int8.pt", 0.0), ("fp16.pt", 1e-3)])
def test_matches_torchscript_runtime(path, atol, runner, tiny_run_dir, tiny_inputs):
    x = tiny_inputs[:4]
    rt = get_runtime("libtorch-cpp", 1)
    assert rt.supports(_record(tiny_run_dir, path)).ok
    rt.load(tiny_run_dir, _record(tiny_run_dir, path))
    times, out = rt.bench(x, min_time_ms=0, min_iters=3, warmup=1)
    assert len(times) == 3 and all(t > 0 for t in times)
    assert out.shape == (4, 10) and out.dtype == np.float32
    np.testing.assert_allclose(out, _torchscript_output(tiny_run_dir, path, x), rtol=0, atol=atol)
    info = rt.info()
    assert info["threads"] == 1 and info["quantized_engine"] == structure.QUANT_ENGINE
    assert info["torch"] == __import__("torch").__version__.split("+")[0]


def test_min_time_is_honoured(runner, tiny_run_dir, tiny_inputs):
    rt = get_runtime("libtorch-cpp", 1)
    rt.load(tiny_run_dir, _record(tiny_run_dir, "int8.pt"))
    times, _ = rt.bench(tiny_inputs[:1], min_time_ms=150, min_iters=2, warmup=0)
    assert sum(times) >= 150 and len(times) >= 2


def test_run_is_one_batch(runner, tiny_run_dir, tiny_inputs):
    rt = get_runtime("libtorch-cpp")
    rt.load(tiny_run_dir, _record(tiny_run_dir, "mixed.pt"))
    np.testing.assert_array_equal(rt.run(tiny_inputs[:2]),
                                  _torchscript_output(tiny_run_dir, "mixed.pt", tiny_inputs[:2]))


def test_runner_rejects_bad_arguments(runner, tmp_path, tiny_run_dir):
    proc = subprocess.run([str(runner)], capture_output=True, text=True)
    assert proc.returncode == 2 and "--input" in proc.stderr
    proc = subprocess.run([str(runner), "m.pt", "--input", "x", "--shape", "1,0,2"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--shape" in proc.stderr
    bin_ = tmp_path / "x.bin"
    np.zeros(10, dtype=np.float32).tofile(bin_)
    proc = subprocess.run([str(runner), str(tiny_run_dir / "fp32.pt"), "--input", str(bin_), "--shape", "1,3,2,2"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "has 40 bytes; shape needs 48" in proc.stderr
    assert proc.stdout == ""
    proc = subprocess.run([str(runner), str(tmp_path / "missing.pt"), "--input", str(bin_), "--shape", "10"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("runner: ")


def test_runner_json_only_on_stdout(runner, tiny_run_dir, tmp_path, tiny_inputs):
    bin_ = tmp_path / "x.bin"
    tiny_inputs[:1].tofile(bin_)
    proc = subprocess.run([str(runner), str(tiny_run_dir / "fp32.pt"), "--input", str(bin_), "--shape",
                           "1,3,64,64", "--min-iters", "2", "--warmup", "0", "--threads", "1"],
                          capture_output=True, text=True, check=True)
    data = json.loads(proc.stdout)
    assert data["output_shape"] == [1, 10] and len(data["times_ms"]) == 2 and data["threads"] == 1


def test_onnx_is_not_supported(tiny_run_dir):
    rec = _record(tiny_run_dir, "fp32.onnx")
    assert get_runtime("libtorch-cpp").supports(rec).reason == libtorch_cpp.ONLY_PT


def test_no_compiler(monkeypatch, tmp_path, tiny_run_dir):
    monkeypatch.setenv("SHRINKWRAP_CACHE", str(tmp_path))  # no cached binary here
    monkeypatch.setattr(libtorch_cpp, "COMPILER", "no-such-compiler-g++")
    monkeypatch.setattr(libtorch_cpp, "NO_COMPILER", "no C++ compiler: test")
    support = get_runtime("libtorch-cpp").supports(_record(tiny_run_dir, "fp32.pt"))
    assert not support.ok and support.reason == "no C++ compiler: test"
    with pytest.raises(RuntimeUnavailable, match="no C\\+\\+ compiler"):
        libtorch_cpp.ensure_runner()


def test_cache_key_follows_source(monkeypatch, tmp_path):
    key = libtorch_cpp.build_key()
    edited = tmp_path / "main.cpp"
    edited.write_bytes(libtorch_cpp.SOURCE.read_bytes() + b"\n// edited\n")
    monkeypatch.setattr(libtorch_cpp, "SOURCE", edited)
    assert libtorch_cpp.build_key() != key
    edited_key = libtorch_cpp.build_key()
    monkeypatch.setattr(libtorch_cpp, "_torch_dir", lambda: tmp_path / "another-venv" / "torch")
    assert libtorch_cpp.build_key() != edited_key  # a binary links one venv's libtorch
    monkeypatch.setenv("SHRINKWRAP_CACHE", str(tmp_path / "c"))
    assert libtorch_cpp.runner_path().parent.parent == tmp_path / "c" / "libtorch-cpp"
