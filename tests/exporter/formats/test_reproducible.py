"""The same export gives byte-identical artifacts from any directory and any process history."""

from __future__ import annotations

import pytest

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import SMALL, run_cli

# three exports, two of them in fresh processes
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
# Magnitude pruning: what differs between directories and process histories is serialization (paths, TorchScript's
# type counters), not how weights are chosen; OBS gives bit-identical weights when run again in one process
# (tests/exporter/compress/test_obs.py::test_an_identical_leading_model_is_reused) and costs a minute per export here.
ARGS = ("--weights", "random", *SMALL, "--calib-images", "4", "--variants", "fp32,int8,fp16", "--skip-parity",
        "--prune-method", "magnitude")


def _hashes(run_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.iterdir()) if p.suffix in (".pt", ".onnx")}


def _export_in(cwd: Path) -> Path:
    cwd.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", "from exporter.cli import app; app()", "export", "--out", "run",
                           *ARGS], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return cwd / "run"


def test_byte_identical_from_two_directories_and_a_busy_process(tmp_path):
    a, b = _export_in(tmp_path / "clone-a"), _export_in(tmp_path / "somewhere" / "else")
    ha, hb = _hashes(a), _hashes(b)
    assert len(ha) == 9 and ha == hb  # .pt, .onnx and .eager.pt of each of the 3 variants
    # this test process has traced other models before (TorchScript's type counter moved on)
    res = run_cli("export", "--out", str(tmp_path / "in-process"), *ARGS)
    assert res.exit_code == 0, res.output
    assert _hashes(tmp_path / "in-process") == ha
    for p in a.iterdir():
        if p.suffix == ".pt":  # no machine paths inside (TorchScript's debug tables are dropped)
            data = p.read_bytes()
            assert str(ROOT).encode() not in data and b"site-packages" not in data, p.name
