"""Deployment targets: the CPU class an INT8 artifact is built for, which decides its activation width.

fbgemm multiplies UINT8 activations by INT8 weights. On x86 CPUs without VNNI it
sums each pair of products in a *saturating* int16 (``vpmaddubsw``): two 8-bit
activations of 255 times weights of 127 overflow it silently, so torch's default
keeps activations in 7 bits (``reduce_range``). VNNI (``vpdpbusd``) and AMX sum
straight into int32 and cannot saturate; ONNX Runtime's and OpenVINO's QDQ
kernels do not use the int16 pairs either. Every x86 server CPU since 2019
(Intel Cascade Lake, AMD Zen 4) has VNNI, and the seventh bit is worth points on
the compact families (docs/accuracy.md, *Activation width*), so the default target is the
modern class and 7 bits are a choice a user makes for an older fleet.

A target is a frozen record registered once by name; ``--target`` picks one and
the manifest records it (``quantization.target``). ``--target native`` means the CPU the command runs on: the
first registered target whose artifacts fbgemm runs exactly here (the default on VNNI/AMX CPUs, 7 bits on older
x86), resolved once and recorded by its real name.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtimes import host_cpu
from runtimes.errors import BadInputError


@dataclass(frozen=True)
class DeploymentTarget:
    name: str  # what --target takes and the manifest records
    title: str  # the CPUs it means, for `shrinkwrap targets`-style listings and docs/accuracy.md
    activation_bits: int  # 8: full UINT8 range; 7: reduce_range
    # CPU flags (as /proc/cpuinfo spells them) any one of which lets fbgemm accumulate 8-bit activations
    # exactly; empty: the target's artifacts are exact on every x86 CPU.
    exact_on: tuple[str, ...] = ()

    @property
    def reduce_range(self) -> bool:
        return self.activation_bits == 7

    def risk_on(self, cpu_flags: list[str] | tuple[str, ...]) -> str | None:
        """Why a TorchScript INT8 artifact for this target may saturate on a CPU with ``cpu_flags`` (None: it
        cannot)."""
        if not self.exact_on or any(f in cpu_flags for f in self.exact_on):
            return None
        return (f"built for --target {self.name} (8-bit activations), timed on a CPU with none of "
                f"{', '.join(self.exact_on)}: fbgemm's and oneDNN's int16 pair sums (TorchScript and .pt2 INT8) "
                f"may saturate there; rebuild with --target {OLDER_X86} (or native) for such CPUs")


_TARGETS: dict[str, DeploymentTarget] = {}


def register_target(target: DeploymentTarget) -> DeploymentTarget:
    if target.name in _TARGETS:
        raise ValueError(f"deployment target {target.name!r} registered twice")
    if target.activation_bits not in (7, 8):
        raise ValueError(f"target {target.name!r}: activation_bits must be 7 or 8")
    _TARGETS[target.name] = target
    return target


def get_target(name: str) -> DeploymentTarget:
    try:
        return _TARGETS[name]
    except KeyError:
        raise BadInputError(f"unknown --target {name!r}; known: {', '.join(_TARGETS)}, {NATIVE}") from None


def native_target(cpu_flags: frozenset[str] | None = None) -> DeploymentTarget:
    """The first registered target (the default first) whose INT8 artifacts fbgemm runs exactly on a CPU with
    ``cpu_flags`` (None: this machine's). One always qualifies: the 7-bit target needs no flag."""
    flags = host_cpu.int8_kernel_flags() if cpu_flags is None else cpu_flags
    return next(t for t in _TARGETS.values() if t.risk_on(tuple(flags)) is None)


def resolve_target(name: str) -> str:
    """The registered name ``--target name`` means: ``native`` becomes this machine's target."""
    return native_target().name if name == NATIVE else get_target(name).name


def targets() -> tuple[DeploymentTarget, ...]:
    return tuple(_TARGETS.values())


DEFAULT_TARGET = "x86-vnni"
OLDER_X86 = "x86-avx2"
NATIVE = "native"  # not a target: the name of "this machine's", resolved by resolve_target

register_target(DeploymentTarget(
    name=DEFAULT_TARGET,
    title="x86 with VNNI or AMX (Intel Xeon since Cascade Lake, 2019; AMD Zen 4 and later), and any CPU through "
          "ONNX Runtime or OpenVINO",
    activation_bits=8, exact_on=("avx512_vnni", "avx_vnni", "amx_int8")))
register_target(DeploymentTarget(
    name=OLDER_X86,
    title="x86 without VNNI (AVX2/AVX-512F only: Intel before Cascade Lake, AMD Zen 2 and Zen 3)",
    activation_bits=7))
