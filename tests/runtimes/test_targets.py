"""Deployment targets: a registry of frozen records, the activation width each implies, and the saturation risk."""

import pytest

from runtimes import targets
from runtimes.errors import BadInputError


@pytest.mark.parametrize("target", targets.targets(), ids=lambda t: t.name)
def test_each_target_declares_its_width(target):
    assert target.activation_bits in (7, 8) and target.reduce_range is (target.activation_bits == 7)
    assert target.risk_on(["avx512_vnni"]) is None  # exact wherever VNNI is


def test_the_default_is_the_modern_class_and_says_when_a_cpu_is_outside_it():
    t = targets.get_target(targets.DEFAULT_TARGET)
    assert t.activation_bits == 8 and not t.reduce_range
    assert t.risk_on(["amx_int8"]) is None and t.risk_on(("avx_vnni",)) is None
    risk = t.risk_on(["fma", "avx2", "avx512f"])
    assert "saturate" in risk and f"--target {targets.OLDER_X86}" in risk
    assert targets.get_target(targets.OLDER_X86).risk_on(["avx2"]) is None  # 7 bits cannot saturate


def test_unknown_and_duplicate_targets():
    with pytest.raises(BadInputError, match="unknown --target 'arm'; known: x86-vnni, x86-avx2"):
        targets.get_target("arm")
    with pytest.raises(ValueError, match="registered twice"):
        targets.register_target(targets.get_target(targets.DEFAULT_TARGET))
