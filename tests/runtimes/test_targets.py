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


@pytest.mark.parametrize("flags, expected", [
    ({"avx2", "avx512f", "avx512_vnni"}, targets.DEFAULT_TARGET),
    ({"avx2", "amx_int8"}, targets.DEFAULT_TARGET),
    ({"avx2", "fma"}, targets.OLDER_X86),
    (set(), targets.OLDER_X86),  # cannot tell: the target that is exact everywhere
])
def test_native_is_the_first_target_exact_on_the_cpu(flags, expected):
    assert targets.native_target(frozenset(flags)).name == expected


def test_native_resolves_to_a_registered_name_and_follows_a_kernel_cap(monkeypatch):
    from runtimes import host_cpu

    monkeypatch.setattr(host_cpu, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    monkeypatch.delenv("FBGEMM_ENABLE_INSTRUCTIONS", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert targets.resolve_target(targets.NATIVE) == targets.DEFAULT_TARGET
    assert targets.resolve_target(targets.OLDER_X86) == targets.OLDER_X86
    # fbgemm told to use its AVX2 kernels sums int16 pairs on this VNNI CPU too
    monkeypatch.setenv("FBGEMM_ENABLE_INSTRUCTIONS", "avx2")
    assert "avx512_vnni" not in host_cpu.int8_kernel_flags()
    assert targets.resolve_target(targets.NATIVE) == targets.OLDER_X86
    monkeypatch.setenv("FBGEMM_ENABLE_INSTRUCTIONS", "AVX512_E1")  # fbgemm's VNNI kernels
    assert targets.resolve_target(targets.NATIVE) == targets.DEFAULT_TARGET
    with pytest.raises(BadInputError, match="known: x86-vnni, x86-avx2, native"):
        targets.resolve_target("arm")
