"""One cell, in process: every outcome (ok, skipped, error), the timing loop and its cap."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from runtimes import registry
from runtimes.bench import stability
from runtimes.bench.cell import CellSpec, run_cell, time_runs
from runtimes.bench.results import Status
from runtimes.errors import RuntimeUnavailable
from runtimes.manifest import Format, Precision
from runtimes.protocol import CPU, RuntimeSpec, Support
from tests.support.manifests import record, write_run_manifest


class FakeRuntime:
    """Stands in for a registered runtime; behaviour set per test."""

    device = CPU

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
    fake = RuntimeSpec(name="torchscript", device=CPU, formats=(Format.TORCHSCRIPT,), reference_for=(),
                       framework="test", capabilities=(), cls=lambda threads: rt, description="fake")
    monkeypatch.setattr(registry, "get_spec", lambda name: fake)
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




def test_injected_noise_is_detected_and_re_measured(tiny_run_dir, monkeypatch):
    """Every other run of the first window is 20 ms slower: unstable, so a second window is timed."""
    monkeypatch.setenv("SHRINKWRAP_TEST_CELL_NOISE", "torchscript=20")
    spec = CellSpec(tiny_run_dir, "int8", "torchscript", "torchscript", 1, min_time_s=0.1, min_iters=10,
                    warmup=1)
    cell = run_cell(spec)
    # Re-measured. The later windows carry no injected noise, but whether a sub-millisecond model's window
    # passes p90/median <= 1.25 depends on the machine's own jitter (1.30 seen with no other process
    # busy): what must hold is that the kept window is not the disturbed one, whose p90/median is > 10.
    assert cell.status is Status.OK and cell.stability.attempts >= 2
    measured_load = (cell.stability.other_cores or 0.0) > stability.MAX_OTHER_CORES  # a busy CI runner, said so
    assert cell.stable or cell.stability.spread < 3 or measured_load, cell.stability
    assert cell.latency_ms.median < 10  # the kept window is a clean one (the disturbed median is over 10 ms)
    # Flagged only if even the clean windows were disturbed, by another process on a loaded machine.
    assert cell.flags == ([] if cell.stable else [stability.noisy_flag(cell.stability)]), cell.flags
    once = run_cell(dataclasses.replace(spec, attempts=1))  # no second chance: flagged, figures kept
    assert not once.stable and once.stability.attempts == 1
    assert once.flags[0].startswith("noisy: still unstable after 1 timed window (p90/median")
