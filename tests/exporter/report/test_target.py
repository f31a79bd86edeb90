"""The report's deployment-target section: the target the INT8 artifacts were built for, and the two warnings a
CPU outside its class earns (the bench CPU's, and the build CPU's bias correction)."""

from types import SimpleNamespace

import pytest

from exporter.report.target import target_section
from runtimes import targets
from runtimes.manifest import BiasCorrectionRecord

VNNI, OLDER = ["avx2", "avx512_vnni"], ["avx2", "fma"]


def _ctx(bench_flags, outside_target=None):
    bias = BiasCorrectionRecord(mode="full", images=64, layers=20, skipped=[], max_abs_shift=0.1, seconds=0.2,
                                outside_target=outside_target)
    art = SimpleNamespace(variant="int8-dense", quantization=SimpleNamespace(target=targets.DEFAULT_TARGET,
                                                                           bias_correction=bias))
    env = SimpleNamespace(cpu_flags=bench_flags)
    return SimpleNamespace(manifest=SimpleNamespace(artifacts=[art]), results=SimpleNamespace(environment=env))


@pytest.mark.parametrize("bench_flags, warns", [(VNNI, False), (OLDER, True)])
def test_the_bench_cpu_outside_the_class_is_warned_about(bench_flags, warns):
    text = target_section(_ctx(bench_flags))
    assert f"`--target {targets.DEFAULT_TARGET}`" in text
    assert ("outside that class" in text) is warns and "bias correction" not in text


def test_a_bias_correction_fitted_outside_the_class_is_said_for_every_file():
    risk = targets.get_target(targets.DEFAULT_TARGET).risk_on(OLDER)
    text = target_section(_ctx(VNNI, outside_target=risk))
    assert "bias correction of int8-dense ran on a build CPU outside that class" in text
    assert "ONNX included" in text and "--target native" in text
