"""The deployment API: runtimes.load(path, runtime=None) and runtimes.verify(run_dir)."""

from __future__ import annotations

import numpy as np
import pytest

import runtimes
from runtimes.errors import ArtifactError, BadInputError


@pytest.mark.parametrize("path,default", [("int8.onnx", "ort-cpu"), ("fp16.pt", "torchscript"),
                                          ("mixed.eager.pt", "eager")])
def test_load_picks_the_reference_runtime_of_the_format(tiny_run_dir, tiny_inputs, path, default):
    with runtimes.load(tiny_run_dir / path) as model:
        assert model.runtime.name == default
        assert model.input_shape == (-1, 3, 64, 64)
        out = model.run(tiny_inputs[:3])
    assert out.shape == (3, 10) and out.dtype == np.float32


def test_load_in_a_named_runtime_matches_the_default(tiny_run_dir, tiny_inputs):
    a = runtimes.load(tiny_run_dir / "int8.pt")
    b = runtimes.load(tiny_run_dir / "int8.pt", "torchscript", threads=1)
    try:
        np.testing.assert_array_equal(a.run(tiny_inputs[:2]), b.run(tiny_inputs[:2]))
    finally:
        a.close()
        b.close()


def test_load_refuses_clearly(tiny_run_dir, copy_run_dir, tmp_path):
    with pytest.raises(BadInputError, match="runs onnx files, not torchscript"):
        runtimes.load(tiny_run_dir / "int8.pt", "ort-cpu")
    with pytest.raises(BadInputError, match="unknown runtime 'tensorrt'"):
        runtimes.load(tiny_run_dir / "int8.onnx", "tensorrt")
    with pytest.raises(ArtifactError, match="names no file 'nope.onnx'"):
        runtimes.load(tiny_run_dir / "nope.onnx")
    with pytest.raises(ArtifactError, match="no manifest.json"):
        (tmp_path / "x.onnx").write_bytes(b"x")
        runtimes.load(tmp_path / "x.onnx")
    run_dir = copy_run_dir()
    with open(run_dir / "fp32.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="modified"):
        runtimes.load(run_dir / "fp32.onnx")
    with runtimes.load(tiny_run_dir / "fp32.onnx") as model, pytest.raises(BadInputError, match="takes"):
        model.run(np.zeros((1, 3, 32, 32), np.float32))


def test_verify(tiny_run_dir, copy_run_dir):
    assert runtimes.verify(tiny_run_dir).model == "resnet18"
    run_dir = copy_run_dir()
    (run_dir / "stray.bin").write_bytes(b"x")
    (run_dir / "fp16.pt").unlink()
    with pytest.raises(ArtifactError, match=r"fp16.pt \(missing\).*stray.bin \(foreign\)"):
        runtimes.verify(run_dir)
