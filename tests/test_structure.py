"""The layering the README promises: no import cycles; a deployment needs only ``runtimes``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.imports import ROOT, cycles, import_graph, project_modules


def test_no_import_cycles_lazy_imports_included():
    graph = import_graph()
    assert len(graph) > 50  # the walk found the packages
    assert cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_runtimes_never_imports_exporter():
    graph = import_graph()
    bad = {m: sorted(d for d in deps if d.startswith("exporter"))
           for m, deps in graph.items() if m.startswith("runtimes")}
    assert {m: d for m, d in bad.items() if d} == {}


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def test_every_runtimes_module_imports_without_exporter():
    mods = [m for m in project_modules() if m.startswith("runtimes") and not m.endswith("__main__")]
    code = ("import importlib, sys\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "bad = [m for m in sys.modules if m == 'exporter' or m.startswith('exporter.')]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    out = _python(code)
    assert out.returncode == 0, out.stdout + out.stderr


HEAVY = ("matplotlib", "zstandard", "cpuinfo", "exporter")


@pytest.mark.parametrize("path,runtime", [("int8.onnx", "ort-cpu"), ("int8.pt", None), ("fp32.eager.pt", None)])
def test_loading_an_artifact_imports_nothing_a_deployment_does_not_need(exported, path, runtime):
    """The README's one-liner: runtimes.load(...).run(...), then check sys.modules."""
    code = ("import sys, runtimes, numpy as np\n"
            "r = runtimes.load(sys.argv[1], None if sys.argv[2] == '-' else sys.argv[2])\n"
            "print(r.run(np.zeros((1, 3, 64, 64), np.float32)).shape)\n"
            "r.close()\n"
            f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
            "print('heavy:', loaded); sys.exit(3 if loaded else 0)")
    out = _python(code, str(exported / path), runtime or "-")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "(1, 1000)" in out.stdout
    if path.endswith(".onnx"):  # an ONNX deployment does not even import torch
        out = _python("import sys, runtimes, numpy as np\n"
                      "runtimes.load(sys.argv[1], 'ort-cpu').run(np.zeros((1, 3, 64, 64), np.float32))\n"
                      "sys.exit(4 if 'torch' in sys.modules else 0)", str(exported / path))
        assert out.returncode == 0, out.stdout + out.stderr
